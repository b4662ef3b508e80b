#include "config/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "config/config_internal.hpp"
#include "corral/common/http_parse.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Result;
using sdk::Status;

std::string config_trim(std::string s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

namespace {

std::string where(const std::string& source, const toml::node& node) {
  const auto& src = node.source();
  if (src.begin.line == 0) return "--set";  // set on the command line
  return source + ":" + std::to_string(src.begin.line);
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
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
  std::vector<std::string> keys_in(std::string_view table) const override {
    std::vector<std::string> out;
    const toml::node* n = find(table);
    if (n && n->is_table())
      for (auto&& [k, v] : *n->as_table()) out.emplace_back(k.str());
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

}  // namespace

// Sets root[a][b]... = value for a dotted key, creating tables on the way.
Status set_dotted(toml::table& root, std::string_view dotted, toml::node&& value) {
  toml::table* t = &root;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    std::string part(
        dotted.substr(start, dot == std::string_view::npos ? dotted.npos : dot - start));
    if (part.empty())
      return {Errc::invalid_argument, "--set " + std::string(dotted) + ": empty key part"};
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

namespace {

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

// ---------------------------------------------------------------- the schema

// One key of a section, listed once: where it goes, what it may hold, and
// whether --print-config shows it. Checks that span keys follow the table.
template <class Section>
struct Key {
  const char* name;
  std::variant<int64_t Section::*, bool Section::*, std::string Section::*,
               std::vector<std::string> Section::*, sdk::Endpoint Section::*>
      field;
  int64_t min = INT64_MIN, max = INT64_MAX;
  const char* expected = "a value in range";  // said when the value is out of range
  bool shown = true;                          // false for secrets
};

constexpr int64_t kMax = INT64_MAX;

const std::vector<Key<ServerConfig>>& server_keys() {
  using S = ServerConfig;
  static const std::vector<Key<S>> keys = {
      {"id", &S::id, 1, kMax, "a positive integer"},
      {"data_dir", &S::data_dir},
      {"client_address", &S::client_address},
      {"tick_ms", &S::tick_ms, 1, kMax, "a positive number of milliseconds"},
      {"max_client_cnxns", &S::max_client_cnxns, 0, kMax, "0 (unlimited) or more"},
      {"max_cnxns", &S::max_cnxns, 0, kMax, "0 (unlimited) or more"},
      {"sessionless_timeout_ms", &S::sessionless_timeout_ms, 100, 3600000,
       "between 100 and 3600000 milliseconds"},
      {"max_output_bytes", &S::max_output_bytes, 64 << 10, kMax, "at least 65536 bytes"},
      {"max_watch_bytes_per_connection", &S::max_watch_bytes_per_connection, 4096, kMax,
       "at least 4096 bytes"},
      {"max_watch_bytes", &S::max_watch_bytes, 4096, kMax, "at least 4096 bytes"},
      {"admin_max_connections", &S::admin_max_connections, 1, kMax, "at least 1"},
      {"admin_request_timeout_ms", &S::admin_request_timeout_ms, 100, 3600000,
       "between 100 and 3600000 milliseconds"},
      {"max_restore_bytes", &S::max_restore_bytes, 1 << 20, kMax, "at least 1048576 bytes"},
      {"shutdown_handover_ms", &S::shutdown_handover_ms, 0, 60000,
       "between 0 (no handover) and 60000 milliseconds"},
      {"max_outstanding", &S::max_outstanding, 1, kMax, "at least 1"},
      {"max_outstanding_per_session", &S::max_outstanding_per_session, 1, kMax, "at least 1"},
      {"session_create_rate", &S::session_create_rate, 0, kMax, "0 (no limit) or more a second"},
      {"session_create_burst", &S::session_create_burst, 1, kMax, "at least 1"},
      {"min_session_timeout_ms", &S::min_session_timeout_ms, 0, kMax,
       "0 (2 * tick_ms) or a positive number of milliseconds"},
      {"max_session_timeout_ms", &S::max_session_timeout_ms, 0, kMax,
       "0 (20 * tick_ms) or a positive number of milliseconds"},
      {"plugin_dir", &S::plugin_dirs},
      {"four_letter_words", &S::four_letter_words},
      {"log_level", &S::log_level},
      {"snapshot_method", &S::snapshot_method},
      {"snapshot_walk_slice", &S::snapshot_walk_slice, 1, 1 << 20, "between 1 and 1048576 nodes"},
      {"max_frame_bytes", &S::max_frame_bytes, 1024, 1 << 30, "between 1024 and 1073741824"},
      {"super_digest", &S::super_digest, INT64_MIN, kMax, "", false},
      {"extended_types", &S::extended_types},
      {"container_check_interval_ms", &S::container_check_interval_ms, 10, kMax,
       "at least 10 milliseconds"},
      {"admin_address", &S::admin_address},
      {"enforce_quota", &S::enforce_quota},
      {"linearizable_reads", &S::linearizable_reads},
      {"jaas_config", &S::jaas_config},
      {"read_only_mode", &S::read_only_mode},
      {"admin_tls", &S::admin_tls},
      {"secure_client_address", &S::secure_client_address},
      {"client_port_unification", &S::client_port_unification},
      {"x509_superuser", &S::x509_superuser},
      {"admin_identities", &S::admin_identities},
      {"admin_hosts", &S::admin_hosts},
      {"audit_log", &S::audit_log},
      {"audit_log_max_bytes", &S::audit_log_max_bytes, 4096, kMax, "at least 4096 bytes"},
      {"log_file", &S::log_file},
      {"log_file_max_bytes", &S::log_file_max_bytes, 4096, kMax, "at least 4096 bytes"},
  };
  return keys;
}

const std::vector<Key<PluginsConfig>>& plugins_keys() {
  using P = PluginsConfig;
  static const std::vector<Key<P>> keys = {
      {"transport", &P::transport},
      {"consensus", &P::consensus},
      {"storage", &P::storage},
      {"election", &P::election},
      {"discovery", &P::discovery},
      {"recipes", &P::recipes},
      {"secure_transport", &P::secure_transport},
  };
  return keys;
}

// ensemble.servers is read apart: its entries become members.
const std::vector<Key<EnsembleConfig>>& ensemble_keys() {
  using E = EnsembleConfig;
  static const std::vector<Key<E>> keys = {
      {"listen_on_all_addresses", &E::listen_on_all_addresses},
      {"reconfig_enabled", &E::reconfig_enabled},
      {"peer_auth", &E::peer_auth},
      {"secret", &E::secret, INT64_MIN, kMax, "", false},
      {"secret_file", &E::secret_file},
      {"jaas_quorum_server", &E::jaas_quorum_server},
      {"jaas_quorum_learner", &E::jaas_quorum_learner},
      {"handshake_timeout_ms", &E::handshake_timeout_ms, 100, 600000,
       "between 100 and 600000 milliseconds"},
      {"tls", &E::tls},
      {"tls_port_unification", &E::tls_port_unification},
  };
  return keys;
}

template <class Section>
Status read_section(const std::vector<Key<Section>>& keys, const toml::table& root,
                    const char* name, const std::string& src, std::vector<std::string> extra_known,
                    Section& out) {
  if (const toml::table* t = root[name].as_table()) {
    std::set<std::string> known(extra_known.begin(), extra_known.end());
    for (const auto& k : keys) known.insert(k.name);
    if (Status st = check_known_keys(*t, name, known, src); !st) return st;
  }
  TableView view(root[name].as_table(), name, src);
  for (const auto& k : keys) {
    Status st = std::visit(
        [&](auto member) -> Status {
          auto& target = out.*member;
          using T = std::decay_t<decltype(target)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            auto v = view.get_int(k.name, target);
            if (!v) return v.status();
            if (v.value() < k.min || v.value() > k.max) return view.invalid(k.name, k.expected);
            target = v.value();
          } else if constexpr (std::is_same_v<T, bool>) {
            auto v = view.get_bool(k.name, target);
            if (!v) return v.status();
            target = v.value();
          } else if constexpr (std::is_same_v<T, std::string>) {
            auto v = view.get_string(k.name, target);
            if (!v) return v.status();
            target = std::move(v.value());
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            auto v = view.get_string_list(k.name, target);
            if (!v) return v.status();
            target = std::move(v.value());
          } else {
            auto v = view.get_string(k.name, target.to_string());
            if (!v) return v.status();
            if (!sdk::parse_endpoint(v.value(), target))
              return view.invalid(k.name, "\"host:port\", e.g. \"127.0.0.1:2181\"");
          }
          return {};
        },
        k.field);
    if (!st) return st;
  }
  return {};
}

template <class Section>
void show_section(const std::vector<Key<Section>>& keys, const Section& in, const std::string& name,
                  toml::table& t) {
  for (const auto& k : keys) {
    if (!k.shown) continue;
    std::string key = name + "." + k.name;
    std::visit(
        [&](auto member) {
          const auto& v = in.*member;
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            toml::array a;
            for (const auto& s : v) a.push_back(s);
            (void)set_dotted(t, key, std::move(a));
          } else if constexpr (std::is_same_v<T, sdk::Endpoint>) {
            (void)set_dotted(t, key, toml::value<std::string>(v.to_string()));
          } else {
            (void)set_dotted(t, key, toml::value<T>(v));
          }
        },
        k.field);
  }
}

}  // namespace

Status extract(Config& c) {
  const std::string& src = c.source;
  toml::table& root = c.root();
  static const std::set<std::string> kSections = {"server",    "plugins",   "ensemble",
                                                  "transport", "consensus", "election",
                                                  "storage",   "discovery", "recipe"};
  for (auto&& [k, v] : root) {
    if (!kSections.count(std::string(k.str()))) {
      return {Errc::invalid_argument,
              where(src, v) + ": unknown section '" + std::string(k.str()) +
                  "' (known: server, plugins, ensemble, and one table per plugin kind)"};
    }
    if (!v.is_table()) return wrong_type(src, k.str(), v, "a table");
  }

  // [server]
  ServerConfig& sc = c.server;
  if (Status st = read_section(server_keys(), root, "server", src, {}, sc); !st) return st;
  TableView server(root["server"].as_table(), "server", src);
  sc.id_set = server.contains("id");
  if (sc.min_session_timeout() > sc.max_session_timeout())
    return server.invalid("min_session_timeout_ms", "at most max_session_timeout_ms");
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (!kLevels.count(sc.log_level))
    return server.invalid("log_level", "one of trace, debug, info, warn, error");
  if (sc.snapshot_method != "fork" && sc.snapshot_method != "walk")
    return server.invalid("snapshot_method", "\"fork\" or \"walk\"");
  if (sc.extended_types && sc.id > 254)
    return server.invalid("id",
                          "at most 254 with server.extended_types (TTL owners use the top byte)");
  if (sdk::Endpoint ep; !sc.admin_address.empty() && !sdk::parse_endpoint(sc.admin_address, ep))
    return server.invalid("admin_address",
                          "\"host:port\" (e.g. \"127.0.0.1:8080\") or \"\" for none");
  if (sdk::Endpoint ep;
      !sc.secure_client_address.empty() && !sdk::parse_endpoint(sc.secure_client_address, ep))
    return server.invalid("secure_client_address",
                          "\"host:port\" (e.g. \"127.0.0.1:2281\") or \"\" for none");
  if (!sc.super_digest.empty() &&
      std::count(sc.super_digest.begin(), sc.super_digest.end(), ':') != 1)
    return server.invalid(
        "super_digest",
        "\"user:base64-sha1\", as zkServer's DigestAuthenticationProvider.generateDigest prints");

  for (const std::string& id : sc.admin_identities) {
    size_t colon = id.find(':');
    std::string scheme = id.substr(0, colon);
    bool ok = colon != std::string::npos && colon + 1 < id.size() &&
              (scheme == "x509" || scheme == "sasl" ||
               (scheme == "digest" && std::count(id.begin(), id.end(), ':') == 2));
    if (!ok)
      return server.invalid("admin_identities",
                            "a list of \"x509:<subject>\", \"sasl:<user>\" or "
                            "\"digest:<user>:<base64-sha1>\" identities (found \"" +
                                id + "\")");
  }

  for (std::string& host : sc.admin_hosts) {
    // Lowercase, without the root's dot, as requests' Host names are
    // compared; a port, a scheme or a wildcard inside a name never matches,
    // so it is refused rather than silently ignored.
    std::string name = common::ascii_lower(host);
    if (name.size() > 1 && name.back() == '.') name.pop_back();
    bool ok = name == "*" || (!name.empty() && name != "." && name.size() <= 254);
    for (char ch : name)
      if (name != "*" &&
          !(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.' || ch == '_'))
        ok = false;
    if (!ok)
      return server.invalid("admin_hosts",
                            "a list of host names (\"corral.example.com\"), domains "
                            "(\".example.com\": any name under it) or \"*\" (any), without "
                            "ports or schemes (found \"" +
                                host + "\")");
    host = std::move(name);
  }

  // [plugins]
  PluginsConfig& pc = c.plugins;
  if (Status st = read_section(plugins_keys(), root, "plugins", src, {}, pc); !st) return st;
  TableView plugins(root["plugins"].as_table(), "plugins", src);
  for (const char* key : {"transport", "consensus", "storage", "secure_transport"}) {
    auto v = plugins.get_string(key, "x");
    if (v && v.value().empty()) return plugins.invalid(key, "a plugin name");
  }

  // [ensemble]
  EnsembleConfig& ec = c.ensemble;
  if (Status st = read_section(ensemble_keys(), root, "ensemble", src, {"servers"}, ec); !st)
    return st;
  TableView ensemble(root["ensemble"].as_table(), "ensemble", src);
  auto servers_r = ensemble.get_string_list("servers", {});
  if (!servers_r) return servers_r.status();
  std::vector<std::string> servers = std::move(servers_r.value());
  if (ec.peer_auth != "required" && ec.peer_auth != "optional" && ec.peer_auth != "none")
    return ensemble.invalid("peer_auth", "\"required\", \"optional\" or \"none\"");
  if (!ec.secret.empty() && ec.secret.size() < 16)
    return ensemble.invalid("secret", "at least 16 characters");
  if (!ec.secret.empty() && !ec.secret_file.empty())
    return ensemble.invalid("secret", "either secret or secret_file, not both");
  bool jaas_keys = !ec.jaas_quorum_server.empty() || !ec.jaas_quorum_learner.empty();
  if (jaas_keys && (ec.jaas_quorum_server.empty() || ec.jaas_quorum_learner.empty()))
    return ensemble.invalid(
        ec.jaas_quorum_server.empty() ? "jaas_quorum_server" : "jaas_quorum_learner",
        "the JAAS section name (both jaas_quorum_server and jaas_quorum_learner, or neither)");
  if (jaas_keys && sc.jaas_config.empty())
    return ensemble.invalid("jaas_quorum_server",
                            "a JAAS file to read it from: set server.jaas_config too");
  if (jaas_keys && (!ec.secret.empty() || !ec.secret_file.empty()))
    return ensemble.invalid("jaas_quorum_server",
                            "either a shared secret or the JAAS sections, not both");
  ec.members.clear();
  for (const std::string& text : servers) {
    size_t eq = text.find('=');
    sdk::ServerId id = 0;
    std::string error =
        "\"N=host:quorumPort:electionPort[:participant|observer][;clientPort]\", e.g. "
        "\"1=node1:2888:3888\"";
    sdk::PeerSpec m;
    if (eq == std::string::npos ||
        std::from_chars(text.data(), text.data() + eq, id).ptr != text.data() + eq || id <= 0 ||
        !parse_member(id, std::string_view(text).substr(eq + 1), m, error))
      return ensemble.invalid("servers", "entries like " + error + " (found \"" + text + "\")");
    if (ec.member(id))
      return ensemble.invalid("servers",
                              "one entry per server id (" + std::to_string(id) + " twice)");
    ec.members.push_back(m);
  }
  std::sort(ec.members.begin(), ec.members.end(),
            [](const sdk::PeerSpec& a, const sdk::PeerSpec& b) { return a.id < b.id; });
  // The configuration is checked before any module is loaded (--print-config
  // loads none), so here the consensus is known by its name: "standalone"
  // replicates nothing, any other is taken to. Once loaded, the server acts
  // on what the module declares (sdk::ConsensusTraits).
  if (pc.consensus != "standalone" && pc.discovery.empty()) {
    if (ec.members.empty())
      return ensemble.invalid(
          "servers", "the ensemble's members (consensus \"" + pc.consensus +
                         "\" replicates), e.g. [\"1=node1:2888:3888\", \"2=node2:2888:3888\", "
                         "\"3=node3:2888:3888\"], or a discovery plugin ([plugins] discovery)");
    if (!sc.id_set)
      return server.invalid("id",
                            "this server's own id in the ensemble (server.id, or myid in the data "
                            "directory): a member of an ensemble has no default id");
    if (!ec.member(sc.id))
      return ensemble.invalid("servers", "an entry for this server's own id " +
                                             std::to_string(sc.id) +
                                             " (server.id, or myid in the data directory)");
    size_t voters = 0;
    for (const auto& m : ec.members) voters += m.observer ? 0 : 1;
    if (voters == 0)
      return ensemble.invalid("servers", "at least one participant (not every member an observer)");
  } else if (pc.consensus != "standalone" && sc.id_set && !ec.members.empty() &&
             !ec.member(sc.id)) {
    // Discovery fills in what the config leaves out, but what it says must agree.
    return ensemble.invalid("servers", "an entry for this server's own id " +
                                           std::to_string(sc.id) +
                                           " (server.id, or myid in the data directory)");
  }
  bool replicated = pc.consensus != "standalone";
  if (replicated && ec.peer_auth != "none" && ec.secret.empty() && ec.secret_file.empty() &&
      !jaas_keys && !ec.tls)
    return ensemble.invalid(
        "secret_file",
        "a file holding the ensemble's shared secret (make one with: head -c "
        "32 /dev/urandom | base64 > "
        "peer.secret, and give every member the same file), so that only "
        "members can use the peer ports; or "
        "peer_auth = \"none\" to believe anyone who reaches them; or tls = true, where "
        "certificates prove who each member is");
  return {};
}

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
  show_section(server_keys(), server, "server", t);
  // The timeouts as they apply (0 in the file means a multiple of tick_ms).
  (void)set_dotted(t, "server.min_session_timeout_ms",
                   toml::value<int64_t>(server.min_session_timeout()));
  (void)set_dotted(t, "server.max_session_timeout_ms",
                   toml::value<int64_t>(server.max_session_timeout()));
  show_section(plugins_keys(), plugins, "plugins", t);
  if (!ensemble.members.empty()) {
    toml::array servers;
    for (const auto& m : ensemble.members)
      servers.push_back(std::to_string(m.id) + "=" + format_member(m));
    (void)set_dotted(t, "ensemble.servers", std::move(servers));
    show_section(ensemble_keys(), ensemble, "ensemble", t);
  }
  if (!ensemble.secret.empty())
    (void)set_dotted(t, "ensemble.secret", toml::value<std::string>("<not shown>"));
  if (!server.super_digest.empty())
    (void)set_dotted(t, "server.super_digest", toml::value<std::string>("<not shown>"));
  // Plugins' passwords (transport.tls.password, ...) are not shown either.
  std::function<void(toml::table&)> hide = [&](toml::table& tab) {
    for (auto&& [k, v] : tab) {
      std::string_view key = k.str();
      if (v.is_table())
        hide(*v.as_table());
      else if (key.size() >= 8 && key.substr(key.size() - 8) == "password" && v.is_string())
        *v.as_string() = std::string("<not shown>");
    }
  };
  for (const char* kind : {"transport", "consensus", "election", "storage", "discovery", "recipe"})
    if (toml::table* kt = t[kind].as_table()) hide(*kt);
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

}  // namespace corral::kernel
