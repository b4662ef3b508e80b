#include "admin/admin_server.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>

#include "admin/http_auth.hpp"
#include "corral/common/http_parse.hpp"
#include "corral/common/json.hpp"
#include "server/server.hpp"
#include "wal_format.hpp"

namespace corral::kernel {

namespace {

constexpr size_t kMaxHead = 16 * 1024;
constexpr size_t kMaxBody = 1024 * 1024;

const char* reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Entity";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return code < 400 ? "OK" : "Error";
  }
}

std::string json_error(const std::string& message) {
  return "{\"error\":" + common::json_quote(message) + "}\n";
}

}  // namespace

std::string http_response(int code, std::string_view content_type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason(code) +
         "\r\nContent-Type: " + std::string(content_type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

std::string unauthorized(const std::string& why) {
  std::string body = json_error(why);
  return "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"corral\", "
         "charset=\"UTF-8\"\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

// A browser sends Origin with a POST, PUT or DELETE (and Sec-Fetch-Site),
// so a page from another site cannot make a change with the credentials or
// the address of the browser's user (cross-site request forgery). Clients
// that are not browsers send neither and are not affected.
static bool cross_site_change(const sdk::HttpRequest& req) {
  if (req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS") return false;
  if (auto f = req.headers.find("sec-fetch-site");
      f != req.headers.end() && common::ascii_lower(f->second) == "cross-site")
    return true;
  auto o = req.headers.find("origin");
  if (o == req.headers.end()) return false;
  std::string origin = common::ascii_lower(o->second);
  size_t scheme = origin.find("://");
  if (scheme == std::string::npos) return true;  // "null" (a sandboxed or file page), or garbage
  std::string origin_host = origin.substr(scheme + 3);
  auto h = req.headers.find("host");
  if (h == req.headers.end()) return true;
  std::string host = common::ascii_lower(h->second);
  // Default ports: Origin leaves them out when Host may not.
  auto bare = [](std::string s, std::string_view port) {
    if (s.size() > port.size() && s.compare(s.size() - port.size(), port.size(), port) == 0)
      s.resize(s.size() - port.size());
    return s;
  };
  std::string_view default_port = origin.rfind("https", 0) == 0 ? ":443" : ":80";
  return bare(origin_host, default_port) != bare(host, default_port);
}

// The host a request names (its Host header without the port), lowercased;
// empty when there is none (HTTP/1.0).
static std::string request_host(const sdk::HttpRequest& req) {
  auto h = req.headers.find("host");
  if (h == req.headers.end()) return "";
  std::string host = common::ascii_lower(common::trim_http_space(h->second));
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(0, close + 1);
  }
  if (size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
  return host;
}

std::vector<std::string> own_host_names() {
  std::vector<std::string> names;
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return names;
  const std::string own = common::ascii_lower(buf);
  names.push_back(own);
  // The names /etc/hosts gives this machine beside its own (a Kubernetes
  // pod's FQDN, a Docker container's aliases): read, not resolved, so a
  // start never waits on DNS.
  std::ifstream hosts("/etc/hosts");
  std::string line;
  for (int lines = 0; lines < 10000 && std::getline(hosts, line); ++lines) {
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string address, name;
    std::vector<std::string> on_line;
    fields >> address;
    while (fields >> name) on_line.push_back(common::ascii_lower(name));
    if (std::find(on_line.begin(), on_line.end(), own) == on_line.end()) continue;
    for (std::string& n : on_line)
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  }
  return names;
}

std::optional<std::string> misdirected(const sdk::HttpRequest& req,
                                       const std::vector<std::string>& allowed,
                                       const std::vector<std::string>& own_names) {
  std::string host = request_host(req);
  if (host.empty()) return std::nullopt;
  boost::system::error_code ec;
  if (host.front() == '[' && host.back() == ']') {  // an IPv6 address
    boost::asio::ip::make_address_v6(std::string_view(host).substr(1, host.size() - 2), ec);
    if (!ec) return std::nullopt;
  }
  boost::asio::ip::make_address_v4(host, ec);
  if (!ec) return std::nullopt;
  if (host.back() == '.') host.pop_back();  // the root's dot
  auto under = [&](std::string_view name, std::string_view domain) {
    return name.size() > domain.size() && name.ends_with(domain) &&
           name[name.size() - domain.size() - 1] == '.';
  };
  if (host == "localhost" || under(host, "localhost")) return std::nullopt;
  // This machine's names exactly: a name that merely starts with one
  // (node1.attacker.example) is anyone's to point anywhere.
  for (const std::string& own : own_names)
    if (host == own) return std::nullopt;
  for (const std::string& a : allowed) {
    if (a == "*" || a == host) return std::nullopt;
    if (a.size() > 1 && a.front() == '.' && under(host, std::string_view(a).substr(1)))
      return std::nullopt;
  }
  return "this admin endpoint does not answer to the name '" + host +
         "': it answers to IP addresses, localhost, its machine's own names and those in "
         "server.admin_hosts (a page that points another name at it is refused)";
}

std::string url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += c;
      }
    } else {
      out += c;
    }
  }
  return out;
}

