// The console plugin: configuration, its session on the tree, routing and
// the page's files.
#include "console.hpp"

#include <algorithm>
#include <cstdio>

#include "corral/common/json.hpp"
#include "corral/sdk/plugin_export.hpp"

namespace corral::console {

using common::json_quote;
using proto::Err;

namespace {

// How long the console's session lives without its server (a client's
// default): its ephemerals outlive a restart of the console's server by this.
constexpr int32_t kSessionTimeoutMs = 30000;
// After a lost session, the next is opened this much later.
constexpr int64_t kReopenMs = 500;

}  // namespace

std::string stat_json(const proto::Stat& s) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"czxid\":\"0x%llx\",\"mzxid\":\"0x%llx\",\"pzxid\":\"0x%llx\",\"ctime\":%lld,"
                "\"mtime\":%lld,\"version\":%d,\"cversion\":%d,\"aversion\":%d,"
                "\"ephemeralOwner\":\"0x%llx\",\"dataLength\":%d,\"numChildren\":%d}",
                static_cast<unsigned long long>(s.czxid), static_cast<unsigned long long>(s.mzxid),
                static_cast<unsigned long long>(s.pzxid), static_cast<long long>(s.ctime),
                static_cast<long long>(s.mtime), s.version, s.cversion, s.aversion,
                static_cast<unsigned long long>(s.ephemeral_owner), s.data_length, s.num_children);
  return buf;
}

std::string acl_json(const proto::AclList& acl) {
  std::string out = "[";
  for (size_t i = 0; i < acl.size(); ++i) {
    if (i) out += ',';
    out += "{\"scheme\":" + json_quote(acl[i].id.scheme) + ",\"id\":" + json_quote(acl[i].id.id) +
           ",\"perms\":" + json_quote(perms_text(acl[i].perms)) + "}";
  }
  return out + "]";
}

std::string error_json(std::string_view message, std::string_view code, int zk_code) {
  std::string out = "{\"error\":" + json_quote(message);
  if (!code.empty()) out += ",\"code\":" + json_quote(code);
  if (zk_code != 0) out += ",\"zk_code\":" + std::to_string(zk_code);
  return out + "}\n";
}

void respond_json(const Responder& r, int status, std::string body) {
  r->respond(status, "application/json", std::move(body));
}

Console::~Console() { alive_.end(); }

sdk::Status Console::init(sdk::PluginHost& host) {
  host_ = &host;
  const sdk::ConfigTable& cfg = host.config();
  static const std::set<std::string> kKeys = {
      "path",        "registry_prefix", "servers_path",       "anonymous",
      "max_streams", "max_children",    "sample_interval_ms", "history_minutes"};
  for (const std::string& key : cfg.keys())
    if (!kKeys.count(key))
      return cfg.invalid(
          key,
          "one of path, registry_prefix, servers_path, anonymous, max_streams, max_children, "
          "sample_interval_ms, history_minutes (unknown key)");
  auto prefix = [&](const char* key, std::string def, std::string& out) -> sdk::Status {
    auto v = cfg.get_string(key, def);
    if (!v) return v.status();
    const std::string& p = v.value();
    if (p.size() < 2 || p[0] != '/' || p.back() == '/' ||
        p.find_first_of("?# ") != std::string::npos)
      return cfg.invalid(key, "a path such as \"" + def + "\"");
    out = p;
    return {};
  };
  if (auto s = prefix("path", "/ui", path_); !s) return s;
  if (path_ == "/commands" || path_ == "/metrics" || path_ == "/ready" || path_ == "/health")
    return cfg.invalid("path", "a path the admin endpoint does not answer itself");
  if (auto s = prefix("registry_prefix", "/v1/registry", registry_prefix_); !s) return s;
  if (auto s = prefix("servers_path", "/corral/servers", servers_path_); !s) return s;
  auto anon = cfg.get_bool("anonymous", true);
  if (!anon) return anon.status();
  anonymous_ = anon.value();
  auto num = [&](const char* key, int64_t def, int64_t lo, int64_t hi,
                 int64_t& out) -> sdk::Status {
    auto v = cfg.get_int(key, def);
    if (!v) return v.status();
    if (v.value() < lo || v.value() > hi)
      return cfg.invalid(key, "a number from " + std::to_string(lo) + " to " + std::to_string(hi));
    out = v.value();
    return {};
  };
  if (auto s = num("max_streams", 64, 0, 100000, max_streams_); !s) return s;
  if (auto s = num("max_children", 1000, 1, 100000, max_children_); !s) return s;
  if (auto s = num("sample_interval_ms", 10000, 1000, 3600000, sample_interval_ms_); !s) return s;
  if (auto s = num("history_minutes", 60, 1, 1440, history_minutes_); !s) return s;
  history_ = std::make_unique<History>(
      std::max<size_t>(1, static_cast<size_t>(history_minutes_ * 60000 / sample_interval_ms_)));
  m_requests_ = host.metrics().counter("corral_console_requests_total",
                                       "requests the console's API answered");
  m_refused_streams_ = host.metrics().counter("corral_console_streams_refused_total",
                                              "live-update streams refused at max_streams");
  return {};
}

