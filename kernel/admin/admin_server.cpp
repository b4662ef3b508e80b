#include "admin/admin_server.hpp"

#include "corral/sdk/json.hpp"
#include "server/server.hpp"

namespace corral::kernel {

namespace {

constexpr size_t kMaxHead = 16 * 1024;

std::string http(int code, const char* reason, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string json_error(const std::string& message) { return "{\"error\":" + sdk::json_quote(message) + "}\n"; }

}  // namespace

class AdminServer::HttpConnection final : public sdk::ConnectionHandler {
 public:
  HttpConnection(AdminServer& owner, std::shared_ptr<sdk::Connection> conn) : owner_(owner), conn_(std::move(conn)) {
    conn_->start(this);
  }
  void on_data(sdk::BytesView data) override {
    if (done_) return;
    head_.append(data);
    size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (head_.size() > kMaxHead) finish(http(431, "Request Header Fields Too Large", "application/json",
                                               json_error("request head longer than 16384 bytes")));
      return;
    }
    finish(owner_.respond(std::string_view(head_).substr(0, end)));
  }
  void on_closed(const sdk::Status&) override { owner_.closed(this); }
  void shutdown() {
    done_ = true;
    conn_->close();
  }

 private:
  void finish(std::string response) {
    done_ = true;
    conn_->send(std::move(response));
    conn_->close();  // flushes, then closes
    owner_.closed(this);
  }
  AdminServer& owner_;
  std::shared_ptr<sdk::Connection> conn_;
  std::string head_;
  bool done_ = false;
};

AdminServer::AdminServer(Server& server) : server_(server) {}
AdminServer::~AdminServer() { stop(); }

sdk::Status AdminServer::start(sdk::Transport& transport, const sdk::Endpoint& where) {
  auto l = transport.listen(where, [this](std::shared_ptr<sdk::Connection> c) {
    auto conn = std::make_unique<HttpConnection>(*this, std::move(c));
    HttpConnection* raw = conn.get();
    connections_.emplace(raw, std::move(conn));
  });
  if (!l) return {l.status().code(), "admin endpoint: " + l.status().message()};
  listener_ = std::move(l.value());
  return {};
}

void AdminServer::stop() {
  listener_.reset();
  for (auto& [raw, conn] : connections_) conn->shutdown();
  connections_.clear();
}

void AdminServer::closed(HttpConnection* c) {
  // The connection may be on the stack: destroy it from the loop.
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  std::shared_ptr<HttpConnection> keep(std::move(it->second));
  connections_.erase(it);
  server_.executor().post([keep] {});
}

std::string AdminServer::respond(std::string_view head) {
  std::string_view line = head.substr(0, head.find("\r\n"));
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return http(400, "Bad Request", "application/json", json_error("not an HTTP/1.x request line"));
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (method != "GET" && method != "HEAD")
    return http(405, "Method Not Allowed", "application/json", json_error("only GET is supported"));
  if (target == "/metrics") return http(200, "OK", "text/plain; version=0.0.4", server_.metrics_text());
  if (target == "/commands" || target == "/commands/") {
    std::string body = "{\"commands\":[";
    bool first = true;
    for (const auto& name : server_.admin_command_names()) {
      body += (first ? "\"" : ",\"") + name + "\"";
      first = false;
    }
    return http(200, "OK", "application/json", body + "]}\n");
  }
  if (target.rfind("/commands/", 0) == 0) {
    std::string_view name = target.substr(10);
    if (auto body = server_.admin_command(name)) return http(200, "OK", "application/json", *body);
    return http(404, "Not Found", "application/json",
                json_error("no command '" + std::string(name) + "'; GET /commands lists them"));
  }
  return http(404, "Not Found", "application/json", json_error("try /commands or /metrics"));
}

}  // namespace corral::kernel
