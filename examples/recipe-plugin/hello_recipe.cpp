// The `hello` recipe: the smallest useful recipe plugin, built out of tree.
// It keeps an ephemeral znode /hello/<server id> holding a greeting, and
// answers GET /hello on the server's admin endpoint with what that znode
// holds, read back through its session.
#include <memory>
#include <string>

#include "corral/common/json.hpp"
#include "corral/common/lifeline.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/http.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"

namespace {

using namespace corral::sdk;
using corral::proto::CreateMode;
using corral::proto::Err;

class HelloRecipe final : public Recipe {
 public:
  // Read the [recipe.hello] table; no I/O yet.
  Status init(PluginHost& host) override {
    host_ = &host;
    for (const std::string& key : host.config().keys())
      if (key != "greeting") return host.config().invalid(key, "greeting (the only key)");
    auto greeting = host.config().get_string("greeting", "hello from Corral");
    if (!greeting) return greeting.status();
    greeting_ = greeting.value();
    return {};
  }

  // Open a session, publish the znode, add the HTTP route.
  Status start(RecipeHost& recipes) override {
    auto session = recipes.open_session(10000, [](const corral::proto::WatcherEvent&) {});
    if (!session) return session.status();
    session_ = std::move(session.value());
    path_ = "/hello/" + std::to_string(host_->server().server_id);
    session_->create("/hello", "", CreateMode::persistent,
                     [this, alive = alive_.ref()](const TreeResult&) {
                       if (!alive) return;
                       session_->create(path_, greeting_, CreateMode::ephemeral,
                                        [this, alive](const TreeResult& r) {
                                          if (alive)
                                            host_->logger().info("published " + path_ + ": " +
                                                                 corral::proto::err_name(r.err));
                                        });
                     });
    if (HttpRouter* http = recipes.http()) {
      Status st = http->add_route("/hello", [this, alive = alive_.ref()](
                                                const HttpRequest&,
                                                std::shared_ptr<HttpResponder> r) {
        if (!alive) return;
        session_->get_data(path_, false, [this, r](const TreeResult& res) {
          if (res.err != Err::ok)
            return r->respond(
                503, "application/json",
                "{\"error\":" + corral::common::json_quote(corral::proto::err_name(res.err)) + "}");
          r->respond(200, "application/json",
                     "{\"node\":" + corral::common::json_quote(path_) +
                         ",\"greeting\":" + corral::common::json_quote(res.data) + "}\n");
        });
      });
      if (!st) return st;
      http_ = http;
    }
    return {};
  }

  // Close the session (its ephemeral goes) and remove the route.
  void stop() override {
    alive_.end();
    if (http_) http_->remove_route("/hello");
    if (session_) session_->close();
    session_.reset();
  }

 private:
  PluginHost* host_ = nullptr;
  HttpRouter* http_ = nullptr;
  std::unique_ptr<TreeSession> session_;
  std::string greeting_, path_;
  corral::common::Lifeline alive_;
};

}  // namespace

CORRAL_PLUGIN(recipe, "hello", HelloRecipe,
              "keeps a greeting in /hello/<server id> and answers GET /hello")