int parse_http_head(std::string_view head, sdk::HttpRequest& req, size_t& body_length,
                    std::string& error, size_t max_body) {
  // Boost.Beast's parser reads the request line and the fields; the body,
  // read by the connection, is not given to it.
  namespace http = boost::beast::http;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHead + 4));
  parser.body_limit(max_body);
  std::string whole;
  whole.reserve(head.size() + 4);
  whole.append(head).append("\r\n\r\n");
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(whole), ec);
  if (!ec && !parser.is_header_done()) ec = http::error::need_more;
  if (ec == http::error::body_limit) {
    error = "request body larger than " + std::to_string(max_body) + " bytes";
    return 413;
  }
  if (ec == http::error::bad_content_length) {
    error = "Content-Length is not a number";
    return 400;
  }
  if (ec) {
    error = "not an HTTP/1.x request (" + ec.message() + ")";
    return 400;
  }
  const auto& msg = parser.get();
  // One Host, and one in every HTTP/1.1 request (RFC 9112, 3.2): the name a
  // request is for decides whether it is answered at all (misdirected()).
  if (msg.count(http::field::host) > 1) {
    error = "more than one Host header";
    return 400;
  }
  if (msg.version() >= 11 && msg.count(http::field::host) == 0) {
    error = "an HTTP/1.1 request needs a Host header";
    return 400;
  }
  if (parser.chunked() || msg.count(http::field::transfer_encoding)) {
    error = "chunked request bodies are not supported; send Content-Length";
    return 501;
  }
  req.method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  std::string_view query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  req.path = url_decode(target, false);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    if (!kv.empty())
      req.query[url_decode(kv.substr(0, eq), true)] =
          eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  req.headers.clear();
  for (const auto& f : msg) {
    std::string_view name(f.name_string().data(), f.name_string().size());
    std::string_view value(f.value().data(), f.value().size());
    req.headers[common::ascii_lower(name)] = std::string(value);
  }
  body_length = static_cast<size_t>(parser.content_length().value_or(0));
  return 0;
}

