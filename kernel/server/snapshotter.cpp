#include "server/snapshotter.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

// In the child: write everything or give up.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

// Bytes a walked snapshot lets wait in the sink.
constexpr size_t kWalkQueued = 4u << 20;

void Snapshotter::start_walk(DataTree& tree, std::unique_ptr<sdk::SnapshotSink> sink,
                             std::function<void(const Status&)> done) {
  if (fork_next_) {
    fork_next_ = false;
    start(tree, std::move(sink), std::move(done));
    return;
  }
  sink_ = std::move(sink);
  walk_status_ = {};
  const uint64_t id = tree.begin_snapshot([this](std::string_view chunk) {
    if (walk_status_) walk_status_ = sink_->write(sdk::BytesView(chunk));
  });
  if (id == 0) {
    start(tree, std::move(sink_), std::move(done));
    return;
  }
  walk_tree_ = &tree;
  walk_id_ = id;
  walked_ = true;
  last_fork_us_ = 0;
  kept_peak_ = 0;
  done_ = std::move(done);
  boost::asio::post(io_, [this, alive = alive_.ref()] {
    if (alive && walk_tree_) walk_step();
  });
}

void Snapshotter::walk_step() {
  if (!walk_status_) {
    finish(walk_status_);
    return;
  }
  const size_t kept = walk_tree_->snapshot_kept_bytes();
  kept_peak_ = std::max(kept_peak_, kept);
  if (kept > max_kept_) {
    fork_next_ = true;
    finish(Status(Errc::unavailable,
                  "the tree changed faster than the snapshot could be written: " +
                      std::to_string(kept >> 20) +
                      " MiB of nodes were kept for it; the next snapshot is forked"));
    return;
  }
  if (sink_->queued_bytes() > std::min(max_queued_, kWalkQueued)) {
    // The disk is behind: wait for it, as a forked child waits on its pipe.
    // Less is let queue than from a child: the sink's buffer grows on this
    // thread, and fresh memory costs its zeroing.
    if (!timer_) timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    timer_->expires_after(std::chrono::milliseconds(5));
    timer_->async_wait([this, alive = alive_.ref()](boost::system::error_code ec) {
      if (!ec && alive && walk_tree_) walk_step();
    });
    return;
  }
  switch (walk_tree_->snapshot_step(walk_id_, walk_slice_)) {
    case DataTree::SnapshotStep::more:
      boost::asio::post(io_, [this, alive = alive_.ref()] {
        if (alive && walk_tree_) walk_step();
      });
      return;
    case DataTree::SnapshotStep::gone:
      if (walk_tree_->snapshot_left() > 0)
        finish(Status(Errc::internal, "the walk ended with " +
                                          std::to_string(walk_tree_->snapshot_left()) +
                                          " nodes kept for it and never written"));
      else
        finish(Status(Errc::unavailable, "the tree was replaced while its snapshot was written"));
      return;
    case DataTree::SnapshotStep::done:
      break;
  }
  walk_tree_ = nullptr;
  if (!walk_status_) {
    finish(walk_status_);
    return;
  }
  sink_->commit([this, alive = alive_.ref()](const Status& st) {
    if (alive) finish(st);
  });
}

void Snapshotter::start(const DataTree& tree, std::unique_ptr<sdk::SnapshotSink> sink,
                        std::function<void(const Status&)> done) {
  walked_ = false;
  sdk::SnapshotChildWriter* writer = sink->child_writer();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    sink->abort();
    done(Status(Errc::io_error, std::string("pipe: ") + std::strerror(errno)));
    return;
  }
  const auto fork_start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    sink->abort();
    done(Status(Errc::io_error, std::string("fork: ") + std::strerror(e)));
    return;
  }
  if (pid == 0) {
    // The child: only the forking thread exists here, so it touches nothing
    // but the tree, the writer or the pipe, and leaves with _exit. It reads
    // the tree and never makes or frees a node: the nodes' slab arena may
    // have been locked by another thread at the fork.
    ::close(fds[0]);
    if (writer) {
      // It fills the snapshot itself; the pipe carries only what went wrong.
      sdk::Status st;
      tree.serialize([&](std::string_view chunk) {
        if (st) st = writer->write(chunk);
      });
      if (st) st = writer->finish();
      if (st) ::_exit(0);
      write_all(fds[1], st.to_string());
      ::_exit(3);
    }
    bool ok = true;
    tree.serialize([&](std::string_view chunk) { ok = ok && write_all(fds[1], chunk); });
    ::_exit(ok ? 0 : 3);
  }
  ::close(fds[1]);
  last_fork_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - fork_start)
                      .count();
  child_ = pid;
  sink_ = std::move(sink);
  done_ = std::move(done);
  pipe_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fds[0]);
  buf_.resize(1 << 20);
  child_writes_ = writer != nullptr;
  child_said_.clear();
  read_more();
}

void Snapshotter::read_more() {
  pipe_->async_read_some(boost::asio::buffer(buf_), [this, alive = alive_.ref()](
                                                        boost::system::error_code ec, size_t n) {
    if (!alive || !sink_) return;
    if (!ec && child_writes_) {
      // The child's account of what went wrong, if anything.
      if (child_said_.size() < 4096)
        child_said_.append(buf_.data(), std::min(n, 4096 - child_said_.size()));
      read_more();
      return;
    }
    if (!ec) {
      Status st = sink_->write(sdk::BytesView(buf_.data(), n));
      if (!st) {
        finish(st);
        return;
      }
      wait_for_sink();
      return;
    }
    if (ec != boost::asio::error::eof) {
      finish(Status(Errc::io_error, "reading the snapshot from its process: " + ec.message()));
      return;
    }
    // All bytes are in; the child is exiting.
    int status = 0;
    pid_t pid = child_;
    child_ = -1;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      finish(Status(Errc::internal, "the snapshot process failed (status " +
                                        std::to_string(status) + ")" +
                                        (child_said_.empty() ? "" : ": " + child_said_)));
      return;
    }
    pipe_.reset();
    sink_->commit([this, alive](const Status& st) {
      if (alive) finish(st);
    });
  });
}

void Snapshotter::wait_for_sink() {
  // While the sink is behind, the pipe fills and the child waits for it.
  if (sink_->queued_bytes() <= max_queued_) {
    read_more();
    return;
  }
  if (!timer_) timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  timer_->expires_after(std::chrono::milliseconds(5));
  timer_->async_wait([this, alive = alive_.ref()](boost::system::error_code ec) {
    if (!ec && alive && sink_) wait_for_sink();
  });
}

void Snapshotter::stop_child() {
  if (walk_tree_) {
    walk_tree_->end_snapshot(walk_id_);
    walk_tree_ = nullptr;
  }
  if (child_ > 0) {
    ::kill(child_, SIGKILL);
    while (::waitpid(child_, nullptr, 0) < 0 && errno == EINTR) {
    }
    child_ = -1;
  }
  pipe_.reset();
  timer_.reset();
}

void Snapshotter::finish(const Status& st) {
  stop_child();
  if (!st && sink_) sink_->abort();
  // The sink may be the caller of this (commit's callback): destroy it later.
  std::shared_ptr<sdk::SnapshotSink> old(std::move(sink_));
  boost::asio::post(io_, [old] {});
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done(st);
}

void Snapshotter::cancel() {
  if (!running()) return;
  alive_.renew();
  stop_child();
  if (sink_) sink_->abort();
  sink_.reset();
  done_ = nullptr;
}

}  // namespace corral::kernel
