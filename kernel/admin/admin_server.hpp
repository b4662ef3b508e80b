// The admin endpoint: a small HTTP/1.1 server, on its own address and over
// the transport plugin. It answers ZooKeeper AdminServer-style JSON commands
// (GET /commands, /commands/<name>) and Prometheus metrics (GET /metrics),
// and routes other paths to the handlers recipes add (sdk::HttpRouter).
// One request per connection; a malformed request gets a 4xx and closes
// that connection only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "corral/sdk/http.hpp"
#include "corral/sdk/transport.hpp"
#include "util/log_limiter.hpp"

namespace corral::kernel {

class Server;
class BackupSink;

// Parses an HTTP/1.x request head (the request line and headers, without
// the blank line after them) into `req` and the body length it announces:
// 0 when it is acceptable, else the status to refuse it with, and `error`.
// Bodies up to `max_body` bytes are accepted. A request with two Host
// headers, or an HTTP/1.1 one with none, is refused (400).
int parse_http_head(std::string_view head, sdk::HttpRequest& req, size_t& body_length,
                    std::string& error, size_t max_body = 1024 * 1024);

class AdminServer final : public sdk::HttpRouter {
 public:
  explicit AdminServer(Server& server);
  ~AdminServer() override;

  // `tls`: the transport encrypts (HTTPS), so requests are marked secure.
  sdk::Status start(sdk::Transport& transport, const sdk::Endpoint& where, bool tls);
  void stop();
  sdk::Endpoint endpoint() const {
    return listener_ ? listener_->local_endpoint() : sdk::Endpoint{};
  }

  // HttpRouter
  sdk::Status add_route(std::string prefix, sdk::HttpHandler handler) override;
  void remove_route(const std::string& prefix) override;

  // The built-in answer to a request (status line, headers and body), or
  // nullopt when a recipe's route takes it.
  std::optional<std::string> respond_builtin(const sdk::HttpRequest& request);
  // Why a backup request (GET /commands/snapshot) is refused, if it is.
  std::optional<std::string> backup_refusal(const sdk::HttpRequest& request);
  std::optional<std::string> transfer_refusal(const sdk::HttpRequest& request);
  // Why a restore (POST /commands/restore) is refused, if it is: asked once
  // its head is read, before its body is taken.
  std::optional<std::string> restore_refusal(const sdk::HttpRequest& request);
  const sdk::HttpHandler* route(const std::string& path) const;

 private:
  friend class BackupSink;
  class HttpConnection;
  void closed(HttpConnection* c);

  Server& server_;
  std::unique_ptr<sdk::Listener> listener_;
  std::unordered_map<HttpConnection*, std::shared_ptr<HttpConnection>> connections_;
  LogLimiter refusals_;
  bool tls_ = false;
  // The connection whose restore is arriving or running (one at a time).
  HttpConnection* restoring_ = nullptr;
  std::map<std::string, sdk::HttpHandler> routes_;
  std::vector<std::string> host_names_;  // this machine's, which requests may name
};

// 401 with a Basic challenge and `why` as the JSON error.
std::string unauthorized(const std::string& why);
// "HTTP/1.1 <code> <reason>" plus headers and body, closing the connection.
std::string http_response(int code, std::string_view content_type, const std::string& body);
// Why a request naming this host (its Host header) is not answered: a name
// that is not an IP address, localhost, one of `own_names` or one of
// `allowed` (server.admin_hosts, lowercase: names, ".domain" for any name
// under it, "*" for any); nothing when it may be.
std::optional<std::string> misdirected(const sdk::HttpRequest& req,
                                       const std::vector<std::string>& allowed,
                                       const std::vector<std::string>& own_names);
// This machine's names: its host name, and the other names /etc/hosts gives
// it on the same line (lowercase).
std::vector<std::string> own_host_names();
// Percent-decoding for paths and query strings ('+' is a space in queries).
std::string url_decode(std::string_view s, bool plus_is_space);

}  // namespace corral::kernel