// One client connection: reads one request (head and body), answers it
// built-in or through a route, then closes.
class AdminServer::HttpConnection final : public sdk::ConnectionHandler,
                                          public sdk::HttpResponder,
                                          public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(AdminServer& owner, std::shared_ptr<sdk::Connection> conn)
      : owner_(&owner), conn_(std::move(conn)) {}
  void begin(std::chrono::milliseconds request_timeout) {
    conn_->start(this);
    // A request must arrive whole in time: a connection that trickles its
    // head (or never sends one) is not held.
    std::weak_ptr<HttpConnection> weak = weak_from_this();
    deadline_ = owner_->server_.executor().schedule(request_timeout, [weak, request_timeout] {
      auto self = weak.lock();
      if (self && self->state_ == State::reading)
        self->fail(408, "no whole request within " + std::to_string(request_timeout.count()) +
                            " ms (server.admin_request_timeout_ms)");
    });
  }

  void on_data(sdk::BytesView data) override {
    if (state_ != State::reading) return;
    in_.append(data);
    if (!head_done_) {
      size_t end = in_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (in_.size() > kMaxHead)
          fail(431, "request head longer than " + std::to_string(kMaxHead) + " bytes");
        return;
      }
      if (!parse_head(std::string_view(in_).substr(0, end))) return;
      head_done_ = true;
      in_.erase(0, end + 4);
      if (req_.path == "/commands/restore" && !admit_restore()) return;
    }
    if (in_.size() < body_length_) return;
    in_.resize(body_length_);
    req_.body = std::move(in_);
    in_.clear();
    dispatch();
  }

  void on_closed(const sdk::Status&) override { gone(); }

  void shutdown() {
    state_ = State::done;
    owner_ = nullptr;
    conn_->close();
  }

  // HttpResponder
  void respond(int status, std::string_view content_type, std::string body) override {
    if (state_ == State::done || state_ == State::streaming) return;
    finish(http_response(status, content_type, body));
  }
  void stream_start(int status, std::string_view content_type) override {
    if (state_ == State::done || state_ == State::streaming) return;
    state_ = State::streaming;
    conn_->send("HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                "\r\nContent-Type: " + std::string(content_type) +
                "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n");
  }
  void send(std::string data) override {
    if (state_ != State::streaming || data.empty()) return;
    if (owner_ && conn_->queued_bytes() + data.size() >
                      static_cast<size_t>(owner_->server_.config().server.max_output_bytes)) {
      // A subscriber that does not read its stream is let go.
      owner_->server_.log().info(
          "closing the event stream to " + conn_->remote_address() + ": " +
          std::to_string(conn_->queued_bytes()) +
          " bytes wait for a reader that does not read (server.max_output_bytes)");
      finish("");
      return;
    }
    conn_->send(std::move(data));
  }
  void end() override {
    if (state_ != State::streaming) return;
    finish("");
  }
  bool open() const override { return state_ != State::done; }
  void on_gone(std::function<void()> fn) override { on_gone_ = std::move(fn); }

 private:
  enum class State { reading, waiting, streaming, done };

  bool parse_head(std::string_view head) {
    std::string why;
    // The limit depends on the path: checked once the head is read.
    int code = parse_http_head(head, req_, body_length_, why, SIZE_MAX);
    // (A restore's, once its caller is known: admit_restore.)
    if (code == 0 && req_.path != "/commands/restore" && body_length_ > kMaxBody) {
      code = 413;
      why = "request body larger than " + std::to_string(kMaxBody) + " bytes";
    }
    if (code != 0) {
      fail(code, why);
      return false;
    }
    // Before anything else, a restore's body included: a name this
    // endpoint does not answer to gets nothing.
    if (auto refused =
            misdirected(req_, owner_->server_.config().server.admin_hosts, owner_->host_names_)) {
      owner_->refusals_.warn(owner_->server_.log(), "admin endpoint: refusing a request from " +
                                                        conn_->remote_address() + ": " + *refused);
      fail(421, *refused);
      return false;
    }
    req_.remote = conn_->remote_address();
    return true;
  }

  // POST /commands/restore: who asks, and whether a restore may start, are
  // decided from the head, before a body of up to server.max_restore_bytes
  // is taken; the body may then take up to kRestoreUploadMs to arrive.
  bool admit_restore() {
    if (cross_site_change(req_)) {
      fail(403, "a restore requested by another site's page is refused");
      return false;
    }
    AdminServer* owner = owner_;
    Server& server = owner->server_;
    req_.secure = owner->tls_;
    HttpCaller caller;
    std::string why;
    if (!authenticate_http(req_, conn_->security(), server.config().server, server.sasl_users(),
                           caller, why)) {
      owner->refusals_.warn(server.log(), "admin endpoint: refusing credentials from " +
                                              conn_->remote_address() + ": " + why);
      state_ = State::waiting;
      std::weak_ptr<HttpConnection> weak = weak_from_this();
      deadline_ = server.executor().schedule(std::chrono::seconds(1), [weak, why] {
        if (auto self = weak.lock()) self->finish(unauthorized(why));
      });
      return false;
    }
    req_.identities = std::move(caller.ids);
    req_.authenticated = caller.authenticated;
    if (auto refused = owner->restore_refusal(req_)) {
      state_ = State::waiting;
      answer(std::move(*refused));
      return false;
    }
    if (const auto max = static_cast<size_t>(server.config().server.max_restore_bytes);
        body_length_ > max) {
      fail(413, "the backup is larger than server.max_restore_bytes (" + std::to_string(max) +
                    " bytes)");
      return false;
    }
    owner->restoring_ = this;
    in_.reserve(body_length_);  // (within server.max_restore_bytes)
    // A client that waits to hear before it sends a large body (curl does,
    // and corral restore) may send it now: refusals above went instead.
    if (auto e = req_.headers.find("expect"); e != req_.headers.end() &&
                                              common::ascii_lower(e->second) == "100-continue" &&
                                              in_.size() < body_length_)
      conn_->send("HTTP/1.1 100 Continue\r\n\r\n");
    std::weak_ptr<HttpConnection> weak = weak_from_this();
    deadline_ = server.executor().schedule(std::chrono::milliseconds(kRestoreUploadMs), [weak] {
      auto self = weak.lock();
      if (self && self->state_ == State::reading)
        self->fail(408, "the backup did not arrive whole within " +
                            std::to_string(kRestoreUploadMs / 1000) + " s");
    });
    return true;
  }
  static constexpr int64_t kRestoreUploadMs = 600000;

  void dispatch() {
    state_ = State::waiting;
    if (cross_site_change(req_))
      return fail(403,
                  "a change requested by another site's page is refused (Origin or "
                  "Sec-Fetch-Site says so)");
    AdminServer* owner = owner_;
    req_.secure = owner->tls_;
    HttpCaller caller;
    std::string why;
    Server& server = owner->server_;
    if (!authenticate_http(req_, conn_->security(), server.config().server, server.sasl_users(),
                           caller, why)) {
      // As a failed SASL login on the client port: answered a second later,
      // so that guessing passwords costs a second a guess.
      owner->refusals_.warn(server.log(), "admin endpoint: refusing credentials from " +
                                              conn_->remote_address() + ": " + why);
      std::weak_ptr<HttpConnection> weak = weak_from_this();
      deadline_ = server.executor().schedule(std::chrono::seconds(1), [weak, why] {
        if (auto self = weak.lock()) self->finish(unauthorized(why));
      });
      return;
    }
    req_.identities = std::move(caller.ids);
    req_.authenticated = caller.authenticated;
    if (req_.path == "/commands/restore") return begin_restore();
    if (req_.path == "/commands/snapshot" || req_.path == "/commands/backup") {
      if (auto refused = owner->backup_refusal(req_)) return answer(std::move(*refused));
      return begin_backup();
    }
    if (req_.path == "/commands/leader_transfer") {
      if (auto refused = owner->transfer_refusal(req_)) return answer(std::move(*refused));
      return begin_transfer();
    }
    if (auto builtin = owner->respond_builtin(req_)) return answer(std::move(*builtin));
    const sdk::HttpHandler* handler = owner->route(req_.path);
    if (!handler) return fail(404, "no such path; GET /commands lists the admin commands");
    auto self = shared_from_this();
    (*handler)(req_, self);
  }

  void fail(int code, const std::string& why) {
    finish(http_response(code, "application/json", json_error(why)));
  }
  friend class AdminServer;
  friend class BackupSink;

  // A built-in answer. Credentials that do not hold the rights asked for
  // are answered a second later: guessing (a superuser's password, say) is
  // slow.
  void answer(std::string response) {
    if (req_.authenticated && response.rfind("HTTP/1.1 403", 0) == 0) {
      std::weak_ptr<HttpConnection> weak = weak_from_this();
      deadline_ = owner_->server_.executor().schedule(
          std::chrono::seconds(1), [weak, response = std::move(response)]() mutable {
            if (auto self = weak.lock()) self->finish(std::move(response));
          });
      return;
    }
    finish(std::move(response));
  }

  // GET /commands/snapshot: a backup, streamed as it is serialized.
  void begin_backup();
  // POST /commands/restore (admitted, body read): answered once the
  // restore took effect here.
  void begin_restore();
  // POST /commands/leader_transfer[?to=ID]: answered once the ensemble
  // serves under the new leader.
  void begin_transfer();
  void stream_head(int status, std::string_view content_type, const std::string& extra) {
    state_ = State::streaming;
    conn_->send("HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                "\r\nContent-Type: " + std::string(content_type) + "\r\n" + extra +
                "Cache-Control: no-cache\r\nConnection: close\r\n\r\n");
  }
  // Bytes of a backup: the snapshotter waits while too many are queued, so
  // these are not held to server.max_output_bytes as events are.
  void stream_bytes(std::string data) {
    if (state_ == State::streaming && !data.empty()) conn_->send(std::move(data));
  }
  size_t queued() const { return conn_->queued_bytes(); }
  // Ends a stream once all it queued has left, so that closing drops
  // nothing; `done` hears whether it did. A reader that takes nothing for
  // kStallMs is let go.
  void end_when_drained(std::function<void(const sdk::Status&)> done) {
    if (state_ != State::streaming || !owner_)
      return done({sdk::Errc::unavailable, "the reader went away"});
    const size_t queued = conn_->queued_bytes();
    const auto now = std::chrono::steady_clock::now();
    if (queued == 0) {
      end();
      return done({});
    }
    if (queued != drain_seen_) {
      drain_seen_ = queued;
      drain_since_ = now;
    } else if (now - drain_since_ > std::chrono::milliseconds(kStallMs)) {
      end();
      return done({sdk::Errc::unavailable, "the reader stopped reading"});
    }
    std::weak_ptr<HttpConnection> weak = weak_from_this();
    deadline_ = owner_->server_.executor().schedule(
        std::chrono::milliseconds(20), [weak, done = std::move(done)]() mutable {
          if (auto self = weak.lock())
            self->end_when_drained(std::move(done));
          else
            done({sdk::Errc::unavailable, "the reader went away"});
        });
  }
  static constexpr int64_t kStallMs = 60000;

  void finish(std::string response) {
    if (state_ == State::done) return;
    state_ = State::done;
    on_gone_ = nullptr;
    // A page's own script (X-Requested-With, as the console sends) asks for
    // credentials itself: no challenge, so the browser shows no dialog.
    if (response.rfind("HTTP/1.1 401", 0) == 0 && req_.headers.count("x-requested-with")) {
      size_t at = response.find("\r\nWWW-Authenticate:");
      if (at != std::string::npos && at < response.find("\r\n\r\n"))
        response.erase(at, response.find("\r\n", at + 2) - at);
    }
    if (!response.empty()) conn_->send(std::move(response));
    conn_->close();  // flushes, then closes
    if (owner_) owner_->closed(this);
  }

  void gone() {
    if (state_ == State::done) return;
    state_ = State::done;
    if (auto fn = std::move(on_gone_)) fn();
    if (owner_) owner_->closed(this);
  }

  AdminServer* owner_;
  std::shared_ptr<sdk::Connection> conn_;
  std::string in_;
  bool head_done_ = false;
  size_t body_length_ = 0;
  sdk::HttpRequest req_;
  State state_ = State::reading;
  std::function<void()> on_gone_;
  std::unique_ptr<sdk::Executor::Timer> deadline_;
  size_t drain_seen_ = SIZE_MAX;  // end_when_drained: what was queued, since when
  std::chrono::steady_clock::time_point drain_since_;
};