sdk::Status Console::start(sdk::RecipeHost& recipes) {
  recipes_ = &recipes;
  sdk::HttpRouter* router = recipes.http();
  if (!router)
    return {sdk::Errc::invalid_argument,
            "the console is served on the admin endpoint, which is off: set "
            "server.admin_address (\"127.0.0.1:8080\", say) or leave \"console\" out of "
            "plugins.recipes"};
  if (auto s = open_session(); !s) return s;
  if (auto s =
          router->add_route(path_,
                            [this, alive = alive_.ref()](const sdk::HttpRequest& req, Responder r) {
                              if (alive) handle(req, std::move(r));
                            });
      !s)
    return s;
  routed_ = true;
  sample();
  keepalive();
  return {};
}

void Console::stop() {
  if (routed_ && recipes_ && recipes_->http()) recipes_->http()->remove_route(path_);
  routed_ = false;
  sample_timer_.reset();
  keepalive_timer_.reset();
  reopen_timer_.reset();
  end_streams();
  for (auto& r : waiting_) respond_json(r, 503, error_json("the console is stopping"));
  waiting_.clear();
  round_.reset();
  if (session_) session_->close();
  session_.reset();
  alive_.end();
}

sdk::Status Console::open_session() {
  auto session = recipes_->open_session(
      kSessionTimeoutMs, [this, alive = alive_.ref()](const proto::WatcherEvent& ev) {
        if (alive) on_event(ev);
      });
  if (!session) return session.status();
  session_ = std::move(session.value());
  return {};
}

void Console::on_event(const proto::WatcherEvent& ev) {
  if (ev.type != static_cast<int32_t>(proto::EventType::none)) {
    notify(ev);
    return;
  }
  if (ev.state == static_cast<int32_t>(proto::KeeperState::expired) ||
      ev.state == static_cast<int32_t>(proto::KeeperState::disconnected)) {
    // The session is gone: its watches with it. Streams end (pages open them
    // again) and a new session takes over.
    // A server without a leader closes new sessions at once: try again in a
    // while, not in a loop (a request also tries, when it finds none).
    if (!reopen_timer_) host_->logger().info("console: session lost; opening another");
    end_streams();
    session_.reset();
    reopen_timer_ = host_->executor().schedule(std::chrono::milliseconds(kReopenMs),
                                               [this, alive = alive_.ref()] {
                                                 if (!alive) return;
                                                 reopen_timer_.reset();
                                                 if (!session_) (void)open_session();
                                               });
  }
}

sdk::TreeSession& Console::as(const sdk::HttpRequest& req) {
  session_->act_as(req.identities);
  return *session_;
}

void Console::tree_error(const Responder& r, Err err, const std::string& path) {
  respond_json(r, http_status(err),
               error_json(error_message(err, path), error_code(err), static_cast<int>(err)));
}

