// HTTP for plugins: a recipe adds routes to the server's admin endpoint
// (the service registry's API, say) and answers them, at once or later
// (a blocking query), or as a stream (Server-Sent Events).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "corral/proto/records.hpp"
#include "corral/sdk/status.hpp"

namespace corral::sdk {

struct HttpRequest {
  std::string method;                          // "GET", "PUT", ...
  std::string path;                            // decoded, without the query
  std::map<std::string, std::string> query;    // decoded; a key without '=' maps to ""
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // "127.0.0.1:51234"
  // Over TLS (HTTPS).
  bool secure = false;
  // Who the caller proved to be before the request reached its handler: an
  // ip identity always, then digest (HTTP Basic checked as ZooKeeper's digest
  // scheme), sasl (Basic checked against the SASL users), x509 (a verified
  // client certificate) and super. A request whose credentials fail never
  // reaches a handler. Hand them to TreeSession::act_as so that the tree's
  // ACLs decide what the caller may do.
  std::vector<proto::Id> identities;
  // True when `identities` holds more than the ip identity.
  bool authenticated = false;
};

// Answers one request. Every call runs on the loop thread; calls after the
// client went away are ignored.
class HttpResponder {
 public:
  virtual ~HttpResponder();
  // The whole response; the connection closes after it.
  virtual void respond(int status, std::string_view content_type, std::string body) = 0;
  // A stream: the status and headers now, then send() as data comes, until
  // end() or the client goes away.
  virtual void stream_start(int status, std::string_view content_type) = 0;
  virtual void send(std::string data) = 0;
  virtual void end() = 0;
  // False once the client closed the connection.
  virtual bool open() const = 0;
  // Runs once if the client goes away before the response ended.
  virtual void on_gone(std::function<void()> fn) = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<HttpResponder>)>;

// The admin endpoint's router, as a recipe sees it.
class HttpRouter {
 public:
  virtual ~HttpRouter();
  // Requests whose path is `prefix` or starts with `prefix` + "/" go to
  // `handler` (the longest matching prefix wins). Fails when the prefix is
  // taken or the endpoint is off (server.admin_address = "").
  virtual Status add_route(std::string prefix, HttpHandler handler) = 0;
  virtual void remove_route(const std::string& prefix) = 0;
};

}  // namespace corral::sdk