// A backup on its way to an HTTP client: the wal's snapshot file format
// (header, the tree as msgpack, a CRC-32C per MiB, trailer), so that
// `corral restore` and `corral-wal verify` check it as they check a snapshot.
class BackupSink final : public sdk::SnapshotSink {
 public:
  BackupSink(std::shared_ptr<AdminServer::HttpConnection> conn, sdk::Zxid zxid) : conn_(conn) {
    char z[24], name[40];
    std::snprintf(z, sizeof z, "0x%llx", static_cast<unsigned long long>(zxid));
    std::snprintf(name, sizeof name, "corral-backup.%016llx",
                  static_cast<unsigned long long>(zxid));
    conn->stream_head(200, "application/octet-stream",
                      std::string("last_zxid: ") + z +
                          "\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n");
    conn->stream_bytes(wal::snapshot_header(zxid));
  }
  sdk::Status write(sdk::BytesView chunk) override {
    auto c = conn_.lock();
    if (!c || !c->open()) return {sdk::Errc::unavailable, "the backup's reader went away"};
    sums_.add(chunk);
    c->stream_bytes(std::string(chunk));
    return {};
  }
  void commit(std::function<void(const sdk::Status&)> done) override {
    auto c = conn_.lock();
    if (!c || !c->open()) return done({sdk::Errc::unavailable, "the backup's reader went away"});
    c->stream_bytes(sums_.tail());
    c->end_when_drained(std::move(done));
  }
  void abort() override {
    // Cut short: the reader sees no trailer, and a restore refuses the file.
    if (auto c = conn_.lock()) c->end();
  }
  size_t queued_bytes() const override {
    // A reader that went away holds nothing back: the next write finds out.
    // One that takes nothing for a minute is let go the same way.
    auto c = conn_.lock();
    if (!c || !c->open()) return 0;
    // (While the snapshotter waits it asks every few milliseconds and
    // writes nothing, so a reader that reads makes the figure fall.)
    const size_t queued = c->queued();
    const auto now = std::chrono::steady_clock::now();
    if (queued < last_ || queued == 0) {
      since_ = now;
    } else if (now - since_ > std::chrono::milliseconds(AdminServer::HttpConnection::kStallMs)) {
      c->end();
      return 0;
    }
    last_ = queued;
    return queued;
  }

