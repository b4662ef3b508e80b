// The read path: requests a server answers from its own tree in the
// session's turn (exists, getData, getChildren, getACL, multiRead, the
// watch bookkeeping, ...), and the reply each one gets.
#include <algorithm>

#include "corral/proto/jute.hpp"
#include "server/channel.hpp"
#include "server/channel_host.hpp"
#include "server/server_stats.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

using proto::Err;
using proto::JuteReader;
using proto::JuteWriter;
using proto::OpCode;

std::string Channel::execute_read(const Pending& p) {
  JuteReader r(p.request);
  std::string f;
  JuteWriter w(f);
  size_t at = w.begin_frame();
  const sdk::Zxid zxid = server_.last_zxid();
  DataTree& tree = tree_;
  auto header = [&](Err err) {
    proto::write(w, proto::ReplyHeader{p.xid, zxid, static_cast<int32_t>(err)});
  };
  auto malformed = [&]() { return error_frame(p.xid, Err::marshalling_error); };
  OpCode op = static_cast<OpCode>(p.type);
  switch (op) {
    case OpCode::ping:
      header(Err::ok);
      break;
    case OpCode::exists:
    case OpCode::get_data:
    case OpCode::get_children:
    case OpCode::get_children2: {
      // Read in place: the path as a view, the answer straight into the
      // frame after a header that an error rewrites.
      std::string_view path = r.read_string();
      bool watch = r.read_bool();
      if (!r.ok()) return malformed();
      f.reserve(256);
      const size_t header_at = f.size();
      header(Err::ok);
      Err err = path_read(op, path, watch, f);
      if (err != Err::ok) {
        f.resize(header_at);
        header(err);
      }
      break;
    }
    case OpCode::multi_read: {
      // Each read on its own: a failed one reports its error, the rest run.
      std::string body;
      JuteWriter bw(body);
      while (true) {
        proto::MultiHeader mh;
        if (!proto::read(r, mh)) return malformed();
        if (mh.done) break;
        proto::PathWatchRequest req;
        if ((mh.type != static_cast<int32_t>(OpCode::get_data) &&
             mh.type != static_cast<int32_t>(OpCode::get_children)) ||
            !proto::read(r, req))
          return malformed();
        std::string sub;
        Err err = path_read(static_cast<OpCode>(mh.type), req.path, req.watch, sub);
        if (err == Err::ok) {
          proto::write(bw, proto::MultiHeader{mh.type, false, 0});
          body += sub;
        } else {
          proto::write(bw, proto::MultiHeader{-1, false, static_cast<int32_t>(err)});
          bw.write_int(static_cast<int32_t>(err));
        }
      }
      proto::write(bw, proto::MultiHeader{-1, true, -1});
      header(Err::ok);
      f += body;
      break;
    }
    case OpCode::add_watch: {
      proto::PathModeRequest req;
      if (!proto::read(r, req)) return malformed();
      if (req.mode != 0 && req.mode != 1) {
        header(Err::bad_arguments);
        break;
      }
      if (!watches_.watch_persistent(req.path, this, req.mode == 1)) {
        header(refuse_watch());
        break;
      }
      header(Err::ok);
      w.write_int(0);  // ErrorResponse(0), as ZooKeeper answers
      break;
    }
    case OpCode::check_watches:
    case OpCode::remove_watches: {
      proto::PathModeRequest req;
      if (!proto::read(r, req)) return malformed();
      if (req.mode < 1 || req.mode > 5) {
        header(Err::bad_arguments);
        break;
      }
      bool found = watches_.find_or_remove(req.path, static_cast<WatchKind>(req.mode), this,
                                           op == OpCode::remove_watches);
      header(found ? Err::ok : Err::no_watcher);
      break;
    }
    case OpCode::get_ephemerals: {
      proto::PathRequest req;
      if (!proto::read(r, req)) return malformed();
      header(Err::ok);
      proto::write(w, tree.ephemerals(session_id_, req.path));
      break;
    }
    case OpCode::get_all_children_number: {
      proto::PathRequest req;
      if (!proto::read(r, req)) return malformed();
      const Node* n = tree.find(req.path);
      if (!n) {
        header(Err::no_node);
        break;
      }
      if (!permitted(tree.acl(*n), proto::perm::read, auth_ids_)) {
        header(Err::no_auth);
        break;
      }
      header(Err::ok);
      w.write_int(static_cast<int32_t>(tree.descendants(req.path)));
      break;
    }
    case OpCode::who_am_i: {
      header(Err::ok);
      w.write_count(static_cast<int32_t>(auth_ids_.size()));
      for (const proto::Id& id : auth_ids_) {
        w.write_string(id.scheme);
        // The user name: a digest id's user part, any other id whole.
        w.write_string(id.scheme == "digest" ? id.id.substr(0, id.id.find(':')) : id.id);
      }
      break;
    }
    case OpCode::get_acl: {
      proto::PathRequest req;
      if (!proto::read(r, req)) return malformed();
      const Node* n = tree.find(req.path);
      if (!n) {
        header(Err::no_node);
        break;
      }
      if (!permitted(tree.acl(*n), proto::perm::read | proto::perm::admin, auth_ids_)) {
        header(Err::no_auth);
        break;
      }
      header(Err::ok);
      // Without ADMIN, digests are masked (CVE-2019-0201).
      if (permitted(tree.acl(*n), proto::perm::admin, auth_ids_))
        proto::write(w, tree.acl(*n));
      else
        proto::write(w, masked_acl(tree.acl(*n)));
      proto::write(w, tree.stat(*n));
      break;
    }
    case OpCode::set_watches:
    case OpCode::set_watches2: {
      proto::SetWatches req;
      if (!proto::read(r, req, op == OpCode::set_watches2)) return malformed();
      // Re-registers watches after a reconnect, firing at once those whose
      // node changed since the client last heard (relative_zxid).
      WatchManager& wm = watches_;
      auto event = [&](proto::EventType t, const std::string& path) {
        notify({static_cast<int32_t>(t), static_cast<int32_t>(proto::KeeperState::sync_connected),
                path},
               -1);
      };
      // A one-shot watch past the limits cannot be kept: it fires at once,
      // as on a change, so that the client reads again (and meets the
      // refusal there, where it sees it). A persistent one has no such
      // event; the reply's error is all that tells of it.
      bool refused = false;
      auto keep = [&](bool kept, proto::EventType otherwise, const std::string& path) {
        if (kept) return;
        refused = true;
        event(otherwise, path);
      };
      for (const std::string& path : req.data_watches) {
        const Node* n = tree.find(path);
        if (!n)
          event(proto::EventType::node_deleted, path);
        else if (n->mzxid > req.relative_zxid)
          event(proto::EventType::node_data_changed, path);
        else
          keep(wm.watch_data(path, this), proto::EventType::node_data_changed, path);
      }
      for (const std::string& path : req.exist_watches) {
        if (tree.find(path))
          event(proto::EventType::node_created, path);
        else
          keep(wm.watch_data(path, this), proto::EventType::node_created, path);
      }
      for (const std::string& path : req.child_watches) {
        const Node* n = tree.find(path);
        if (!n)
          event(proto::EventType::node_deleted, path);
        else if (n->pzxid() > req.relative_zxid)
          event(proto::EventType::node_children_changed, path);
        else
          keep(wm.watch_children(path, this), proto::EventType::node_children_changed, path);
      }
      // Persistent watches are simply re-added; they never fire on re-add.
      for (const std::string& path : req.persistent_watches)
        refused = !wm.watch_persistent(path, this, false) || refused;
      for (const std::string& path : req.persistent_recursive_watches)
        refused = !wm.watch_persistent(path, this, true) || refused;
      header(refused ? refuse_watch() : Err::ok);
      break;
    }
    default:
      header(Err::unimplemented);
      break;
  }
  w.finish_frame(at);
  return f;
}

