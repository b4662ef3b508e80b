#include "config/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace corral::kernel {

using sdk::Errc;
using sdk::Result;
using sdk::Status;

namespace {

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::string where(const std::string& source, const toml::node& node) {
  const auto& src = node.source();
  if (src.begin.line == 0) return "--set";  // set on the command line
  return source + ":" + std::to_string(src.begin.line);
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

Status wrong_type(const std::string& source, std::string_view key, const toml::node& n,
                  std::string_view expected) {
  return {Errc::invalid_argument, where(source, n) + ": key '" + std::string(key) + "' must be " +
                                      std::string(expected) + ", found " + type_name(n)};
}

// Typed access to one table, with errors that say where.
class TableView final : public sdk::ConfigTable {
 public:
  TableView(const toml::table* table, std::string name, std::string source)
      : table_(table), name_(std::move(name)), source_(std::move(source)) {}

  std::string_view name() const override { return name_; }
  bool contains(std::string_view key) const override { return find(key) != nullptr; }

  Result<std::string> get_string(std::string_view key, std::string_view def) const override {
    const toml::node* n = find(key);
    if (!n) return std::string(def);
    if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
    return wrong_type(source_, full(key), *n, "a string");
  }
  Result<int64_t> get_int(std::string_view key, int64_t def) const override {
    const toml::node* n = find(key);
    if (!n) return def;
    if (n->is_integer()) return n->as_integer()->get();
    return wrong_type(source_, full(key), *n, "an integer");
  }
  Result<double> get_double(std::string_view key, double def) const override {
    const toml::node* n = find(key);
    if (!n) return def;
    if (n->is_floating_point()) return n->as_floating_point()->get();
    if (n->is_integer()) return static_cast<double>(n->as_integer()->get());
    return wrong_type(source_, full(key), *n, "a number");
  }
  Result<bool> get_bool(std::string_view key, bool def) const override {
    const toml::node* n = find(key);
    if (!n) return def;
    if (n->is_boolean()) return n->as_boolean()->get();
    return wrong_type(source_, full(key), *n, "true or false");
  }
  Result<std::vector<std::string>> get_string_list(
      std::string_view key, const std::vector<std::string>& def) const override {
    const toml::node* n = find(key);
    if (!n) return def;
    std::vector<std::string> out;
    if (n->is_string()) {  // a single string is a list of one
      out.push_back(n->as_string()->get());
      return out;
    }
    if (!n->is_array()) return wrong_type(source_, full(key), *n, "an array of strings");
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string()) return wrong_type(source_, full(key), e, "an array of strings");
      out.push_back(e.as_string()->get());
    }
    return out;
  }
  std::vector<std::string> keys() const override {
    std::vector<std::string> out;
    if (table_)
      for (auto&& [k, v] : *table_) out.emplace_back(k.str());
    return out;
  }
  Status invalid(std::string_view key, std::string_view expected) const override {
    const toml::node* n = find(key);
    std::string at = n ? where(source_, *n) : source_;
    return {Errc::invalid_argument,
            at + ": key '" + full(key) + "' must be " + std::string(expected)};
  }

 private:
  const toml::node* find(std::string_view key) const {
    if (!table_) return nullptr;
    return table_->at_path(key).node();
  }
  std::string full(std::string_view key) const { return name_ + "." + std::string(key); }

  const toml::table* table_;
  std::string name_;
  std::string source_;
};

// Sets root[a][b]... = value for a dotted key, creating tables on the way.
Status set_dotted(toml::table& root, std::string_view dotted, toml::node&& value) {
  toml::table* t = &root;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    std::string part(dotted.substr(start, dot == std::string_view::npos ? dotted.npos : dot - start));
    if (part.empty()) return {Errc::invalid_argument, "--set " + std::string(dotted) + ": empty key part"};
    if (dot == std::string_view::npos) {
      t->insert_or_assign(part, std::move(value));
      return {};
    }
    toml::node* next = t->get(part);
    if (!next) next = &t->insert_or_assign(part, toml::table{}).first->second;
    if (!next->is_table())
      return {Errc::invalid_argument,
              "--set " + std::string(dotted) + ": '" + part + "' is not a table"};
    t = next->as_table();
    start = dot + 1;
  }
}

// `--set key=value`: the value is read as TOML ("5", "true", "[\"a\"]") and, if
// it is not valid TOML, taken as a plain string (so paths need no quotes).
Status apply_override(toml::table& root, std::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0)
    return {Errc::invalid_argument,
            "--set " + std::string(assignment) + ": expected section.key=value"};
  std::string_view key = assignment.substr(0, eq);
  std::string text(assignment.substr(eq + 1));
  try {
    toml::table parsed = toml::parse("v = " + text);
    toml::node* v = parsed.get("v");
    // Parsed values carry no useful source position; give them none.
    toml::table fresh;
    fresh.insert("v", *v);
    return set_dotted(root, key, std::move(*fresh.get("v")));
  } catch (const toml::parse_error&) {
    return set_dotted(root, key, toml::value<std::string>(text));
  }
}

