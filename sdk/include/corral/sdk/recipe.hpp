// Recipes: server-side features built on the tree (a service registry, a
// server directory, ...). A recipe works through an in-process session that
// behaves exactly like a client's: the same requests, ordering, watches and
// ephemerals, replicated by consensus like any other write.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"
#include "corral/proto/response.hpp"
#include "corral/sdk/http.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/types.hpp"

namespace corral::sdk {

// The outcome of one tree operation; which fields are set depends on the call.
using TreeResult = proto::Response;
using TreeCallback = std::function<void(const TreeResult&)>;
// Watch events and session state changes (type none: the state field says
// which, e.g. expired). Runs on the loop thread.
using WatchCallback = std::function<void(const proto::WatcherEvent&)>;

// A session on the tree owned by a recipe. Calls complete in the order made
// (ZooKeeper's per-session FIFO); every callback runs on the loop thread,
// never inside the call that issued it. Ephemerals it creates live as long as
// the session: closed by close(), by the destructor, or on expiry.
class TreeSession {
 public:
  virtual ~TreeSession();
  virtual int64_t session_id() const = 0;
  virtual void create(std::string_view path, BytesView data, proto::CreateMode mode,
                      TreeCallback done) = 0;
  virtual void remove(std::string_view path, int32_t version, TreeCallback done) = 0;
  virtual void set_data(std::string_view path, BytesView data, int32_t version,
                        TreeCallback done) = 0;
  // With `watch`, a one-shot watch is left that reports to the session's
  // WatchCallback, as a client's watch would.
  virtual void get_data(std::string_view path, bool watch, TreeCallback done) = 0;
  virtual void exists(std::string_view path, bool watch, TreeCallback done) = 0;
  virtual void get_children(std::string_view path, bool watch, TreeCallback done) = 0;
  // ZooKeeper's sync: once `done` runs, reads see every write the leader
  // committed before the sync (a follower catches up first).
  virtual void sync(std::string_view path, TreeCallback done) = 0;
  // Ends the session now (its ephemerals are deleted). Idempotent.
  virtual void close() = 0;
  // Calls made after this one are checked against `identities` (an HTTP
  // caller's, say) instead of the session's own, until the next act_as; an
  // empty list returns to the session's own. It travels in order with the
  // calls, so calls already made keep the identities they were made with.
  // Ephemerals stay the session's.
  virtual void act_as(std::vector<proto::Id> identities) = 0;
  // Any other operation a client may send: `op` and its request body as a
  // client encodes it (proto::write of the record after the header). getACL,
  // setACL, create with an ACL or a TTL, multi, getEphemerals, whoAmI, ... are
  // answered exactly as the same request from a client would be, in order with
  // the calls above. The session's own business (connect, ping, close, auth,
  // sasl, setWatches) is refused with Err::bad_arguments: close() ends a
  // session and act_as() says whom it acts for. Any call whose request would
  // exceed server.max_frame_bytes fails with Err::marshalling_error, alone
  // (a client's connection would be closed for it).
  virtual void request(proto::OpCode op, std::string body, TreeCallback done) = 0;
};

// What the kernel offers a recipe.
class RecipeHost {
 public:
  virtual ~RecipeHost();
  // Opens a session with the given timeout (clamped as a client's would be).
  // `on_event` receives watch events and session state changes.
  virtual Result<std::unique_ptr<TreeSession>> open_session(int32_t timeout_ms,
                                                            WatchCallback on_event) = 0;
  // The server's current role in its ensemble.
  virtual Role role() const = 0;
  // The zxid of the last change applied on this server.
  virtual Zxid last_applied() const = 0;
  // Routes on the server's admin HTTP endpoint; null when it is off.
  virtual HttpRouter* http() = 0;
};

class Recipe : public Plugin {
 public:
  ~Recipe() override;
  // Begins the recipe's work. `host` outlives the recipe.
  virtual Status start(RecipeHost& host) = 0;
  // Ends it: close sessions, cancel timers. No callbacks reach the recipe after.
  virtual void stop() = 0;
};

}  // namespace corral::sdk
