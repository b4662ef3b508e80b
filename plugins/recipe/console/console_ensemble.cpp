// The console's view of the ensemble: the membership from /zookeeper/config,
// each member's `srvr` over its client port (what zkCli users already trust,
// and open to anyone by default), reconfig as the caller, and the metrics
// history behind the charts.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "console.hpp"
#include "corral/common/json.hpp"
#include "corral/proto/jute.hpp"

namespace corral::console {

using common::json_quote;
using common::JsonValue;
using proto::Err;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A member that has not answered `srvr` within this is shown unreachable.
constexpr int kProbeTimeoutMs = 1500;
// An answer is reused for this long: pages poll every two seconds.
constexpr int64_t kViewFreshMs = 1000;
// srvr answers are a few hundred bytes.
constexpr size_t kMaxSrvrBytes = 16384;

// A client address whose host is a wildcard ("0.0.0.0:2181") names the
// member's own host, the one its peer address ("10.0.0.2:2888") has.
std::string wildcard_to(const std::string& client, const std::string& peer) {
  size_t colon = client.rfind(':');
  if (colon == std::string::npos) return client;
  std::string host = client.substr(0, colon);
  if (host != "0.0.0.0" && host != "::" && host != "[::]" && !host.empty()) return client;
  size_t pc = peer.rfind(':');
  if (pc == std::string::npos || pc == 0) return client;
  return peer.substr(0, pc) + client.substr(colon);
}

// A member's client address as server-info published it, taken only on the
// member's own host (the membership's, which only a reconfig changes): the
// znode is anyone's to write, and the console must not be pointed at
// another machine.
std::string published_client(const std::string& client, const std::string& peer) {
  std::string c = wildcard_to(client, peer);
  size_t cc = c.rfind(':'), pc = peer.rfind(':');
  if (cc == std::string::npos || pc == std::string::npos) return "";
  if (c.substr(0, cc) != peer.substr(0, pc)) return "";
  return c;
}

std::string hex(int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "host:port" split at the last colon, brackets of an IPv6 host removed.
std::pair<std::string, std::string> split_host_port(const std::string& hp) {
  size_t colon = hp.rfind(':');
  if (colon == std::string::npos) return {hp, ""};
  std::string host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  return {host, hp.substr(colon + 1)};
}

// One `srvr` exchange: resolve, connect, send, read until the server closes.
struct SrvrCall : std::enable_shared_from_this<SrvrCall> {
  SrvrCall(asio::io_context& io, std::function<void(std::string, std::string)> done)
      : resolver(io), socket(io), timer(io), done(std::move(done)) {}
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;
  std::string in;
  std::array<char, 4096> buf{};
  std::function<void(std::string, std::string)> done;  // (answer, error)

  void start(const std::string& address) {
    auto [host, port] = split_host_port(address);
    auto self = shared_from_this();
    timer.expires_after(std::chrono::milliseconds(kProbeTimeoutMs));
    timer.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->finish("", "no answer within " + std::to_string(kProbeTimeoutMs) + " ms");
    });
    resolver.async_resolve(
        host, port,
        [self](const boost::system::error_code& ec, tcp::resolver::results_type results) {
          if (ec) return self->finish("", "cannot resolve: " + ec.message());
          asio::async_connect(self->socket, results,
                              [self](const boost::system::error_code& ec, const tcp::endpoint&) {
                                if (ec) return self->finish("", ec.message());
                                self->send();
                              });
        });
  }
  void send() {
    auto self = shared_from_this();
    asio::async_write(socket, asio::buffer("srvr", 4),
                      [self](const boost::system::error_code& ec, size_t) {
                        if (ec) return self->finish("", ec.message());
                        self->read();
                      });
  }
  void read() {
    auto self = shared_from_this();
    socket.async_read_some(asio::buffer(buf),
                           [self](const boost::system::error_code& ec, size_t n) {
                             self->in.append(self->buf.data(), n);
                             if (self->in.size() > kMaxSrvrBytes)
                               return self->finish("", "answer too long");
                             if (ec == asio::error::eof)
                               return self->finish(std::move(self->in), "");
                             if (ec) return self->finish("", ec.message());
                             self->read();
                           });
  }
  void finish(std::string answer, std::string error) {
    if (!done) return;
    auto fn = std::move(done);
    done = nullptr;
    boost::system::error_code ignore;
    timer.cancel();
    resolver.cancel();
    socket.close(ignore);
    fn(std::move(answer), std::move(error));
  }
};

}  // namespace