void Console::handle(const sdk::HttpRequest& req, Responder r) {
  std::string rest = req.path.substr(path_.size());
  if (rest.empty()) {
    // "/ui" itself: the page's relative links need the trailing slash.
    r->respond(200, "text/html; charset=utf-8",
               "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url=" + path_ +
                   "/\"><a href=\"" + path_ + "/\">Corral console</a>\n");
    return;
  }
  if (rest.rfind("/api/", 0) != 0) {
    if (req.method != "GET" && req.method != "HEAD")
      return respond_json(r, 405, error_json("the console's files are read with GET"));
    return serve_asset(rest == "/" ? "index.html" : rest.substr(1), r);
  }
  m_requests_->inc();
  std::string api = rest.substr(5);
  // A change must come from a page's own script (the console's sends this
  // header): a form or a no-cors request from another site cannot set it.
  if (req.method != "GET" && req.method != "HEAD" && !req.headers.count("x-requested-with"))
    return respond_json(r, 403,
                        error_json("changes through the console's API need an X-Requested-With "
                                   "header (any value), which pages of other sites cannot send"));
  if (api == "whoami" && req.method == "GET") return whoami(req, r);
  if (!anonymous_ && !req.authenticated)
    return respond_json(r, 401,
                        error_json("log in: this console needs credentials "
                                   "(recipe.console.anonymous = false)"));
  if (!session_) (void)open_session();
  if (!session_)
    return respond_json(r, 503, error_json("the console has no session on the tree yet; retry"));
  if (api == "node") {
    if (req.method == "GET") return get_node(req, r);
    if (req.method == "POST") return create_node(req, r);
    if (req.method == "PUT") return set_node(req, r);
    if (req.method == "DELETE") return delete_node(req, r);
  } else if (api == "acl") {
    if (req.method == "PUT") return set_acl(req, r);
  } else if (api == "events") {
    if (req.method == "GET") return subscribe(req, r);
  } else if (api == "ensemble") {
    if (req.method == "GET") return ensemble(req, r);
  } else if (api == "reconfig") {
    if (req.method == "POST") return reconfig(req, r);
  } else if (api == "metrics") {
    if (req.method == "GET") return respond_json(r, 200, history_->json(sample_interval_ms_));
  } else {
    return respond_json(r, 404, error_json("no such API call: " + api));
  }
  respond_json(r, 405, error_json(req.method + " is not supported on " + api));
}

void Console::serve_asset(const std::string& name, const Responder& r) {
  for (size_t i = 0; i < kAssetCount; ++i) {
    if (name != kAssets[i].name) continue;
    r->respond(200, kAssets[i].content_type,
               std::string(reinterpret_cast<const char*>(kAssets[i].data), kAssets[i].size));
    return;
  }
  respond_json(r, 404, error_json("the console has no file " + name));
}

void Console::whoami(const sdk::HttpRequest& req, const Responder& r) {
  if (!anonymous_ && !req.authenticated)
    return respond_json(r, 401, error_json("log in: this console needs credentials"));
  std::string ids = "[";
  for (size_t i = 0; i < req.identities.size(); ++i)
    ids += (i ? ",{" : "{") + std::string("\"scheme\":") + json_quote(req.identities[i].scheme) +
           ",\"id\":" + json_quote(req.identities[i].id) + "}";
  ids += "]";
  const sdk::ServerInfo& info = host_->server();
  respond_json(r, 200,
               "{\"authenticated\":" + std::string(req.authenticated ? "true" : "false") +
                   ",\"user\":" + json_quote(user_of(req.identities)) + ",\"identities\":" + ids +
                   ",\"anonymous_allowed\":" + (anonymous_ ? "true" : "false") + ",\"server_id\":" +
                   std::to_string(info.server_id) + ",\"version\":" + json_quote(info.version) +
                   ",\"role\":" + json_quote(sdk::role_name(recipes_->role())) +
                   ",\"path\":" + json_quote(path_) +
                   ",\"registry_prefix\":" + json_quote(registry_prefix_) + "}\n");
}

}  // namespace corral::console

CORRAL_PLUGIN(recipe, "console", corral::console::Console,
              "a web console on the admin endpoint: the tree, the ensemble, sessions, the "
              "registry and metrics")
