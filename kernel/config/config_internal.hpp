// What config.cpp shares with zoo_cfg.cpp (not part of the config interface).
#pragma once

#include <toml++/toml.h>

#include <map>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace corral::kernel {

// `s` without surrounding spaces, tabs and CRs.
std::string config_trim(std::string s);
// Sets root[a][b]... = value for a dotted key, creating tables on the way.
sdk::Status set_dotted(toml::table& root, std::string_view dotted, toml::node&& value);
// `--set key=value`: the value read as TOML, else taken as a plain string.
sdk::Status apply_override(toml::table& root, std::string_view assignment);
// Reads and checks every section of `c.root()` into `c`.
sdk::Status extract(Config& c);

// zoo.cfg's TLS and identity keys, gathered line by line and then written
// as Corral's keys (zoo_cfg_security.cpp).
struct ZooSecurity {
  struct Tls {
    std::map<std::string, std::string> keys;  // [transport.tls] key -> value
  };
  int64_t secure_port = 0;
  std::string secure_host;
  bool client_unification = false, ssl_quorum = false, quorum_unification = false,
       admin_https = false;
  std::string x509_superuser;
  Tls client_tls, quorum_tls;
  int64_t handshake_timeout_ms = 0;

  // True when `key` is one of these (then `error` may say why its value is
  // refused); false for a key that is not about TLS or identity.
  bool take(const std::string& key, const std::string& value, const std::string& where,
            sdk::Status& error);
  // Writes what was gathered; `client_host` is clientPortAddress.
  sdk::Status apply(toml::table& root, const std::string& client_host, bool ensemble,
                    const std::string& where) const;
};

}  // namespace corral::kernel
