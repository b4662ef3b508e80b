// The `server-info` recipe: publishes this server's details as JSON in an
// ephemeral znode, <path>/<server id>, and keeps them current. It is the
// worked example of plugins/recipe/server-info/README.md.
#include <algorithm>
#include <memory>
#include <string>

#include "corral/common/json.hpp"
#include "corral/common/lifeline.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"

namespace {

using namespace corral::sdk;
using corral::proto::CreateMode;
using corral::proto::Err;

using corral::common::json_quote;

class ServerInfoRecipe final : public Recipe {
 public:
  Status init(PluginHost& host) override {
    host_ = &host;
    const ConfigTable& cfg = host.config();
    for (const std::string& key : cfg.keys())
      if (key != "path" && key != "interval_ms")
        return cfg.invalid(key, "one of path, interval_ms (unknown key)");
    auto path = cfg.get_string("path", "/corral/servers");
    if (!path) return path.status();
    if (path.value().size() < 2 || path.value()[0] != '/' || path.value().back() == '/')
      return cfg.invalid("path", "an absolute znode path such as \"/corral/servers\"");
    base_ = path.value();
    auto interval = cfg.get_int("interval_ms", 10000);
    if (!interval) return interval.status();
    if (interval.value() < 10) return cfg.invalid("interval_ms", "at least 10");
    interval_ms_ = interval.value();
    started_ms_ = host.clock().wall_ms();
    return {};
  }

  Status start(RecipeHost& recipes) override {
    recipes_ = &recipes;
    return open();
  }

  void stop() override {
    timer_.reset();
    if (session_) session_->close();
    session_.reset();
    alive_.end();
  }
  ~ServerInfoRecipe() override { alive_.end(); }

 private:
  std::string node_path() const { return base_ + "/" + std::to_string(host_->server().server_id); }

  std::string document() const {
    const ServerInfo& s = host_->server();
    return "{\"id\":" + std::to_string(s.server_id) + ",\"version\":" + json_quote(s.version) +
           ",\"client_address\":" + json_quote(s.client_address) +
           ",\"role\":" + json_quote(role_name(recipes_->role())) +
           ",\"last_zxid\":" + std::to_string(recipes_->last_applied()) +
           ",\"started_ms\":" + std::to_string(started_ms_) +
           ",\"updated_ms\":" + std::to_string(host_->clock().wall_ms()) + "}";
  }

  // Opens a session and publishes; called again if the session expires.
  Status open() {
    auto session =
        recipes_->open_session(static_cast<int32_t>(std::max<int64_t>(interval_ms_ * 3, 10000)),
                               [this, alive = alive_.ref()](const corral::proto::WatcherEvent& ev) {
                                 if (!alive || ev.type != -1) return;
                                 // Session lost: start over with a new one.
                                 host_->logger().warn("session lost; publishing again");
                                 session_.reset();
                                 host_->executor().post([this, alive] {
                                   if (alive && !session_) (void)open();
                                 });
                               });
    if (!session) return session.status();
    session_ = std::move(session.value());
    ensure_parents(1);
    return {};
  }

  // Creates every ancestor of the base path (persistent), then the node.
  void ensure_parents(size_t from) {
    size_t slash = base_.find('/', from);
    std::string prefix = slash == std::string::npos ? base_ : base_.substr(0, slash);
    session_->create(prefix, "", CreateMode::persistent,
                     [this, alive = alive_.ref(), slash](const TreeResult& r) {
                       if (!alive) return;
                       if (r.err != Err::ok && r.err != Err::node_exists) {
                         host_->logger().error("cannot create " + base_ + ": error " +
                                               std::to_string(static_cast<int>(r.err)));
                         return;
                       }
                       if (slash == std::string::npos)
                         publish();
                       else
                         ensure_parents(slash + 1);
                     });
  }

  void publish() {
    session_->create(node_path(), document(), CreateMode::ephemeral,
                     [this, alive = alive_.ref()](const TreeResult& r) {
                       if (!alive) return;
                       if (r.err == Err::node_exists) {
                         // A previous session's node that has not expired yet: replace it.
                         session_->remove(node_path(), -1, [this, alive](const TreeResult&) {
                           if (alive) publish();
                         });
                         return;
                       }
                       if (r.err != Err::ok) {
                         host_->logger().error("cannot publish " + node_path() + ": error " +
                                               std::to_string(static_cast<int>(r.err)));
                         return;
                       }
                       host_->logger().info("published " + node_path());
                       schedule_refresh();
                     });
  }

  void schedule_refresh() {
    timer_ = host_->executor().schedule(
        std::chrono::milliseconds(interval_ms_), [this, alive = alive_.ref()] {
          if (!alive || !session_) return;
          session_->set_data(node_path(), document(), -1, [this, alive](const TreeResult& r) {
            if (!alive) return;
            if (r.err == Err::no_node) {
              publish();
              return;
            }
            schedule_refresh();
          });
        });
  }

  PluginHost* host_ = nullptr;
  RecipeHost* recipes_ = nullptr;
  std::string base_;
  int64_t interval_ms_ = 10000;
  int64_t started_ms_ = 0;
  std::unique_ptr<TreeSession> session_;
  std::unique_ptr<Executor::Timer> timer_;
  corral::common::Lifeline alive_;
};

}  // namespace

CORRAL_PLUGIN(recipe, "server-info", ServerInfoRecipe,
              "publishes this server's details under a znode")