 private:
  mutable size_t last_ = 0;  // queued when last asked
  mutable std::chrono::steady_clock::time_point since_ =
      std::chrono::steady_clock::now();  // it last fell
  std::weak_ptr<AdminServer::HttpConnection> conn_;
  wal::SnapshotChecksums sums_;
};

void AdminServer::HttpConnection::begin_backup() {
  auto self = shared_from_this();
  state_ = State::waiting;
  sdk::Status st = owner_->server_.start_backup(
      [self](sdk::Zxid zxid) { return std::make_unique<BackupSink>(self, zxid); }, nullptr);
  if (!st) fail(503, st.message());
}

void AdminServer::HttpConnection::begin_transfer() {
  state_ = State::waiting;
  sdk::ServerId to = 0;
  if (auto it = req_.query.find("to"); it != req_.query.end()) {
    char* end = nullptr;
    long long id = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end || id <= 0 || id > INT32_MAX)
      return fail(400, "'to' takes a server id, not '" + it->second + "'");
    to = id;
  }
  Server& server = owner_->server_;
  const auto t0 = std::chrono::steady_clock::now();
  std::weak_ptr<HttpConnection> weak = weak_from_this();
  server.log().info(
      "admin endpoint: " + req_.remote + " asks for the leadership to go to " +
      (to ? "server " + std::to_string(to) : std::string("the voter most up to date")));
  server.transfer_leadership(to, [weak, &server, t0](const sdk::Status& st) {
    auto self = weak.lock();
    if (!self || self->state_ != State::waiting) return;
    if (!st) {
      int code = st.code() == sdk::Errc::invalid_argument ? 400
                 : st.code() == sdk::Errc::incompatible   ? 501
                 : st.code() == sdk::Errc::already_exists ? 409
                                                          : 503;
      return self->fail(code, st.message());
    }
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - t0);
    sdk::ConsensusStatus cs = server.consensus_status();
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", static_cast<double>(took.count()) / 1000.0);
    self->finish(http_response(200, "application/json",
                               "{\"leader\":" + std::to_string(cs.leader) +
                                   ",\"epoch\":" + std::to_string(cs.current_epoch) +
                                   ",\"took_ms\":" + ms + "}\n"));
  });
}

