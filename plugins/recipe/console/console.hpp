// The `console` recipe: a web console on the admin endpoint. console.cpp
// holds the plugin, its routes and the page; console_tree.cpp the tree API
// and its live streams; console_ensemble.cpp the ensemble's view, reconfig
// and the metrics history.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "console_core.hpp"
#include "corral/common/lifeline.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"

namespace corral::console {

using Responder = std::shared_ptr<sdk::HttpResponder>;

// A file of the page, compiled in (console_assets.cpp, generated from web/).
struct Asset {
  const char* name;  // "app.js"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
extern const Asset kAssets[];
extern const size_t kAssetCount;

class Console final : public sdk::Recipe {
 public:
  sdk::Status init(sdk::PluginHost& host) override;
  sdk::Status start(sdk::RecipeHost& recipes) override;
  void stop() override;
  ~Console() override;

 private:
  // console.cpp
  sdk::Status open_session();
  void on_event(const proto::WatcherEvent& ev);
  void handle(const sdk::HttpRequest& req, Responder r);
  void serve_asset(const std::string& name, const Responder& r);
  void whoami(const sdk::HttpRequest& req, const Responder& r);
  // The tree session, acting for this request's caller. Every call is
  // preceded by one: calls of several requests interleave on one session.
  sdk::TreeSession& as(const sdk::HttpRequest& req);
  void tree_error(const Responder& r, proto::Err err, const std::string& path);

  // console_tree.cpp
  void get_node(const sdk::HttpRequest& req, const Responder& r);
  void create_node(const sdk::HttpRequest& req, const Responder& r);
  void set_node(const sdk::HttpRequest& req, const Responder& r);
  void delete_node(const sdk::HttpRequest& req, const Responder& r);
  void delete_tree(const sdk::HttpRequest& req, const Responder& r, const std::string& path);
  void set_acl(const sdk::HttpRequest& req, const Responder& r);
  void subscribe(const sdk::HttpRequest& req, const Responder& r);
  void start_stream(const sdk::HttpRequest& req, const Responder& r, const std::string& path);
  void unsubscribe(const std::string& path, sdk::HttpResponder* who);
  // Frees the places of streams in `seen` whose clients are gone.
  void drop_closed(const std::vector<Responder>& seen, const std::string& path);
  void notify(const proto::WatcherEvent& ev);
  void end_streams();
  void keepalive();

  // console_ensemble.cpp
  void ensemble(const sdk::HttpRequest& req, const Responder& r);
  void view(const sdk::HttpRequest& req, const Responder& r);
  void probe_round(EnsembleConfig config);
  void finish_round();
  void reconfig(const sdk::HttpRequest& req, const Responder& r);
  void sample();

  sdk::PluginHost* host_ = nullptr;
  sdk::RecipeHost* recipes_ = nullptr;
  std::string path_ = "/ui";
  std::string registry_prefix_ = "/v1/registry";
  std::string servers_path_ = "/corral/servers";  // where server-info publishes
  bool anonymous_ = true;
  int64_t max_streams_ = 64;
  int64_t max_children_ = 1000;
  int64_t sample_interval_ms_ = 10000;
  int64_t history_minutes_ = 60;
  bool routed_ = false;
  std::unique_ptr<sdk::TreeSession> session_;
  std::unique_ptr<sdk::Executor::Timer> reopen_timer_;

  // Live streams by path: each path has one persistent watch while anyone
  // listens.
  std::map<std::string, std::vector<Responder>> streams_;
  size_t stream_count_ = 0;
  std::unique_ptr<sdk::Executor::Timer> keepalive_timer_;

  // The ensemble view: one probe round at a time, shared by the requests
  // that arrive while it runs, and kept for a second.
  struct Probe;
  std::shared_ptr<Probe> round_;
  std::vector<Responder> waiting_;
  std::string last_view_;
  int64_t last_view_ms_ = 0;

  std::unique_ptr<History> history_;
  std::unique_ptr<sdk::Executor::Timer> sample_timer_;
  sdk::Counter* m_requests_ = nullptr;
  sdk::Counter* m_refused_streams_ = nullptr;
  common::Lifeline alive_;
};

// Shared helpers of the three files.
std::string stat_json(const proto::Stat& s);
std::string acl_json(const proto::AclList& acl);
std::string error_json(std::string_view message, std::string_view code = {}, int zk_code = 0);
void respond_json(const Responder& r, int status, std::string body);

}  // namespace corral::console