Status check_known_keys(const toml::table& t, std::string_view section,
                        const std::set<std::string>& known, const std::string& source) {
  for (auto&& [k, v] : t) {
    if (!known.count(std::string(k.str()))) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return {Errc::invalid_argument, where(source, v) + ": unknown key '" + std::string(section) +
                                          "." + std::string(k.str()) + "' (known: " + list + ")"};
    }
  }
  return {};
}

#define CORRAL_TRY_ASSIGN(target, expr) \
  do {                                  \
    auto r_ = (expr);                   \
    if (!r_) return r_.status();        \
    target = std::move(r_.value());     \
  } while (0)

Status extract(Config& c) {
  const std::string& src = c.source;
  toml::table& root = c.root();
  static const std::set<std::string> kSections = {"server", "plugins", "ensemble", "transport", "consensus",
                                                  "election", "storage", "discovery", "recipe"};
  for (auto&& [k, v] : root) {
    if (!kSections.count(std::string(k.str()))) {
      return {Errc::invalid_argument, where(src, v) + ": unknown section '" + std::string(k.str()) +
                                          "' (known: server, plugins, ensemble, and one table per plugin kind)"};
    }
    if (!v.is_table()) return wrong_type(src, k.str(), v, "a table");
  }

  if (const toml::table* s = root["server"].as_table()) {
    Status st = check_known_keys(*s, "server",
                                 {"id", "data_dir", "client_address", "tick_ms", "max_client_cnxns", "max_cnxns",
                                  "sessionless_timeout_ms", "max_output_bytes", "admin_max_connections",
                                  "admin_request_timeout_ms", "max_outstanding", "max_outstanding_per_session",
                                  "session_create_rate", "session_create_burst",
                                  "min_session_timeout_ms", "max_session_timeout_ms", "plugin_dir",
                                  "four_letter_words", "log_level", "max_frame_bytes", "super_digest",
                                  "extended_types", "container_check_interval_ms", "admin_address", "enforce_quota", "jaas_config",
                                  "read_only_mode"},
                                 src);
    if (!st) return st;
  }
  TableView server(root["server"].as_table(), "server", src);
  ServerConfig& sc = c.server;
  CORRAL_TRY_ASSIGN(sc.id, server.get_int("id", sc.id));
  sc.id_set = server.contains("id");
  CORRAL_TRY_ASSIGN(sc.data_dir, server.get_string("data_dir", sc.data_dir));
  std::string addr;
  CORRAL_TRY_ASSIGN(addr, server.get_string("client_address", sc.client_address.to_string()));
  if (!sdk::parse_endpoint(addr, sc.client_address))
    return server.invalid("client_address", "\"host:port\", e.g. \"127.0.0.1:2181\"");
  CORRAL_TRY_ASSIGN(sc.tick_ms, server.get_int("tick_ms", sc.tick_ms));
  if (sc.tick_ms <= 0) return server.invalid("tick_ms", "a positive number of milliseconds");
  CORRAL_TRY_ASSIGN(sc.max_client_cnxns, server.get_int("max_client_cnxns", sc.max_client_cnxns));
  if (sc.max_client_cnxns < 0) return server.invalid("max_client_cnxns", "0 (unlimited) or more");
  CORRAL_TRY_ASSIGN(sc.max_cnxns, server.get_int("max_cnxns", sc.max_cnxns));
  if (sc.max_cnxns < 0) return server.invalid("max_cnxns", "0 (unlimited) or more");
  CORRAL_TRY_ASSIGN(sc.sessionless_timeout_ms, server.get_int("sessionless_timeout_ms", sc.sessionless_timeout_ms));
  if (sc.sessionless_timeout_ms < 100 || sc.sessionless_timeout_ms > 3600000)
    return server.invalid("sessionless_timeout_ms", "between 100 and 3600000 milliseconds");
  CORRAL_TRY_ASSIGN(sc.max_output_bytes, server.get_int("max_output_bytes", sc.max_output_bytes));
  if (sc.max_output_bytes < (64 << 10)) return server.invalid("max_output_bytes", "at least 65536 bytes");
  CORRAL_TRY_ASSIGN(sc.admin_max_connections, server.get_int("admin_max_connections", sc.admin_max_connections));
  if (sc.admin_max_connections < 1) return server.invalid("admin_max_connections", "at least 1");
  CORRAL_TRY_ASSIGN(sc.admin_request_timeout_ms,
                    server.get_int("admin_request_timeout_ms", sc.admin_request_timeout_ms));
  if (sc.admin_request_timeout_ms < 100 || sc.admin_request_timeout_ms > 3600000)
    return server.invalid("admin_request_timeout_ms", "between 100 and 3600000 milliseconds");
  CORRAL_TRY_ASSIGN(sc.max_outstanding, server.get_int("max_outstanding", sc.max_outstanding));
  if (sc.max_outstanding < 1) return server.invalid("max_outstanding", "at least 1");
  CORRAL_TRY_ASSIGN(sc.max_outstanding_per_session,
                    server.get_int("max_outstanding_per_session", sc.max_outstanding_per_session));
  if (sc.max_outstanding_per_session < 1) return server.invalid("max_outstanding_per_session", "at least 1");
  CORRAL_TRY_ASSIGN(sc.session_create_rate, server.get_int("session_create_rate", sc.session_create_rate));
  if (sc.session_create_rate < 0) return server.invalid("session_create_rate", "0 (no limit) or more a second");
  CORRAL_TRY_ASSIGN(sc.session_create_burst, server.get_int("session_create_burst", sc.session_create_burst));
  if (sc.session_create_burst < 1) return server.invalid("session_create_burst", "at least 1");
  CORRAL_TRY_ASSIGN(sc.min_session_timeout_ms,
                    server.get_int("min_session_timeout_ms", sc.min_session_timeout_ms));
  CORRAL_TRY_ASSIGN(sc.max_session_timeout_ms,
                    server.get_int("max_session_timeout_ms", sc.max_session_timeout_ms));
  if (sc.min_session_timeout_ms < 0)
    return server.invalid("min_session_timeout_ms", "0 (2 * tick_ms) or a positive number of milliseconds");
  if (sc.max_session_timeout_ms < 0)
    return server.invalid("max_session_timeout_ms", "0 (20 * tick_ms) or a positive number of milliseconds");
  if (sc.min_session_timeout() > sc.max_session_timeout())
    return server.invalid("min_session_timeout_ms", "at most max_session_timeout_ms");
  CORRAL_TRY_ASSIGN(sc.plugin_dirs, server.get_string_list("plugin_dir", sc.plugin_dirs));
  CORRAL_TRY_ASSIGN(sc.four_letter_words,
                    server.get_string_list("four_letter_words", sc.four_letter_words));
  CORRAL_TRY_ASSIGN(sc.log_level, server.get_string("log_level", sc.log_level));
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(sc.log_level))
    return server.invalid("log_level", "one of trace, debug, info, warn, error");
  CORRAL_TRY_ASSIGN(sc.max_frame_bytes, server.get_int("max_frame_bytes", sc.max_frame_bytes));
  if (sc.max_frame_bytes < 1024 || sc.max_frame_bytes > (1 << 30))
    return server.invalid("max_frame_bytes", "between 1024 and 1073741824");
  if (sc.id <= 0) return server.invalid("id", "a positive integer");
  CORRAL_TRY_ASSIGN(sc.super_digest, server.get_string("super_digest", sc.super_digest));
  CORRAL_TRY_ASSIGN(sc.extended_types, server.get_bool("extended_types", sc.extended_types));
  CORRAL_TRY_ASSIGN(sc.enforce_quota, server.get_bool("enforce_quota", sc.enforce_quota));
  CORRAL_TRY_ASSIGN(sc.jaas_config, server.get_string("jaas_config", sc.jaas_config));
  CORRAL_TRY_ASSIGN(sc.read_only_mode, server.get_bool("read_only_mode", sc.read_only_mode));
  if (sc.extended_types && sc.id > 254)
    return server.invalid("id", "at most 254 with server.extended_types (TTL owners use the top byte)");
  CORRAL_TRY_ASSIGN(sc.container_check_interval_ms,
                    server.get_int("container_check_interval_ms", sc.container_check_interval_ms));
  CORRAL_TRY_ASSIGN(sc.admin_address, server.get_string("admin_address", sc.admin_address));
  if (sdk::Endpoint ep; !sc.admin_address.empty() && !sdk::parse_endpoint(sc.admin_address, ep))
    return server.invalid("admin_address", "\"host:port\" (e.g. \"127.0.0.1:8080\") or \"\" for none");
  if (sc.container_check_interval_ms < 10)
    return server.invalid("container_check_interval_ms", "at least 10 milliseconds");
  if (!sc.super_digest.empty() && std::count(sc.super_digest.begin(), sc.super_digest.end(), ':') != 1)
    return server.invalid("super_digest", "\"user:base64-sha1\", as zkServer's DigestAuthenticationProvider.generateDigest prints");

  if (const toml::table* p = root["plugins"].as_table()) {
    Status st = check_known_keys(
        *p, "plugins", {"transport", "consensus", "storage", "election", "discovery", "recipes"}, src);
    if (!st) return st;
  }
  TableView plugins(root["plugins"].as_table(), "plugins", src);
  PluginsConfig& pc = c.plugins;
  CORRAL_TRY_ASSIGN(pc.transport, plugins.get_string("transport", pc.transport));
  CORRAL_TRY_ASSIGN(pc.consensus, plugins.get_string("consensus", pc.consensus));
  CORRAL_TRY_ASSIGN(pc.storage, plugins.get_string("storage", pc.storage));
  CORRAL_TRY_ASSIGN(pc.election, plugins.get_string("election", pc.election));
  CORRAL_TRY_ASSIGN(pc.discovery, plugins.get_string("discovery", pc.discovery));
  CORRAL_TRY_ASSIGN(pc.recipes, plugins.get_string_list("recipes", pc.recipes));
  for (const char* key : {"transport", "consensus", "storage"}) {
    auto v = plugins.get_string(key, "x");
    if (v && v.value().empty()) return plugins.invalid(key, "a plugin name");
  }

  if (const toml::table* e = root["ensemble"].as_table()) {
    Status st = check_known_keys(*e, "ensemble",
                                 {"servers", "listen_on_all_addresses", "reconfig_enabled", "peer_auth", "secret",
                                  "secret_file", "jaas_quorum_server", "jaas_quorum_learner", "handshake_timeout_ms"},
                                 src);
    if (!st) return st;
  }
  TableView ensemble(root["ensemble"].as_table(), "ensemble", src);
  EnsembleConfig& ec = c.ensemble;
  std::vector<std::string> servers;
  CORRAL_TRY_ASSIGN(servers, ensemble.get_string_list("servers", {}));
  CORRAL_TRY_ASSIGN(ec.listen_on_all_addresses,
                    ensemble.get_bool("listen_on_all_addresses", ec.listen_on_all_addresses));
  CORRAL_TRY_ASSIGN(ec.reconfig_enabled, ensemble.get_bool("reconfig_enabled", ec.reconfig_enabled));
  CORRAL_TRY_ASSIGN(ec.peer_auth, ensemble.get_string("peer_auth", ec.peer_auth));
  if (ec.peer_auth != "required" && ec.peer_auth != "optional" && ec.peer_auth != "none")
    return ensemble.invalid("peer_auth", "\"required\", \"optional\" or \"none\"");
  CORRAL_TRY_ASSIGN(ec.secret_file, ensemble.get_string("secret_file", ec.secret_file));
  CORRAL_TRY_ASSIGN(ec.secret, ensemble.get_string("secret", ec.secret));
  if (!ec.secret.empty() && ec.secret.size() < 16) return ensemble.invalid("secret", "at least 16 characters");
  if (!ec.secret.empty() && !ec.secret_file.empty())
    return ensemble.invalid("secret", "either secret or secret_file, not both");
  CORRAL_TRY_ASSIGN(ec.jaas_quorum_server, ensemble.get_string("jaas_quorum_server", ec.jaas_quorum_server));
  CORRAL_TRY_ASSIGN(ec.jaas_quorum_learner, ensemble.get_string("jaas_quorum_learner", ec.jaas_quorum_learner));
  bool jaas_keys = !ec.jaas_quorum_server.empty() || !ec.jaas_quorum_learner.empty();
  if (jaas_keys && (ec.jaas_quorum_server.empty() || ec.jaas_quorum_learner.empty()))
    return ensemble.invalid(ec.jaas_quorum_server.empty() ? "jaas_quorum_server" : "jaas_quorum_learner",
                            "the JAAS section name (both jaas_quorum_server and jaas_quorum_learner, or neither)");
  if (jaas_keys && sc.jaas_config.empty())
    return ensemble.invalid("jaas_quorum_server", "a JAAS file to read it from: set server.jaas_config too");
  if (jaas_keys && (!ec.secret.empty() || !ec.secret_file.empty()))
    return ensemble.invalid("jaas_quorum_server", "either a shared secret or the JAAS sections, not both");
  CORRAL_TRY_ASSIGN(ec.handshake_timeout_ms, ensemble.get_int("handshake_timeout_ms", ec.handshake_timeout_ms));
  if (ec.handshake_timeout_ms < 100 || ec.handshake_timeout_ms > 600000)
    return ensemble.invalid("handshake_timeout_ms", "between 100 and 600000 milliseconds");
  ec.members.clear();
  for (const std::string& text : servers) {
    size_t eq = text.find('=');
    sdk::ServerId id = 0;
    std::string error = "\"N=host:quorumPort:electionPort[:participant|observer][;clientPort]\", e.g. "
                        "\"1=node1:2888:3888\"";
    sdk::PeerSpec m;
    if (eq == std::string::npos ||
        std::from_chars(text.data(), text.data() + eq, id).ptr != text.data() + eq || id <= 0 ||
        !parse_member(id, std::string_view(text).substr(eq + 1), m, error))
      return ensemble.invalid("servers", "entries like " + error + " (found \"" + text + "\")");
    if (ec.member(id)) return ensemble.invalid("servers", "one entry per server id (" + std::to_string(id) + " twice)");
    ec.members.push_back(m);
  }
  std::sort(ec.members.begin(), ec.members.end(),
            [](const sdk::PeerSpec& a, const sdk::PeerSpec& b) { return a.id < b.id; });
  if (pc.consensus != "standalone" && pc.discovery.empty()) {
    if (ec.members.empty())
      return ensemble.invalid("servers", "the ensemble's members (consensus \"" + pc.consensus +
                                             "\" replicates), e.g. [\"1=node1:2888:3888\", \"2=node2:2888:3888\", "
                                             "\"3=node3:2888:3888\"], or a discovery plugin ([plugins] discovery)");
    if (!sc.id_set)
      return server.invalid("id", "this server's own id in the ensemble (server.id, or myid in the data "
                                  "directory): a member of an ensemble has no default id");
    if (!ec.member(sc.id))
      return ensemble.invalid("servers", "an entry for this server's own id " + std::to_string(sc.id) +
                                             " (server.id, or myid in the data directory)");
    size_t voters = 0;
    for (const auto& m : ec.members) voters += m.observer ? 0 : 1;
    if (voters == 0) return ensemble.invalid("servers", "at least one participant (not every member an observer)");
  } else if (pc.consensus != "standalone" && sc.id_set && !ec.members.empty() && !ec.member(sc.id)) {
    // Discovery fills in what the config leaves out, but what it says must agree.
    return ensemble.invalid("servers", "an entry for this server's own id " + std::to_string(sc.id) +
                                           " (server.id, or myid in the data directory)");
  }
  bool replicated = pc.consensus != "standalone";
  if (replicated && ec.peer_auth != "none" && ec.secret.empty() && ec.secret_file.empty() && !jaas_keys)
    return ensemble.invalid(
        "secret_file",
        "a file holding the ensemble's shared secret (make one with: head -c 32 /dev/urandom | base64 > "
        "peer.secret, and give every member the same file), so that only members can use the peer ports; or "
        "peer_auth = \"none\" to believe anyone who reaches them");
  return {};
}

}  // namespace