Err Channel::path_read(OpCode op, std::string_view path, bool watch, std::string& body) {
  DataTree& tree = tree_;
  // As ZooKeeper: exists refuses an embedded NUL; otherwise a path that
  // could never be created is simply not found ("" is the root).
  if (op == OpCode::exists && path.find('\0') != std::string_view::npos) return Err::bad_arguments;
  const Node* n = tree.find(path);
  if (!n) {
    if (watch && op == OpCode::exists && !watches_.watch_data(path, this)) return refuse_watch();
    return Err::no_node;
  }
  if (op != OpCode::exists && !permitted(tree.acl(*n), proto::perm::read, auth_ids_))
    return Err::no_auth;
  if (watch) {
    const bool ok = op == OpCode::exists || op == OpCode::get_data
                        ? watches_.watch_data(path, this)
                        : watches_.watch_children(path, this);
    if (!ok) return refuse_watch();
  }
  JuteWriter w(body);
  if (op == OpCode::exists) {
    proto::write(w, tree.stat(*n));
  } else if (op == OpCode::get_data) {
    if (n->data_null())
      w.write_null_buffer();
    else
      w.write_buffer(n->data());
    proto::write(w, tree.stat(*n));
  } else {
    w.write_count(n->num_children());
    n->children().for_each([&](const Node* c) { w.write_string(c->name()); });
    if (op == OpCode::get_children2) proto::write(w, tree.stat(*n));
  }
  return Err::ok;
}

Err Channel::refuse_watch() {
  if (!watch_refused_) {
    watch_refused_ = true;
    server_.log().warn("connection from " + link_->remote_address() + ": a watch refused, at " +
                       std::to_string(watches_.bytes_of(this)) + " bytes of its watches and " +
                       std::to_string(watches_.total_bytes()) +
                       " of the server's (server.max_watch_bytes_per_connection, "
                       "server.max_watch_bytes)");
  }
  // SYSTEMERROR, which every client knows: ZooKeeper has no such limit,
  // and a client that does not know THROTTLEDOP (kazoo) fails in its
  // connection's thread on it and drops the connection.
  return Err::system_error;
}

}  // namespace corral::kernel