void AdminServer::HttpConnection::begin_restore() {
  state_ = State::waiting;
  Server& server = owner_->server_;
  const auto t0 = std::chrono::steady_clock::now();
  server.log().warn("admin endpoint: " + req_.remote + " restores a backup of " +
                    std::to_string(req_.body.size()) + " bytes");
  std::weak_ptr<HttpConnection> weak = weak_from_this();
  auto refuse = [](HttpConnection& c, const sdk::Status& st) {
    int code = st.code() == sdk::Errc::corrupt || st.code() == sdk::Errc::invalid_argument ? 400
               : st.code() == sdk::Errc::already_exists                                    ? 409
                                                                                           : 503;
    c.fail(code, st.message());
  };
  sdk::Status st = server.start_restore(
      std::move(req_.body), [weak, t0, refuse](const sdk::Result<Server::RestoreResult>& r) {
        auto self = weak.lock();
        if (!self || self->state_ != State::waiting) return;
        if (!r) return refuse(*self, r.status());
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - t0);
        char body[256];
        std::snprintf(body, sizeof body,
                      "{\"last_zxid\":\"0x%llx\",\"backup_zxid\":\"0x%llx\",\"znodes\":%zu,"
                      "\"sessions\":%zu,\"took_ms\":%lld}\n",
                      static_cast<unsigned long long>(r->zxid),
                      static_cast<unsigned long long>(r->backup_zxid), r->znodes, r->sessions,
                      static_cast<long long>(took.count()));
        self->finish(http_response(200, "application/json", body));
      });
  req_.body.clear();
  if (!st) refuse(*this, st);
}

