// A client for the Docker Engine API on its unix socket, on the server's
// event loop: one request per connection, whole responses or streams.
// Shared by the docker discovery plugin and the service registry's
// container auto-registration.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "corral/common/docker_api.hpp"
#include "corral/sdk/status.hpp"

namespace corral::docker {

// One HTTP request on a fresh connection to the engine's socket.
// `on_data`, when set, receives the body as it streams (events); otherwise
// `done` gets the whole response once the engine closes the connection.
class DockerRequest : public std::enable_shared_from_this<DockerRequest> {
 public:
  using Done = std::function<void(sdk::Result<HttpResponse>)>;
  DockerRequest(boost::asio::io_context& io, std::string socket_path, std::string path);
  void start(Done done, std::function<void(std::string_view)> on_data = nullptr);
  // No callbacks after this.
  void cancel();

 private:
  void read();
  void received(std::string_view data);
  void finish(sdk::Result<HttpResponse> r);

  boost::asio::local::stream_protocol::socket socket_;
  std::string socket_path_, path_, request_, raw_;
  char buf_[16384];
  bool headers_done_ = false;
  Done done_;
  std::function<void(std::string_view)> on_data_;
};

}  // namespace corral::docker