struct Console::Probe {
  EnsembleConfig config;
  std::vector<std::optional<Srvr>> answers;
  std::vector<std::string> errors;
  size_t pending = 0;
};

void Console::ensemble(const sdk::HttpRequest& req, const Responder& r) {
  // The view is shared by whoever asks within a second; each caller must be
  // able to read the membership it is made from.
  as(req).exists("/zookeeper/config", false,
                 [this, alive = alive_.ref(), req, r](const sdk::TreeResult& may) {
                   if (!alive) return;
                   if (may.err != Err::ok && may.err != Err::no_node)
                     return tree_error(r, may.err, "/zookeeper/config");
                   if (!session_) return tree_error(r, Err::connection_loss, "/zookeeper/config");
                   as(req).get_data(
                       "/zookeeper/config", false, [this, alive, req, r](const sdk::TreeResult& d) {
                         if (!alive) return;
                         if (d.err != Err::ok && d.err != Err::no_node)
                           return tree_error(r, d.err, "/zookeeper/config");
                         if (!session_)
                           return tree_error(r, Err::connection_loss, "/zookeeper/config");
                         view(req, r);
                       });
                 });
}

void Console::view(const sdk::HttpRequest& req, const Responder& r) {
  int64_t now = host_->clock().steady_ms();
  if (!last_view_.empty() && now - last_view_ms_ < kViewFreshMs)
    return respond_json(r, 200, last_view_);
  waiting_.push_back(r);
  if (round_) return;  // answered with the round in progress
  round_ = std::make_shared<Probe>();
  as(req).get_data(
      "/zookeeper/config", false, [this, alive = alive_.ref(), req](const sdk::TreeResult& res) {
        if (!alive) return;
        EnsembleConfig config;
        if (res.err == Err::ok) config = parse_ensemble_config(res.data);
        if (config.members.empty()) {
          // Standalone (or a membership hidden from the caller): this server.
          Member self;
          self.id = host_->server().server_id;
          config.members.push_back(self);
        }
        // Client addresses the membership does not give (zoo.cfg's server lines
        // often leave them out): this server's own, and the others' from what
        // the server-info recipe publishes, when it runs.
        auto config_ptr = std::make_shared<EnsembleConfig>(std::move(config));
        auto pending = std::make_shared<size_t>(1);
        auto done = [this, alive, config_ptr, pending] {
          if (alive && --*pending == 0) probe_round(std::move(*config_ptr));
        };
        for (Member& m : config_ptr->members) {
          if (!m.client.empty()) continue;
          if (m.id == host_->server().server_id) {
            m.client = wildcard_to(host_->server().client_address, m.peer);
            continue;
          }
          if (!session_) continue;
          ++*pending;
          as(req).get_data(servers_path_ + "/" + std::to_string(m.id), false,
                           [config_ptr, id = m.id, done](const sdk::TreeResult& res) {
                             if (res.err == Err::ok)
                               if (auto doc = JsonValue::parse(res.data, 4); doc)
                                 for (Member& mm : config_ptr->members)
                                   if (mm.id == id)
                                     mm.client = published_client(
                                         doc.value().get_string("client_address"), mm.peer);
                             done();
                           });
        }
        done();
      });
}

void Console::probe_round(EnsembleConfig config) {
  auto round = round_;
  if (!round) return;
  round->config = std::move(config);
  size_t n = round->config.members.size();
  round->answers.assign(n, std::nullopt);
  round->errors.assign(n, "");
  round->pending = n;
  for (size_t i = 0; i < n; ++i) {
    const Member& m = round->config.members[i];
    if (m.client.empty()) {
      round->errors[i] =
          "its client address is unknown: give it in its server line (server.N=...;host:port) "
          "or load the server-info recipe, which publishes it";
      --round->pending;
      continue;
    }
    auto call = std::make_shared<SrvrCall>(
        host_->executor().io_context(),
        [this, alive = alive_.ref(), round, i](std::string answer, std::string error) {
          // Completion handlers run on the loop (the kernel's io_context).
          if (!alive || round_ != round) return;
          if (error.empty()) {
            round->answers[i] = parse_srvr(answer);
            if (!round->answers[i])
              round->errors[i] = "not a srvr answer (is srvr in four_letter_words?)";
          } else {
            round->errors[i] = error;
          }
          if (--round->pending == 0) finish_round();
        });
    call->start(m.client);
  }
  if (round->pending == 0)
    host_->executor().post([this, alive = alive_.ref(), round] {
      if (alive && round_ == round) finish_round();
    });
}

