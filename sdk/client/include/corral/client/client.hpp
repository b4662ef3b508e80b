// An asynchronous ZooKeeper-protocol client on Boost.Asio, for programs built
// on the SDK (the `corral` CLI, `corral-bench`, applications). It speaks to
// Corral and to Apache ZooKeeper alike.
//
// Threading: a Client lives on one io_context and must be used from the
// thread that runs it; every callback runs there too. Requests are pipelined
// and complete in the order made. The client does not reconnect by itself:
// on a lost connection every pending call fails with CONNECTIONLOSS and the
// event callback hears KeeperState::disconnected.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"
#include "corral/proto/response.hpp"
#include "corral/sdk/status.hpp"
#include "corral/sdk/types.hpp"

namespace boost::asio {
class io_context;
}

namespace corral::client {

using proto::Response;
using Callback = std::function<void(const Response&)>;
// Watch events, and state changes as events of type none.
using EventFn = std::function<void(const proto::WatcherEvent&)>;

// TLS to a server's secure client port (ZooKeeper's secureClientPort).
struct TlsOptions {
  bool enabled = false;
  std::string ca;           // PEM authorities the server's certificate must chain to
  std::string certificate;  // PEM client certificate (optional), its key in `key`
  std::string key;
  bool verify_host = true;  // the certificate must name the host dialed
};

struct Options {
  std::vector<sdk::Endpoint> servers;  // tried in order
  int32_t session_timeout_ms = 30000;
  int64_t connect_timeout_ms = 5000;
  TlsOptions tls;
};
// Parses a ZooKeeper connect string, "host:port[,host:port...]" (a chroot
// suffix is not supported). Errors say which part is wrong.
sdk::Result<Options> parse_connect_string(std::string_view hosts);

// One operation of a multi.
struct Op {
  proto::OpCode type = proto::OpCode::create;  // create, create2, remove, set_data, check
  std::string path;
  std::string data;
  int32_t version = -1;
  proto::CreateMode mode = proto::CreateMode::persistent;
};

class Client {
 public:
  Client(boost::asio::io_context& io, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects to the first server that accepts a session. `done` gets ok, or
  // the reason the last server tried refused ("connect 127.0.0.1:2181:
  // Connection refused").
  void connect(std::function<void(const sdk::Status&)> done);
  void on_event(EventFn fn);

  bool connected() const;
  int64_t session_id() const;
  int32_t session_timeout_ms() const;  // as negotiated
  std::string server() const;          // the server connected to
  size_t outstanding() const;          // requests sent and not yet answered
  // The io_context the client runs on (for a recipe's timers).
  boost::asio::io_context& io_context() const;

  // create2, or createContainer for CreateMode::container, or createTTL for
  // the TTL modes (with `ttl_ms`; the server must enable extended types).
  void create(std::string_view path, std::string_view data, proto::CreateMode mode, Callback done,
              const proto::AclList& acl = proto::open_acl_unsafe(), int64_t ttl_ms = 0);
  void remove(std::string_view path, int32_t version, Callback done);
  void set_data(std::string_view path, std::string_view data, int32_t version, Callback done);
  void get_data(std::string_view path, bool watch, Callback done);
  void exists(std::string_view path, bool watch, Callback done);
  void get_children(std::string_view path, bool watch, Callback done);  // with Stat
  void get_acl(std::string_view path, Callback done);
  void set_acl(std::string_view path, const proto::AclList& acl, int32_t version, Callback done);
  void sync(std::string_view path, Callback done);
  // Adds an identity to the session ("digest", "user:password"). A refused
  // one answers AUTHFAILED, after which the server closes the connection.
  void add_auth(std::string_view scheme, std::string_view auth, Callback done);
  // The session's identities (whoAmI, ZooKeeper 3.7+).
  void who_am_i(Callback done);
  // A persistent watch on `path` (and, when `recursive`, every node below);
  // its events reach on_event() until the session ends.
  void add_watch(std::string_view path, bool recursive, Callback done);
  // Changes the ensemble's membership (ZooKeeper's reconfig): incrementally
  // (`joining` "server.N=..." lines, comma-separated; `leaving` ids) or,
  // with `members`, as a whole; nullopt leaves an argument out. The answer
  // holds the new /zookeeper/config text and stat. `from_config` -1: any
  // current version.
  void reconfig(std::optional<std::string> joining, std::optional<std::string> leaving,
                std::optional<std::string> members, int64_t from_config, Callback done);
  void multi(const std::vector<Op>& ops, Callback done);
  // Ends the session (its ephemerals go) and closes the connection.
  void close(std::function<void()> done = nullptr);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace corral::client
