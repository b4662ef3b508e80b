// Takes snapshots without stopping writes, in one of two ways.
//
// Forked: a child process serializes the tree as it was at the fork (the
// kernel shares its memory copy-on-write). When the storage plugin's sink
// offers a child writer, the child writes the snapshot through it and the
// server only commits it once the child has exited; otherwise the child
// writes into a pipe and the loop feeds what arrives to the sink. The fork
// holds the loop while page tables are copied, and each page the loop then
// writes first is copied in a fault: the tail of writes while a snapshot is
// taken comes from these.
//
// Walked: the loop itself writes the tree a slice of nodes at a time
// between other work (DataTree::begin_snapshot), and a write that changes a
// node the snapshot has not reached yet keeps a copy of it first. No fork
// and no page copied; the loop does the encoding the child did, and memory
// grows by the copies (bounded: past `max_kept` bytes of them the snapshot
// gives up, and the next one is forked). A write pauses longer than a slice
// where it is the first to change a parent of many children that the walk
// has not finished with: their addresses are copied then (about 10 ms a
// million). A walk given up goes on without writing, a few nodes with each
// entry applied, until every node carries the tree's mark again
// (DataTree::settle_snapshot); snapshots are forked meanwhile.
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
  explicit Snapshotter(boost::asio::io_context& io, size_t max_queued = 64u << 20,
                       size_t max_kept = 256u << 20)
      : io_(io), max_queued_(max_queued), max_kept_(max_kept) {}
  ~Snapshotter() { cancel(); }

  bool running() const { return child_ > 0 || sink_ != nullptr; }
  // How long the last fork held the loop, in microseconds: the pause every
  // forked snapshot costs the server (page tables are copied, not the
  // memory). 0 after a walked one.
  int64_t last_fork_us() const { return last_fork_us_; }
  // Whether the last snapshot started was walked rather than forked.
  bool last_walked() const { return walked_; }
  // The most bytes of node copies the last walked snapshot held at once.
  size_t last_kept_peak() const { return kept_peak_; }

  // Writes `tree` into `sink` from a forked child and commits it; `done`
  // runs on the loop. The tree may change as soon as this returns.
  void start(const DataTree& tree, std::unique_ptr<sdk::SnapshotSink> sink,
             std::function<void(const sdk::Status&)> done);
  // The same, walked by the loop (see above); `tree` must outlive the
  // snapshot, and it is forked instead when a walk cannot be had (another
  // is under way on the tree, or the last one gave up).
  void start_walk(DataTree& tree, std::unique_ptr<sdk::SnapshotSink> sink,
                  std::function<void(const sdk::Status&)> done);
  // Nodes a walked snapshot writes before the loop turns to other work.
  void set_walk_slice(size_t nodes) { walk_slice_ = nodes > 0 ? nodes : 1; }
  // Stops a snapshot in progress: kills the child and abandons the file.
  void cancel();

 private:
  void read_more();
  // Writes the next slice of a walked snapshot, or waits for the sink.
  void walk_step();
  void wait_for_sink();
  // Kills the child if it still runs and drops the pipe and timer.
  void stop_child();
  void finish(const sdk::Status& st);

  boost::asio::io_context& io_;
  size_t max_queued_;
  size_t max_kept_;
  pid_t child_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> pipe_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::unique_ptr<sdk::SnapshotSink> sink_;
  std::function<void(const sdk::Status&)> done_;
  std::vector<char> buf_;
  int64_t last_fork_us_ = 0;
  bool child_writes_ = false;  // through the sink's child writer, not the pipe
  std::string child_said_;     // what a failing child wrote to the pipe
  // The walked snapshot under way.
  DataTree* walk_tree_ = nullptr;
  uint64_t walk_id_ = 0;
  size_t walk_slice_ = 256;
  sdk::Status walk_status_;  // the sink's first refusal
  bool walked_ = false;
  bool fork_next_ = false;  // the last walk gave up: fork the next one
  size_t kept_peak_ = 0;
  common::Lifeline alive_;
};

}  // namespace corral::kernel
