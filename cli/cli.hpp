// The command-line client's parts: the session a command runs in, how
// arguments are parsed and results printed, and the command tables
// (commands.cpp). main() is in corral.cpp.
#pragma once

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "corral/client/client.hpp"
#include "corral/common/json.hpp"
#include "plugin/loader.hpp"

namespace corral::cli {

using corral::client::Client;
using corral::common::json_quote;
using corral::proto::Err;
using corral::proto::Response;
namespace proto = corral::proto;
namespace asio = boost::asio;

// Exit codes a script can rely on.
enum Exit : int {
  kOk = 0,
  kFailed = 1,       // any other error the server reported
  kUsage = 2,        // the command line is wrong
  kUnreachable = 3,  // no server took the session, or the connection was lost
  kNoNode = 4,
  kNodeExists = 5,
  kBadVersion = 6,
  kNotEmpty = 7,
  kNotAuthorized = 8,  // NOAUTH, or AUTHFAILED
};

int usage_error(const std::string& why);
std::string describe(Err e);
int exit_for(Err e);
std::string hex(int64_t v);
std::string time_text(int64_t ms);
std::string stat_text(const proto::Stat& s);
std::string stat_json(const proto::Stat& s);
std::string json_list(const std::vector<std::string>& items);
std::string perms_text(int32_t p);
// "world:anyone:cdrwa,digest:alice:HASH=:r,ip:10.0.0.0/8:rw", as zkCli takes it.
std::optional<proto::AclList> parse_acl(const std::string& text, std::string& why);

struct Global {
  std::string hosts;
  int32_t timeout_ms = 30000;
  bool json = false;
  std::vector<std::pair<std::string, std::string>> auths;
  // TLS to a secure client port: the authority to trust, and a client
  // certificate (PEM chain, its key in the same file or in tls_key).
  std::string tls_ca, tls_cert, tls_key;
};

// A session run to completion one call at a time.
class Session {
 public:
  explicit Session(const Global& g) : g_(g) {}

  // Connects and authenticates; prints why not and returns an exit code.
  int open() {
    auto opts = corral::client::parse_connect_string(g_.hosts);
    if (!opts) return usage_error("--server " + g_.hosts + ": " + opts.status().message());
    opts.value().session_timeout_ms = g_.timeout_ms;
    opts.value().connect_timeout_ms = std::min<int64_t>(g_.timeout_ms, 5000);
    opts.value().tls = {!g_.tls_ca.empty(), g_.tls_ca, g_.tls_cert, g_.tls_key, true};
    client_ = std::make_unique<Client>(io_, opts.value());
    client_->on_event([this](const proto::WatcherEvent& e) {
      if (on_event_) on_event_(e);
    });
    std::optional<corral::sdk::Status> st;
    client_->connect([&](const corral::sdk::Status& s) { st = s; });
    while (!st && io_.run_one()) {
    }
    if (!st || !*st) {
      std::fprintf(stderr, "corral: cannot connect to %s: %s\n", g_.hosts.c_str(),
                   st ? st->message().c_str() : "no answer");
      return kUnreachable;
    }
    for (const auto& entry : g_.auths) {
      const auto& scheme = entry.first;
      Response r = call([&](auto done) { client_->add_auth(entry.first, entry.second, done); });
      if (r.err != Err::ok) return fail("addauth " + scheme, r.err);
    }
    return kOk;
  }

  Response call(const std::function<void(corral::client::Callback)>& start) {
    std::optional<Response> out;
    start([&](const Response& r) { out = r; });
    while (!out && io_.run_one()) {
    }
    if (!out) {
      Response lost;
      lost.err = Err::connection_loss;
      return lost;
    }
    return *out;
  }

  void close() {
    if (!client_ || !client_->connected()) return;
    bool done = false;
    client_->close([&] { done = true; });
    while (!done && io_.run_one()) {
    }
  }

  int fail(const std::string& what, Err e) {
    std::fprintf(stderr, "corral: %s: %s\n", what.c_str(), describe(e).c_str());
    return exit_for(e);
  }

  Client& client() { return *client_; }
  asio::io_context& io() { return io_; }
  void on_event(std::function<void(const proto::WatcherEvent&)> fn) { on_event_ = std::move(fn); }

 private:
  const Global& g_;
  asio::io_context io_;
  std::unique_ptr<Client> client_;
  std::function<void(const proto::WatcherEvent&)> on_event_;
};

// Parses leading flags of a command: `flags` maps each to whether it takes a value.
struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> rest;
};

std::optional<Args> parse_args(const std::vector<std::string>& in,
                               const std::map<std::string, bool>& known, std::string& why);
std::optional<int32_t> version_of(const Args& a, std::string& why);
// Sends `word` to the first server and reads the reply into `out`.
// Connects to host:port (over TLS with --tls-ca), sends `request` and hands
// every byte of the reply to `on_bytes` (false stops: kFailed) until the
// server closes. Prints why it failed, naming `what`; returns an exit code.
// With `body`, `request` is a head that asks "Expect: 100-continue": the
// body is sent once the server answers 100, and not at all when it answers
// otherwise (a refusal decided from the head reaches `on_bytes` whole).
int exchange(const Global& g, const std::string& host, uint16_t port, const std::string& request,
             const std::function<bool(std::string_view)>& on_bytes, const std::string& what,
             const std::string* body = nullptr);
int ask_four(const Global& g, const std::string& word, std::string& out);
int four_letter(const Global& g, const std::string& word);
int plugins(const Global& g, const std::vector<std::string>& args, const std::string& exe);

// What a command that needs a session is given: the session, the global
// options, its name and arguments, and why a usage error happened.
struct Call {
  Session& s;
  Client& c;
  const Global& g;
  const std::string& cmd;
  const std::vector<std::string>& argv;
  std::string why;

  // The command's flags and arguments, or nullopt with `why` set.
  std::optional<Args> parsed(const std::map<std::string, bool>& known) {
    return parse_args(argv, known, why);
  }
  // True when the arguments after the flags number min..max.
  bool need(const Args& a, size_t min, size_t max, const char* shape) {
    if (a.rest.size() < min || a.rest.size() > max) {
      why = cmd + " takes " + shape;
      return false;
    }
    return true;
  }
};

// The commands that need a session, by name.
extern const std::map<std::string, int (*)(Call&), std::less<>> kSessionCommands;
// The commands that need no session: they talk to a server, or not at all.
extern const std::map<
    std::string, int (*)(const Global&, const std::vector<std::string>&, const char*), std::less<>>
    kOtherCommands;

}  // namespace corral::cli