const sdk::PeerSpec* EnsembleConfig::member(sdk::ServerId id) const {
  for (const auto& m : members)
    if (m.id == id) return &m;
  return nullptr;
}

Config::Config() : root_(std::make_unique<toml::table>()) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;
toml::table& Config::root() { return *root_; }
const toml::table& Config::root() const { return *root_; }

std::unique_ptr<sdk::ConfigTable> Config::plugin_table(std::string_view kind,
                                                      std::string_view name) const {
  const toml::table* t = nullptr;
  if (const toml::table* k = (*root_)[kind].as_table()) t = (*k)[name].as_table();
  return std::make_unique<TableView>(t, std::string(kind) + "." + std::string(name), source);
}

std::string Config::to_toml() const {
  toml::table t = *root_;
  auto set = [&](std::string_view key, toml::node&& v) { (void)set_dotted(t, key, std::move(v)); };
  set("server.id", toml::value<int64_t>(server.id));
  set("server.data_dir", toml::value<std::string>(server.data_dir));
  set("server.client_address", toml::value<std::string>(server.client_address.to_string()));
  set("server.tick_ms", toml::value<int64_t>(server.tick_ms));
  set("server.max_client_cnxns", toml::value<int64_t>(server.max_client_cnxns));
  set("server.max_cnxns", toml::value<int64_t>(server.max_cnxns));
  set("server.sessionless_timeout_ms", toml::value<int64_t>(server.sessionless_timeout_ms));
  set("server.max_output_bytes", toml::value<int64_t>(server.max_output_bytes));
  set("server.admin_max_connections", toml::value<int64_t>(server.admin_max_connections));
  set("server.admin_request_timeout_ms", toml::value<int64_t>(server.admin_request_timeout_ms));
  set("server.max_outstanding", toml::value<int64_t>(server.max_outstanding));
  set("server.max_outstanding_per_session", toml::value<int64_t>(server.max_outstanding_per_session));
  set("server.session_create_rate", toml::value<int64_t>(server.session_create_rate));
  set("server.session_create_burst", toml::value<int64_t>(server.session_create_burst));
  set("server.min_session_timeout_ms", toml::value<int64_t>(server.min_session_timeout()));
  set("server.max_session_timeout_ms", toml::value<int64_t>(server.max_session_timeout()));
  auto list = [](const std::vector<std::string>& v) {
    toml::array a;
    for (const auto& s : v) a.push_back(s);
    return a;
  };
  set("server.plugin_dir", list(server.plugin_dirs));
  set("server.four_letter_words", list(server.four_letter_words));
  set("server.log_level", toml::value<std::string>(server.log_level));
  set("server.max_frame_bytes", toml::value<int64_t>(server.max_frame_bytes));
  set("server.enforce_quota", toml::value<bool>(server.enforce_quota));
  set("server.jaas_config", toml::value<std::string>(server.jaas_config));
  set("server.read_only_mode", toml::value<bool>(server.read_only_mode));
  set("plugins.election", toml::value<std::string>(plugins.election));
  set("plugins.discovery", toml::value<std::string>(plugins.discovery));
  set("plugins.recipes", list(plugins.recipes));
  set("plugins.transport", toml::value<std::string>(plugins.transport));
  set("plugins.consensus", toml::value<std::string>(plugins.consensus));
  set("plugins.storage", toml::value<std::string>(plugins.storage));
  if (!ensemble.members.empty()) {
    toml::array servers;
    for (const auto& m : ensemble.members) servers.push_back(std::to_string(m.id) + "=" + format_member(m));
    set("ensemble.servers", std::move(servers));
    set("ensemble.listen_on_all_addresses", toml::value<bool>(ensemble.listen_on_all_addresses));
    set("ensemble.reconfig_enabled", toml::value<bool>(ensemble.reconfig_enabled));
    set("ensemble.peer_auth", toml::value<std::string>(ensemble.peer_auth));
    set("ensemble.handshake_timeout_ms", toml::value<int64_t>(ensemble.handshake_timeout_ms));
  }
  if (!ensemble.secret.empty()) set("ensemble.secret", toml::value<std::string>("<not shown>"));
  std::ostringstream out;
  out << t;
  return out.str();
}

