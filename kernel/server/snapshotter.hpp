// Takes snapshots without stopping writes: a forked child serializes the
// tree as it was at the fork (the kernel shares its memory copy-on-write).
// When the storage plugin's sink offers a child writer, the child writes the
// snapshot through it and the server only commits it once the child has
// exited; otherwise the child writes into a pipe and the loop feeds what
// arrives to the sink.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/storage.hpp"
#include "tree/data_tree.hpp"

namespace corral::kernel {

class Snapshotter {
 public:
  // `max_queued`: how far the sink may fall behind (its queued_bytes())
  // before the child is made to wait.
  explicit Snapshotter(boost::asio::io_context& io, size_t max_queued = 64u << 20)
      : io_(io), max_queued_(max_queued) {}
  ~Snapshotter() { cancel(); }

  bool running() const { return child_ > 0 || sink_ != nullptr; }
  // How long the last fork held the loop, in microseconds: the pause every
  // snapshot costs the server (page tables are copied, not the memory).
  int64_t last_fork_us() const { return last_fork_us_; }

  // Writes `tree` into `sink` and commits it; `done` runs on the loop. The
  // tree may change as soon as this returns.
  void start(const DataTree& tree, std::unique_ptr<sdk::SnapshotSink> sink,
             std::function<void(const sdk::Status&)> done);
  // Stops a snapshot in progress: kills the child and abandons the file.
  void cancel();

 private:
  void read_more();
  void wait_for_sink();
  // Kills the child if it still runs and drops the pipe and timer.
  void stop_child();
  void finish(const sdk::Status& st);

  boost::asio::io_context& io_;
  size_t max_queued_;
  pid_t child_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> pipe_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::unique_ptr<sdk::SnapshotSink> sink_;
  std::function<void(const sdk::Status&)> done_;
  std::vector<char> buf_;
  int64_t last_fork_us_ = 0;
  bool child_writes_ = false;  // through the sink's child writer, not the pipe
  std::string child_said_;     // what a failing child wrote to the pipe
  common::Lifeline alive_;
};

}  // namespace corral::kernel
