// Restoring a backup into a running server or ensemble (POST
// /commands/restore, ZooKeeper 3.9's admin `restore`).
//
// A restore is a write: the backup's tree goes through the log as a run of
// kRestoreTxn entries (begin, chunks of kChunk bytes, end), submitted by
// whichever member received it and ordered by consensus like any request.
// Every member gathers the pieces as it applies them and, at the end,
// replaces its tree with the backup's, so that all of them do it at the same
// zxid, one above every zxid before it: clients never see zxids go back, a
// member that was down catches up through the log or a snapshot as after
// any write, and a crash anywhere leaves either the old tree or the new one.
// Nothing in the SDK knows about it: any consensus module that orders
// entries orders a restore.
//
// The membership is not restored: /zookeeper/config keeps the ensemble's.
// Every client connection is closed when the tree is replaced (its watches
// and what it read belong to the old tree); sessions the backup holds
// continue, with a full timeout from then, and the others end.
//
// A restore runs within one leadership: a leader (or standalone server)
// abandons, through an abort entry, a stage that it does not drive itself
// when it begins to lead and when no piece has come for kStallMs, so that a
// restore whose sender went away neither holds its pieces in memory nor
// holds snapshots back for long.
#include <random>

#include "corral/common/crc32c.hpp"
#include "server/channel.hpp"
#include "server/server.hpp"
#include "tree/txn.hpp"
#include "wal_format.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

constexpr size_t kChunk = 512 * 1024;
constexpr int32_t kWindow = 4;       // chunks submitted and not yet applied
constexpr int64_t kStallMs = 30000;  // a stage nobody adds to for this long is abandoned

bool orders_writes(sdk::Role r) { return r == sdk::Role::leading || r == sdk::Role::standalone; }

}  // namespace

std::optional<Status> Server::restore_busy() const {
  if (stopped_) return Status{Errc::unavailable, "the server is stopping"};
  if (restore_op_ || restore_stage_)
    return Status{Errc::already_exists, "a restore is under way; try again when it ends"};
  if (backup_snapshotter_.running())
    return Status{Errc::already_exists, "a backup is being taken; try again when it ends"};
  if (!serving()) return Status{Errc::unavailable, "this server is not serving (no leader)"};
  return std::nullopt;
}

Status Server::start_restore(std::string file,
                             std::function<void(const sdk::Result<RestoreResult>&)> done) {
  if (auto busy = restore_busy()) return *busy;
  if (file.size() >= 4 && file.compare(0, 4, "ZKSN") == 0)
    return {Errc::invalid_argument,
            "this is an Apache ZooKeeper snapshot: convert it first (corral import zookeeper "
            "--from DATADIR --to DIR) and restore the snapshot file that writes"};
  sdk::Zxid backup_zxid = 0;
  std::string_view body;
  std::string copy;
  if (Status st = wal::check_snapshot(file, backup_zxid, &body, &copy); !st)
    return {st.code(), "the backup: " + st.message()};
  // Checked whole before anything is logged, so that every member's end
  // succeeds on the same bytes.
  auto tree = DataTree::deserialize(body);
  if (!tree) return {Errc::corrupt, "the backup's tree: " + tree.status().message()};
  const size_t znodes = tree->node_count();
  // What travels through the log and every member holds is the inflated tree.
  if (body.size() > static_cast<size_t>(config_.server.max_restore_bytes))
    return {Errc::invalid_argument,
            "the backup's tree is " + std::to_string(body.size()) +
                " bytes once inflated, more than server.max_restore_bytes (" +
                std::to_string(config_.server.max_restore_bytes) + ")"};
  tree = DataTree();  // only its check was wanted
  auto op = std::make_unique<RestoreOp>();
  const bool in_file = body.data() >= file.data() && body.data() <= file.data() + file.size();
  if (in_file) {
    const size_t at = static_cast<size_t>(body.data() - file.data());
    op->file = std::move(file);
    op->body = std::string_view(op->file).substr(at, body.size());
  } else {
    op->file = std::move(copy);
    op->body = op->file;
    file.clear();
    file.shrink_to_fit();
  }
  std::random_device rd;
  op->id = static_cast<int64_t>(((static_cast<uint64_t>(rd()) << 32) | rd()) >> 1) | 1;
  op->backup_zxid = backup_zxid;
  op->chunks = static_cast<int32_t>((op->body.size() + kChunk - 1) / kChunk);
  op->done = std::move(done);
  RestorePiece begin;
  begin.phase = RestorePiece::begin;
  begin.id = op->id;
  begin.total = static_cast<int64_t>(op->body.size());
  begin.chunks = op->chunks;
  begin.crc = common::crc32c(op->body);
  begin.backup_zxid = backup_zxid;
  if (Status st = consensus_->submit(encode_restore_txn(begin)); !st) return st;
  log_->warn("restoring the backup taken at zxid " + session_hex(backup_zxid) + " (" +
             std::to_string(znodes) + " znodes, " + std::to_string(op->body.size()) + " bytes in " +
             std::to_string(op->chunks) + " pieces): the whole tree will be replaced");
  restore_op_ = std::move(op);
  restore_pump();
  return {};
}

