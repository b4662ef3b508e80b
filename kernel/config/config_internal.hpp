// What config.cpp shares with zoo_cfg.cpp (not part of the config interface).
#pragma once

#include <toml++/toml.h>

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

}  // namespace corral::kernel