std::optional<std::string> AdminServer::restore_refusal(const sdk::HttpRequest& req) {
  if (req.method != "POST")
    return http_response(405, "application/json",
                         json_error("'restore' replaces the tree: POST the backup as the body"));
  // It replaces every znode whatever its ACL: the rights a backup needs.
  if (!req.authenticated)
    return unauthorized(
        "'restore' replaces the whole tree: give the credentials of a user with every "
        "permission on / (HTTP Basic as digest or SASL, or a client certificate)");
  if (!server_.may_back_up(req.identities))
    return http_response(
        403, "application/json",
        json_error("'restore' replaces every znode whatever its ACL: it needs a superuser "
                   "(server.super_digest, or a superuser's certificate) or an identity that the "
                   "ACL of / names with every permission (cdrwa), and the credentials given "
                   "are neither"));
  if (restoring_)
    return http_response(409, "application/json",
                         json_error("a restore is being sent already; try again when it ends"));
  if (auto busy = server_.restore_busy())
    return http_response(busy->code() == sdk::Errc::already_exists ? 409 : 503, "application/json",
                         json_error(busy->message()));
  return std::nullopt;
}

std::optional<std::string> AdminServer::transfer_refusal(const sdk::HttpRequest& req) {
  if (req.method != "POST")
    return http_response(405, "application/json",
                         json_error("'leader_transfer' changes who leads: use POST"));
  // It changes the ensemble: never anonymous, whatever the whitelist says.
  if (!req.authenticated)
    return unauthorized(
        "'leader_transfer' changes who leads the ensemble: give the credentials of a user with "
        "every permission on / (HTTP Basic as digest or SASL, or a client certificate)");
  if (!server_.may_administer(req.identities))
    return http_response(403, "application/json",
                         json_error("'leader_transfer' needs every permission (cdrwa) on / and "
                                    "the credentials given do not hold them"));
  return std::nullopt;
}

std::optional<std::string> AdminServer::backup_refusal(const sdk::HttpRequest& req) {
  if (req.method != "GET")
    return http_response(405, "application/json", json_error("only GET is supported"));
  // A backup holds every znode's data, whatever its ACL: never anonymous,
  // whatever the whitelist says.
  if (!req.authenticated)
    return unauthorized(
        "'snapshot' copies the whole tree: give the credentials of a user with every "
        "permission on / (HTTP Basic as digest or SASL, or a client certificate)");
  if (!server_.may_back_up(req.identities))
    return http_response(
        403, "application/json",
        json_error("'snapshot' copies every znode whatever its ACL: it needs a superuser "
                   "(server.super_digest, or a superuser's certificate) or an identity that the "
                   "ACL of / names with every permission (cdrwa), and the credentials given "
                   "are neither"));
  return std::nullopt;
}

AdminServer::AdminServer(Server& server) : server_(server), host_names_(own_host_names()) {}
AdminServer::~AdminServer() { stop(); }

sdk::Status AdminServer::start(sdk::Transport& transport, const sdk::Endpoint& where, bool tls) {
  tls_ = tls;
  sdk::ListenOptions lo{sdk::StreamPurpose::admin, false};
  auto l = transport.listen(where, lo, [this](std::shared_ptr<sdk::Connection> c) {
    const auto& sc = server_.config().server;
    if (connections_.size() >= static_cast<size_t>(sc.admin_max_connections)) {
      refusals_.warn(server_.log(),
                     "admin endpoint: " + std::to_string(connections_.size()) +
                         " connections are open (server.admin_max_connections); refusing " +
                         c->remote_address());
      c->send(
          http_response(503, "application/json", json_error("too many connections; try again")));
      c->close();
      return;
    }
    auto conn = std::make_shared<HttpConnection>(*this, std::move(c));
    connections_.emplace(conn.get(), conn);
    conn->begin(std::chrono::milliseconds(sc.admin_request_timeout_ms));
  });
  if (!l) return {l.status().code(), "admin endpoint: " + l.status().message()};
  listener_ = std::move(l.value());
  return {};
}

void AdminServer::stop() {
  listener_.reset();
  restoring_ = nullptr;
  auto open = std::move(connections_);
  connections_.clear();
  for (auto& [raw, conn] : open) conn->shutdown();
  routes_.clear();
}