void Server::restore_pump() {
  RestoreOp* op = restore_op_.get();
  while (op && op->in_flight < kWindow && op->submitted < op->chunks) {
    RestorePiece piece;
    piece.phase = RestorePiece::chunk;
    piece.id = op->id;
    piece.seq = op->submitted;
    const size_t at = static_cast<size_t>(op->submitted) * kChunk;
    piece.data = op->body.substr(at, kChunk);
    if (Status st = consensus_->submit(encode_restore_txn(piece)); !st)
      return finish_restore(Status{st.code(), "the restore stopped: " + st.message()});
    ++op->submitted;
    ++op->in_flight;
    if (op->submitted == op->chunks) {
      RestorePiece end;
      end.phase = RestorePiece::end;
      end.id = op->id;
      if (Status st = consensus_->submit(encode_restore_txn(end)); !st)
        return finish_restore(Status{st.code(), "the restore stopped: " + st.message()});
      // The pieces are in the log's hands: what is left to do is applying.
      op->body = {};
      op->file.clear();
      op->file.shrink_to_fit();
    }
  }
}

void Server::finish_restore(const sdk::Result<RestoreResult>& r) {
  std::unique_ptr<RestoreOp> op = std::move(restore_op_);
  if (!op) return;
  if (!r) {
    log_->warn("the restore failed: " + r.status().to_string());
    // Its begin may be ordered (on its way, or applied): abandon it
    // everywhere. When this cannot be sent, the leader abandons it later.
    if (role() != sdk::Role::looking) {
      RestorePiece abort;
      abort.phase = RestorePiece::abort;
      abort.id = op->id;
      abort.data = r.status().message();
      if (Status st = consensus_->submit(encode_restore_txn(abort)); !st)
        log_->warn("cannot abandon the restore's pieces (" + st.to_string() +
                   "); the next leader will");
    }
  }
  if (op->done) op->done(r);
}

void Server::close_restore_stage() {
  restore_stage_.reset();
  if (snapshot_after_restore_) {
    snapshot_after_restore_ = false;
    executor_.post([this] {
      if (!stopped_ && !recovering_ && !restore_stage_) take_snapshot(nullptr);
    });
  }
}