void Console::finish_round() {
  auto round = std::move(round_);
  round_.reset();
  int64_t leader = 0, leader_zxid = -1;
  for (size_t i = 0; i < round->answers.size(); ++i)
    if (round->answers[i] &&
        (round->answers[i]->mode == "leader" || round->answers[i]->mode == "standalone")) {
      leader = round->config.members[i].id;
      leader_zxid = round->answers[i]->zxid;
    }
  std::string members = "[";
  for (size_t i = 0; i < round->config.members.size(); ++i) {
    const Member& m = round->config.members[i];
    const auto& a = round->answers[i];
    std::string j = "{\"id\":" + std::to_string(m.id) + ",\"type\":\"" +
                    (m.observer ? "observer" : "participant") +
                    "\",\"client\":" + json_quote(m.client) + ",\"peer\":" + json_quote(m.peer) +
                    ",\"reachable\":" + (a ? "true" : "false");
    if (a && a->serving) {
      char lat[128];
      std::snprintf(lat, sizeof lat, "{\"min\":%g,\"avg\":%g,\"max\":%g}", a->latency_min,
                    a->latency_avg, a->latency_max);
      j += ",\"mode\":" + json_quote(a->mode) + ",\"zxid\":\"" + hex(a->zxid) +
           "\",\"epoch\":" + std::to_string(a->zxid >> 32) + ",\"latency_ms\":" + lat +
           ",\"outstanding\":" + std::to_string(a->outstanding) +
           ",\"connections\":" + std::to_string(a->connections) +
           ",\"znodes\":" + std::to_string(a->znodes);
      // Entries behind the leader, when both are in the same epoch.
      if (leader_zxid >= 0 && (leader_zxid >> 32) == (a->zxid >> 32))
        j += ",\"lag\":" + std::to_string(std::max<int64_t>(0, leader_zxid - a->zxid));
      else
        j += ",\"lag\":null";
    } else if (a) {
      j += ",\"mode\":\"not serving\",\"lag\":null";
    } else {
      j += ",\"mode\":null,\"lag\":null";
    }
    if (!round->errors[i].empty()) j += ",\"error\":" + json_quote(round->errors[i]);
    members += (i ? "," : "") + j + "}";
  }
  members += "]";
  last_view_ = "{\"self\":" + std::to_string(host_->server().server_id) +
               ",\"leader\":" + std::to_string(leader) +
               ",\"config_version\":" + json_quote(round->config.version) +
               ",\"members\":" + members + "}\n";
  last_view_ms_ = host_->clock().steady_ms();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (const Responder& r : waiting) respond_json(r, 200, last_view_);
}

void Console::reconfig(const sdk::HttpRequest& req, const Responder& r) {
  auto doc = JsonValue::parse(req.body, 4);
  if (!doc || !doc.value().is_object())
    return respond_json(
        r, 400,
        error_json("the body must be a JSON object: {\"joining\", \"leaving\", \"version\"}"));
  proto::ReconfigRequest rec;
  auto text = [&](const char* key, std::string& out, bool& null) {
    const JsonValue* v = doc.value().get(key);
    if (!v || v->is_null() || !v->as_string() || v->as_string()->empty()) return;
    out = *v->as_string();
    null = false;
  };
  text("joining", rec.joining, rec.joining_null);
  text("leaving", rec.leaving, rec.leaving_null);
  text("members", rec.new_members, rec.new_members_null);
  if (rec.joining_null && rec.leaving_null && rec.new_members_null)
    return respond_json(r, 400, error_json("say who is joining or leaving"));
  if (const JsonValue* v = doc.value().get("version"); v && !v->is_null()) {
    auto n = v->as_int();
    if (!n)
      return respond_json(r, 400, error_json("version must be the configuration's version, or -1"));
    rec.cur_config_id = *n;
  }
  std::string body;
  proto::JuteWriter w(body);
  proto::write(w, rec);
  as(req).request(proto::OpCode::reconfig, std::move(body),
                  [this, alive = alive_.ref(), r](const sdk::TreeResult& res) {
                    if (!alive) return;
                    if (res.err != Err::ok) return tree_error(r, res.err, "/zookeeper/config");
                    last_view_.clear();
                    respond_json(r, 200,
                                 "{\"config\":" + json_quote(res.data) +
                                     ",\"stat\":" + stat_json(res.stat) + "}\n");
                  });
}

void Console::sample() {
  history_->add(parse_exposition(host_->metrics().exposition(), host_->clock().wall_ms()));
  sample_timer_ = host_->executor().schedule(std::chrono::milliseconds(sample_interval_ms_),
                                             [this, alive = alive_.ref()] {
                                               if (alive) sample();
                                             });
}

}  // namespace corral::console
