// The admin endpoint: a small HTTP/1.1 server, on its own address and over
// the transport plugin, answering ZooKeeper AdminServer-style JSON commands
// (GET /commands, /commands/<name>) and Prometheus metrics (GET /metrics).
// One request per connection; anything but a well-formed GET gets a 4xx.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "corral/sdk/transport.hpp"

namespace corral::kernel {

class Server;

class AdminServer {
 public:
  explicit AdminServer(Server& server);
  ~AdminServer();
  sdk::Status start(sdk::Transport& transport, const sdk::Endpoint& where);
  void stop();
  sdk::Endpoint endpoint() const { return listener_ ? listener_->local_endpoint() : sdk::Endpoint{}; }

  // The response to one request (status line, headers and body).
  std::string respond(std::string_view request_head);

 private:
  class HttpConnection;
  void closed(HttpConnection* c);

  Server& server_;
  std::unique_ptr<sdk::Listener> listener_;
  std::unordered_map<HttpConnection*, std::unique_ptr<HttpConnection>> connections_;
};

}  // namespace corral::kernel