sdk::Status AdminServer::add_route(std::string prefix, sdk::HttpHandler handler) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix.empty() || prefix[0] != '/')
    return {sdk::Errc::invalid_argument, "a route starts with '/': " + prefix};
  for (const char* builtin : {"/commands", "/metrics", "/ready", "/health"})
    if (prefix == builtin || prefix.rfind(std::string(builtin) + "/", 0) == 0)
      return {sdk::Errc::already_exists, prefix + " is the admin endpoint's own"};
  if (!routes_.emplace(prefix, std::move(handler)).second)
    return {sdk::Errc::already_exists, "route " + prefix + " is taken"};
  return {};
}

void AdminServer::remove_route(const std::string& prefix) { routes_.erase(prefix); }

const sdk::HttpHandler* AdminServer::route(const std::string& path) const {
  const sdk::HttpHandler* best = nullptr;
  size_t best_len = 0;
  for (const auto& [prefix, handler] : routes_) {
    bool match = path == prefix ||
                 (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                  (prefix == "/" || path[prefix.size()] == '/'));
    if (match && prefix.size() >= best_len) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  return best;
}

void AdminServer::closed(HttpConnection* c) {
  if (restoring_ == c) restoring_ = nullptr;
  // The connection may be on the stack: let it go from the loop.
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  std::shared_ptr<HttpConnection> keep = std::move(it->second);
  connections_.erase(it);
  server_.executor().post([keep] {});
}

std::optional<std::string> AdminServer::respond_builtin(const sdk::HttpRequest& req) {
  const std::string& target = req.path;
  bool ours = target == "/metrics" || target == "/commands" || target.rfind("/commands/", 0) == 0 ||
              target == "/ready" || target == "/health";
  if (!ours) return std::nullopt;
  if (req.method != "GET" && req.method != "HEAD")
    return http_response(405, "application/json", json_error("only GET is supported"));
  // Probes, anyone's (they say no more than srvr's mode): /health is 200
  // while the server's loop answers; /ready is 200 while it serves clients
  // with the ensemble behind it (standalone, or a leader, follower or
  // observer that has synced with its leader), 503 otherwise.
  if (target == "/health") return http_response(200, "application/json", "{\"alive\":true}\n");
  if (target == "/ready") {
    sdk::ConsensusStatus cs = server_.consensus_status();
    const bool ready = server_.serving();
    char zxid[24];
    std::snprintf(zxid, sizeof zxid, "0x%llx", static_cast<unsigned long long>(cs.last_applied));
    std::string body =
        "{\"ready\":" + std::string(ready ? "true" : "false") + ",\"role\":\"" +
        sdk::role_name(cs.role) + "\",\"leader\":" + std::to_string(cs.leader) +
        ",\"epoch\":" + std::to_string(cs.current_epoch) + ",\"zxid\":\"" + zxid +
        "\",\"read_only\":" + (!ready && server_.read_only_mode() ? "true" : "false") + "}\n";
    return http_response(ready ? 200 : 503, "application/json", body);
  }
  if (target == "/metrics")
    return http_response(200, "text/plain; version=0.0.4", server_.metrics_text());
  if (target == "/commands" || target == "/commands/") {
    std::string body = "{\"commands\":[";
    bool first = true;
    for (const auto& name : server_.admin_command_names()) {
      body += (first ? "\"" : ",\"") + name + "\"";
      first = false;
    }
    return http_response(200, "application/json", body + "]}\n");
  }
  std::string_view name = std::string_view(target).substr(10);
  // Commands in the whitelist are anyone's; the others, which reveal
  // sessions or change state, need a caller with every permission on "/"
  // (ZooKeeper 3.9's admin authorization), or a superuser.
  if (!server_.admin_command_allowed(name)) {
    if (!req.authenticated)
      return unauthorized(
          "'" + std::string(name) +
          "' is not open to anyone (server.four_letter_words, zoo.cfg's "
          "4lw.commands.whitelist): give the credentials of a user with every "
          "permission on / (HTTP Basic as digest or SASL, or a client certificate)");
    if (!server_.may_administer(req.identities))
      return http_response(403, "application/json",
                           json_error("'" + std::string(name) +
                                      "' needs every permission (cdrwa) on / and the credentials "
                                      "given do not hold them"));
  }
  if (auto body = server_.admin_command(name)) return http_response(200, "application/json", *body);
  return http_response(
      404, "application/json",
      json_error("no command '" + std::string(name) + "'; GET /commands lists them"));
}

}  // namespace corral::kernel