void Server::apply_restore(const sdk::LogEntry& entry) {
  TxnHeader h;
  RestorePiece p;
  if (!decode_txn(entry.body, h) || !decode_restore_payload(h.payload, p)) {
    log_->error("the restore entry at zxid " + session_hex(entry.zxid) +
                " is malformed; it is applied as nothing");
    return;
  }
  const bool ours = restore_op_ && restore_op_->id == p.id;
  const std::string name = "restore " + session_hex(p.id);
  switch (p.phase) {
    case RestorePiece::begin: {
      if (restore_stage_) {
        log_->warn("restore " + session_hex(restore_stage_->id) + " is abandoned: " + name +
                   " begins at zxid " + session_hex(entry.zxid));
        if (restore_op_ && restore_op_->id == restore_stage_->id)
          finish_restore(Status{Errc::unavailable, "another restore began before it ended"});
      }
      RestoreStage s;
      s.id = p.id;
      s.total = p.total;
      s.chunks = p.chunks;
      s.crc = p.crc;
      s.backup_zxid = p.backup_zxid;
      s.began = entry.zxid;
      s.progress_ms = clock_.steady_ms();
      s.bytes.reserve(static_cast<size_t>(std::min(p.total, config_.server.max_restore_bytes)));
      restore_stage_ = std::move(s);
      log_->info(name + " begins at zxid " + session_hex(entry.zxid) + ": the backup at zxid " +
                 session_hex(p.backup_zxid) + ", " + std::to_string(p.total) + " bytes");
      return;
    }
    case RestorePiece::chunk: {
      RestoreStage* s = restore_stage_ && restore_stage_->id == p.id ? &*restore_stage_ : nullptr;
      if (s) {
        s->progress_ms = clock_.steady_ms();
        if (p.seq != s->received ||
            static_cast<int64_t>(s->bytes.size() + p.data.size()) > s->total) {
          s->broken = true;
        } else {
          s->bytes.append(p.data);
          ++s->received;
        }
      }
      if (ours) {
        --restore_op_->in_flight;
        restore_pump();
      }
      return;
    }
    case RestorePiece::abort: {
      if (restore_stage_ && restore_stage_->id == p.id) {
        log_->warn(name + " is abandoned at zxid " + session_hex(entry.zxid) + ": " +
                   std::string(p.data));
        close_restore_stage();
      }
      if (ours) finish_restore(Status{Errc::unavailable, "abandoned: " + std::string(p.data)});
      return;
    }
    case RestorePiece::end:
      break;
  }
  if (!restore_stage_ || restore_stage_->id != p.id) {
    if (ours) finish_restore(Status{Errc::unavailable, "its pieces were abandoned"});
    return;
  }
  RestoreStage s = std::move(*restore_stage_);
  close_restore_stage();
  std::string why;
  if (s.broken || s.received != s.chunks || static_cast<int64_t>(s.bytes.size()) != s.total)
    why = "pieces are missing (" + std::to_string(s.received) + " of " + std::to_string(s.chunks) +
          ")";
  else if (common::crc32c(s.bytes) != s.crc)
    why = "the pieces do not add up to the backup sent (CRC-32C differs)";
  sdk::Result<DataTree> tree =
      why.empty() ? DataTree::deserialize(s.bytes) : sdk::Result<DataTree>(Errc::corrupt, why);
  if (!tree) {
    log_->error(name + " at zxid " + session_hex(entry.zxid) +
                " failed; the tree is as it was: " + tree.status().message());
    if (ours) finish_restore(Status{Errc::corrupt, tree.status().message()});
    return;
  }
  s.bytes.clear();
  s.bytes.shrink_to_fit();
  tree->keep_config_of(tree_);
  tree_ = std::move(tree.value());
  tree_.set_enforce_quota(config_.server.enforce_quota);
  // What clients read and watched was the old tree's: they reconnect.
  std::vector<Channel*> open;
  for (auto& [cid, ch] : channels_) open.push_back(ch.get());
  for (Channel* ch : open) ch->close("the tree was restored from a backup");
  sessions_.clear();
  track_all_sessions();
  RestoreResult result;
  result.zxid = entry.zxid;
  result.backup_zxid = s.backup_zxid;
  result.znodes = tree_.node_count();
  result.sessions = tree_.sessions().size();
  log_->warn(name + " took effect at zxid " + session_hex(entry.zxid) +
             ": the tree is the backup's at zxid " + session_hex(s.backup_zxid) + " (" +
             std::to_string(result.znodes) + " znodes, " + std::to_string(result.sessions) +
             " sessions); every client connection was closed");
  // A restart must come back with the restored tree without the log's
  // pieces: a snapshot holds it at once.
  if (!recovering_) {
    if (snapshotter_.running())
      snapshot_again_ = true;
    else
      executor_.post([this] {
        if (!stopped_ && !restore_stage_) take_snapshot(nullptr);
      });
  }
  if (ours) finish_restore(result);
}

void Server::abandon_stale_restore(bool now) {
  if (!restore_stage_ || !consensus_ || !orders_writes(consensus_->role())) return;
  RestoreStage& s = *restore_stage_;
  if (restore_op_ && restore_op_->id == s.id) return;  // this server drives it
  const int64_t t = clock_.steady_ms();
  if (!now && t - s.progress_ms < kStallMs) return;
  if (s.abort_sent_ms && t - s.abort_sent_ms < kStallMs) return;
  s.abort_sent_ms = t;
  RestorePiece abort;
  abort.phase = RestorePiece::abort;
  abort.id = s.id;
  std::string why = now ? "the restore's server lost its leader, or restarted"
                        : "no piece came for " + std::to_string(kStallMs / 1000) + " s";
  abort.data = why;
  if (Status st = consensus_->submit(encode_restore_txn(abort)); !st)
    log_->warn("cannot abandon restore " + session_hex(s.id) + ": " + st.to_string());
}

}  // namespace corral::kernel