Result<Config> load_config(const std::optional<std::string>& path,
                           const std::vector<std::string>& overrides) {
  Config c;
  if (path) {
    try {
      c.root() = toml::parse_file(*path);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      return Status{Errc::invalid_argument, *path + ":" + std::to_string(b.line) + ":" +
                                                std::to_string(b.column) + ": " +
                                                std::string(e.description())};
    }
    c.source = *path;
  }
  for (const std::string& o : overrides) {
    Status st = apply_override(c.root(), o);
    if (!st) return st;
  }
  Status st = extract(c);
  if (!st) return st;
  return c;
}

Result<Config> load_zoo_cfg(const std::string& path, const std::vector<std::string>& overrides,
                            std::vector<std::string>& warnings) {
  std::ifstream in(path);
  if (!in) return Status{Errc::not_found, path + ": cannot open zoo.cfg"};
  Config c;
  c.source = path;
  toml::table& root = c.root();
  std::string host = "0.0.0.0";  // ZooKeeper listens on every address unless told
  int64_t port = 2181;
  // ZooKeeper's AdminServer: on by default, 0.0.0.0:8080.
  std::string admin_host = "0.0.0.0";
  int64_t admin_port = 8080;
  bool admin_enabled = true;
  std::vector<std::string> servers;  // "N=host:port:port..."
  std::string peer_type;
  bool standalone_enabled = true;
  // Quorum authentication (ZooKeeper's quorum.auth.*, DIGEST-MD5 from JAAS).
  bool quorum_sasl = false, learner_require_sasl = false, server_require_sasl = false;
  std::string server_login_context = "QuorumServer", learner_login_context = "QuorumLearner";
  // ZooKeeper's connection throttle (a token bucket; 0 tokens = off).
  int64_t throttle_tokens = -1, throttle_fill_time = 1, throttle_fill_count = 1;
  std::string data_dir;
  std::string line;
  int lineno = 0;
  auto number = [&](const std::string& key, const std::string& v, int64_t& out) -> Status {
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size())
      return {Errc::invalid_argument,
              path + ":" + std::to_string(lineno) + ": " + key + " must be a number, found '" + v + "'"};
    return {};
  };
  while (std::getline(in, line)) {
    ++lineno;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored line without '='");
      continue;
    }
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    int64_t n = 0;
    Status st;
    if (key == "clientPort") {
      st = number(key, value, port);
    } else if (key == "clientPortAddress") {
      host = value;
    } else if (key == "dataDir") {
      data_dir = value;
      (void)set_dotted(root, "server.data_dir", toml::value<std::string>(value));
    } else if (key == "tickTime") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.tick_ms", toml::value<int64_t>(n));
    } else if (key == "maxClientCnxns") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_client_cnxns", toml::value<int64_t>(n));
    } else if (key == "maxCnxns") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_cnxns", toml::value<int64_t>(n));
    } else if (key == "zookeeper.nio.sessionlessCnxnTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.sessionless_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "globalOutstandingLimit" || key == "zookeeper.globalOutstandingLimit") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_outstanding", toml::value<int64_t>(n));
    } else if (key == "jute.maxbuffer") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_frame_bytes", toml::value<int64_t>(n));
    } else if (key == "connection_throttle_tokens" || key == "zookeeper.connection_throttle_tokens") {
      st = number(key, value, throttle_tokens);
    } else if (key == "connection_throttle_fill_time" || key == "zookeeper.connection_throttle_fill_time") {
      st = number(key, value, throttle_fill_time);
    } else if (key == "connection_throttle_fill_count" || key == "zookeeper.connection_throttle_fill_count") {
      st = number(key, value, throttle_fill_count);
    } else if (key == "minSessionTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.min_session_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "maxSessionTimeout") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.max_session_timeout_ms", toml::value<int64_t>(n));
    } else if (key == "DigestAuthenticationProvider.superDigest" ||
               key == "zookeeper.DigestAuthenticationProvider.superDigest") {
      (void)set_dotted(root, "server.super_digest", toml::value<std::string>(value));
    } else if (key == "zookeeper.enforceQuota" || key == "enforceQuota") {
      (void)set_dotted(root, "server.enforce_quota", toml::value<bool>(value == "true"));
    } else if (key == "zookeeper.extendedTypesEnabled" || key == "extendedTypesEnabled") {
      (void)set_dotted(root, "server.extended_types", toml::value<bool>(value == "true"));
    } else if (key == "admin.serverPort") {
      st = number(key, value, n);
      admin_port = n;
    } else if (key == "admin.serverAddress") {
      admin_host = value;
    } else if (key == "admin.enableServer") {
      admin_enabled = value != "false";
    } else if (key == "znode.container.checkIntervalMs") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "server.container_check_interval_ms", toml::value<int64_t>(n));
    } else if (key.rfind("server.", 0) == 0) {
      sdk::ServerId id = 0;
      std::string_view digits = std::string_view(key).substr(7);
      sdk::PeerSpec m;
      std::string error;
      if (std::from_chars(digits.data(), digits.data() + digits.size(), id).ptr != digits.data() + digits.size() ||
          id <= 0)
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) + ": '" + key +
                                                  "' must be server.N with N a positive server id"};
      if (!parse_member(id, value, m, error))
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) + ": " + key + " must be " + error +
                                                  ", found '" + value + "'"};
      servers.push_back(std::to_string(id) + "=" + value);
    } else if (key == "initLimit" || key == "syncLimit") {
      st = number(key, value, n);
      if (st) (void)set_dotted(root, key == "initLimit" ? "consensus.zab.init_limit" : "consensus.zab.sync_limit",
                               toml::value<int64_t>(n));
    } else if (key.rfind("authProvider.", 0) == 0 && value.find("SASLAuthenticationProvider") != std::string::npos) {
      // The sasl scheme is always known here; its users come from the JAAS
      // file (server.jaas_config, ZooKeeper's java.security.auth.login.config).
    } else if (key == "snapCount") {
      // Transactions between snapshots: the wal's policy.
      st = number(key, value, n);
      if (st) (void)set_dotted(root, "storage.wal.snapshot_every_entries", toml::value<int64_t>(n));
    } else if (key == "peerType") {
      peer_type = value;
    } else if (key == "standaloneEnabled") {
      standalone_enabled = value != "false";
    } else if (key == "quorumListenOnAllIPs") {
      (void)set_dotted(root, "ensemble.listen_on_all_addresses", toml::value<bool>(value == "true"));
    } else if (key == "reconfigEnabled") {
      if (value != "true" && value != "false")
        return Status{Errc::invalid_argument, path + ":" + std::to_string(lineno) +
                                                  ": reconfigEnabled must be true or false, found '" + value + "'"};
      (void)set_dotted(root, "ensemble.reconfig_enabled", toml::value<bool>(value == "true"));
    } else if (key == "quorum.auth.enableSasl") {
      quorum_sasl = value == "true";
    } else if (key == "quorum.auth.learnerRequireSasl") {
      learner_require_sasl = value == "true";
    } else if (key == "quorum.auth.serverRequireSasl") {
      server_require_sasl = value == "true";
    } else if (key == "quorum.auth.server.loginContext") {
      server_login_context = value;
    } else if (key == "quorum.auth.learner.loginContext") {
      learner_login_context = value;
    } else if (key == "electionAlg") {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored '" + key +
                         "' (Corral elects with plugins.election)");
    } else if (key == "dynamicConfigFile") {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored '" + key +
                         "' (Corral keeps the membership a reconfig installs in its snapshots and log)");
    } else if (key == "4lw.commands.whitelist") {
      toml::array words;
      std::stringstream ss(value);
      std::string w;
      while (std::getline(ss, w, ',')) {
        w = trim(w);
        if (!w.empty()) words.push_back(w);
      }
      (void)set_dotted(root, "server.four_letter_words", std::move(words));
    } else {
      warnings.push_back(path + ":" + std::to_string(lineno) + ": ignored unsupported key '" + key + "'");
    }
    if (!st) return st;
  }
  if (port <= 0 || port > 65535)
    return Status{Errc::invalid_argument, path + ": clientPort must be 1..65535"};
  // An ensemble, as ZooKeeper reads it: the server.N lines and dataDir/myid.
  // One server with standaloneEnabled (the default) runs standalone.
  if (servers.size() > 1 || (servers.size() == 1 && !standalone_enabled)) {
    std::string myid_path = (data_dir.empty() ? std::string("data") : data_dir) + "/myid";
    std::ifstream myid(myid_path);
    std::string text;
    int64_t id = 0;
    if (!myid || !std::getline(myid, text))
      return Status{Errc::invalid_argument, path + " lists an ensemble (server.N lines) but " + myid_path +
                                                " cannot be read: write this server's id there, as ZooKeeper needs"};
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc() || end != text.data() + text.size() || id <= 0)
      return Status{Errc::invalid_argument, myid_path + ": must hold this server's id, a positive integer; found '" +
                                                text + "'"};
    (void)set_dotted(root, "server.id", toml::value<int64_t>(id));
    toml::array list;
    for (const auto& s : servers) list.push_back(s);
    (void)set_dotted(root, "ensemble.servers", std::move(list));
    (void)set_dotted(root, "plugins.consensus", toml::value<std::string>("zab"));
    (void)set_dotted(root, "plugins.election", toml::value<std::string>("fle"));
    if (quorum_sasl) {
      (void)set_dotted(root, "ensemble.peer_auth",
                       toml::value<std::string>(learner_require_sasl && server_require_sasl ? "required" : "optional"));
      (void)set_dotted(root, "ensemble.jaas_quorum_server", toml::value<std::string>(server_login_context));
      (void)set_dotted(root, "ensemble.jaas_quorum_learner", toml::value<std::string>(learner_login_context));
    } else {
      (void)set_dotted(root, "ensemble.peer_auth", toml::value<std::string>("none"));
      warnings.push_back(path +
                         ": no quorum.auth.enableSasl: the peer ports believe anyone who reaches them, as "
                         "ZooKeeper's do by default; turn on quorum.auth.enableSasl with QuorumServer and "
                         "QuorumLearner sections in server.jaas_config, or --set ensemble.secret_file=FILE "
                         "--set ensemble.peer_auth=required");
    }
    // peerType=observer must agree with the server's own line, as in ZooKeeper.
    std::string own = std::to_string(id) + "=";
    for (const auto& s : servers) {
      if (s.rfind(own, 0) != 0) continue;
      bool line_observer = s.find(":observer") != std::string::npos;
      if (!peer_type.empty() && (peer_type == "observer") != line_observer)
        return Status{Errc::invalid_argument, path + ": peerType=" + peer_type + " but server." + std::to_string(id) +
                                                  " is " + (line_observer ? "an observer" : "a participant")};
    }
  }
  (void)set_dotted(root, "server.client_address",
                   toml::value<std::string>(sdk::Endpoint{host, static_cast<uint16_t>(port)}.to_string()));
  if (throttle_tokens == 0) {
    (void)set_dotted(root, "server.session_create_rate", toml::value<int64_t>(0));
  } else if (throttle_tokens > 0) {
    if (throttle_fill_time <= 0 || throttle_fill_count <= 0)
      return Status{Errc::invalid_argument,
                    path + ": connection_throttle_fill_time and connection_throttle_fill_count must be positive"};
    (void)set_dotted(root, "server.session_create_burst", toml::value<int64_t>(throttle_tokens));
    (void)set_dotted(root, "server.session_create_rate",
                     toml::value<int64_t>(std::max<int64_t>(1, throttle_fill_count * 1000 / throttle_fill_time)));
  }
  if (admin_enabled && admin_port > 0 && admin_port <= 65535)
    (void)set_dotted(root, "server.admin_address",
                     toml::value<std::string>(sdk::Endpoint{admin_host, static_cast<uint16_t>(admin_port)}.to_string()));
  for (const std::string& o : overrides) {
    Status st = apply_override(root, o);
    if (!st) return st;
  }
  Status st = extract(c);
  if (!st) return st;
  return c;
}

}  // namespace corral::kernel
