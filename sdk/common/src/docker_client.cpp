#include "corral/common/docker_client.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace corral::docker {

using sdk::Errc;
using sdk::Status;
using local = boost::asio::local::stream_protocol;

namespace {
constexpr size_t kMaxResponse = 64u << 20;
}

DockerRequest::DockerRequest(boost::asio::io_context& io, std::string socket_path, std::string path)
    : socket_(io), socket_path_(std::move(socket_path)), path_(std::move(path)) {}

void DockerRequest::start(Done done, std::function<void(std::string_view)> on_data) {
  done_ = std::move(done);
  on_data_ = std::move(on_data);
  request_ = http_get(path_);
  auto self = shared_from_this();
  socket_.async_connect(local::endpoint(socket_path_), [self](const boost::system::error_code& ec) {
    if (ec)
      return self->finish(
          Status(Errc::unavailable, "connect " + self->socket_path_ + ": " + ec.message()));
    boost::asio::async_write(
        self->socket_, boost::asio::buffer(self->request_),
        [self](const boost::system::error_code& wec, size_t) {
          if (wec) return self->finish(Status(Errc::io_error, "write: " + wec.message()));
          self->read();
        });
  });
}

void DockerRequest::cancel() {
  done_ = nullptr;
  on_data_ = nullptr;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void DockerRequest::read() {
  auto self = shared_from_this();
  socket_.async_read_some(
      boost::asio::buffer(buf_), [self](const boost::system::error_code& ec, size_t n) {
        if (n) self->received(std::string_view(self->buf_, n));
        if (ec == boost::asio::error::eof) return self->finish(parse_http_response(self->raw_));
        if (ec) return self->finish(Status(Errc::io_error, "read: " + ec.message()));
        if (self->raw_.size() > kMaxResponse)
          return self->finish(Status(Errc::corrupt, "response larger than 64 MiB"));
        self->read();
      });
}

void DockerRequest::received(std::string_view data) {
  if (!on_data_) {
    raw_.append(data);
    return;
  }
  if (!headers_done_) {
    raw_.append(data);
    size_t end = raw_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    auto head = parse_http_response(std::string_view(raw_).substr(0, end + 4));
    if (!head || head->status != 200) {
      return finish(head ? sdk::Result<HttpResponse>(
                               Status(Errc::unavailable, "HTTP " + std::to_string(head->status)))
                         : head);
    }
    headers_done_ = true;
    std::string rest = raw_.substr(end + 4);
    raw_.clear();
    if (!rest.empty() && on_data_) on_data_(rest);
    return;
  }
  on_data_(data);
}

void DockerRequest::finish(sdk::Result<HttpResponse> r) {
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (auto done = std::move(done_)) {
    done_ = nullptr;
    on_data_ = nullptr;
    done(std::move(r));
  }
}

}  // namespace corral::docker
