// Storage: the durable history of a server — its log of entries, snapshots of
// the state they produce, and the few values Zab must persist (epochs).
//
// The storage plugin never interprets an entry's body or a snapshot's bytes:
// the kernel encodes both. It owns durability: an append is acknowledged only
// once it would survive a crash (for a durable plugin), and appends are
// acknowledged in the order they were made.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "corral/sdk/plugin.hpp"
#include "corral/sdk/types.hpp"

namespace corral::sdk {

// What storage recovered at open().
struct RecoveredState {
  // The newest valid snapshot (empty and zxid 0 when there is none): a view
  // of memory that `snapshot_holder` keeps valid (a mapping of the file,
  // say), so that a large snapshot need not be copied to be loaded.
  Zxid snapshot_zxid = 0;
  BytesView snapshot;
  std::shared_ptr<const void> snapshot_holder;
  // The last entry in the log, or the snapshot's zxid if the log is empty.
  Zxid last_zxid = 0;
  // Zab's persisted epochs (0 when never written).
  uint32_t accepted_epoch = 0;
  uint32_t current_epoch = 0;
};

// Fills a snapshot from a child process (see SnapshotSink::child_writer).
// Both calls run in a process forked from the server, with a single thread:
// they may allocate and make system calls, but must not wait for the
// plugin's own threads, locks or event loop, which the child has no working
// copy of. What they write is the plugin's business; the server knows only
// whether they succeeded.
class SnapshotChildWriter {
 public:
  virtual ~SnapshotChildWriter();
  // Writes the next piece of the snapshot. An error ends the snapshot; its
  // message reaches the server's log.
  virtual Status write(BytesView chunk) = 0;
  // Writes whatever ends the snapshot (a trailer, say). The server makes it
  // durable and visible afterwards, with SnapshotSink::commit().
  virtual Status finish() = 0;
};

// Writes a snapshot in pieces so that a large tree need not be held twice.
// Loop thread only; neither call waits for the disk.
class SnapshotSink {
 public:
  virtual ~SnapshotSink();
  // Queues the next piece. An error means the snapshot cannot succeed.
  virtual Status write(BytesView chunk) = 0;
  // Makes the snapshot durable and visible (after which it is what open()
  // returns if it is the newest), then calls `done` on the loop thread. The
  // sink must stay alive until then.
  virtual void commit(std::function<void(const Status&)> done) = 0;
  // Abandons it; nothing becomes visible. Also done by the destructor if
  // neither commit() nor abort() was called.
  virtual void abort() = 0;
  // Bytes accepted by write() and not yet on their way to disk; the kernel
  // waits for this to fall before it writes more, so a slow disk slows the
  // snapshot instead of growing memory.
  virtual size_t queued_bytes() const { return 0; }
  // Optional: a writer that fills the snapshot from the child process the
  // kernel forks to serialize its state, so that the snapshot's bytes pass
  // through neither the server's loop nor this plugin's threads. Called on
  // the loop before the fork. When it returns a writer, the kernel calls the
  // writer's write() with every piece and then finish(), all in the child,
  // and afterwards, on the loop, commit() if the child succeeded and abort()
  // if not; it never calls write() on the sink itself. Null (the default)
  // means the pieces come through write(). The writer belongs to the sink.
  virtual SnapshotChildWriter* child_writer() { return nullptr; }
};

// Reads a committed snapshot a piece at a time, so that a leader can send a
// large one to a learner without holding it whole, or stopping its loop to
// copy it. Loop thread only. It stays readable when the storage purges or
// replaces that snapshot meanwhile (it holds the file, or a copy).
class SnapshotReader {
 public:
  virtual ~SnapshotReader();
  // The snapshot's zxid: the state as of every entry up to it.
  virtual Zxid zxid() const = 0;
  // Its bytes in all, as the kernel wrote them (through SnapshotSink).
  virtual uint64_t size() const = 0;
  // The next piece, at most `max` bytes (`max` > 0), following the last one
  // read; empty once every byte has been read. The view holds until the next
  // call or until the reader goes. A damaged snapshot fails with
  // Errc::corrupt, naming the file and the offset: the storage checks each
  // piece as it reads it, so a damage may show only partway through.
  virtual Result<BytesView> next(size_t max) = 0;
};

class Storage : public Plugin {
 public:
  ~Storage() override;
  // Called with the result of one append once it is durable (or failed).
  using AppendDone = std::function<void(const Status&)>;

  // Opens (creating if needed) the store and recovers its state. Must be called
  // once before anything else. Corruption that cannot be repaired safely fails
  // with Errc::corrupt and a message naming the file and offset; a torn final
  // record is truncated and logged.
  virtual Result<RecoveredState> open() = 0;

  // Calls `visit` for every log entry with zxid > `after`, in order, until it
  // returns false. Used to replay after a snapshot and to send DIFFs to
  // followers. Loop thread only.
  virtual Status read_log(Zxid after, const std::function<bool(const LogEntry&)>& visit) = 0;

  // Appends an entry whose zxid is greater than every earlier one. `done` runs
  // on the loop once the entry is durable, in append order; a failed append
  // (e.g. Errc::no_space) fails every append queued after it as well, and
  // storage accepts new appends again once the cause is gone. The plugin
  // copies what it keeps of `entry`: the caller usually holds the entry too
  // (to apply it once durable), and most plugins only encode it.
  virtual void append(const LogEntry& entry, AppendDone done) = 0;

  // Zab TRUNC: drops every entry with zxid > `zxid`, durably, before returning.
  virtual Status truncate_after(Zxid zxid) = 0;

  // True when the plugin's policy (entries or bytes logged since the last
  // snapshot) asks for a new snapshot; the kernel then takes one.
  virtual bool snapshot_due() const = 0;

  // Starts a snapshot of the state as of `zxid` (every entry up to it applied).
  // Committing it may purge snapshots and log files beyond the plugin's
  // retention.
  virtual Result<std::unique_ptr<SnapshotSink>> begin_snapshot(Zxid zxid) = 0;

  // Opens the newest committed snapshot for reading in pieces (to send it to
  // a learner that is behind it); Errc::not_found when there is none.
  virtual Result<std::unique_ptr<SnapshotReader>> read_snapshot() = 0;
  // The zxid of the newest committed snapshot, 0 when there is none; cheap.
  // The log holds every entry after it (retention never drops those), so
  // read_log(z) is complete for every z at or above it: Zab sends a follower
  // that is behind it a snapshot rather than a diff.
  virtual Zxid latest_snapshot_zxid() const = 0;

  // Zab's acceptedEpoch and currentEpoch; written durably before returning.
  virtual Status save_epochs(uint32_t accepted_epoch, uint32_t current_epoch) = 0;

  // Removes snapshots and log files no longer needed to recover, keeping the
  // newest `keep_snapshots` snapshots and the log they need.
  virtual Status purge(int keep_snapshots) = 0;

  // For `conf`/`mntr`: bytes held by the log and by snapshots.
  virtual int64_t log_bytes() const = 0;
  virtual int64_t snapshot_bytes() const = 0;

  // Finishes pending appends (acknowledging or failing them) and closes files.
  virtual void close() = 0;
};

}  // namespace corral::sdk
