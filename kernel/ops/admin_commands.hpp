// The admin endpoint's JSON commands: ZooKeeper's AdminServer names, with
// the four-letter words as aliases, answered from a read-only view.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ops/server_view.hpp"

namespace corral::kernel {

// The commands by their own names.
std::vector<std::string> admin_command_names();
// The command `requested` names (its own name or a four-letter alias).
std::optional<std::string> admin_command_name(std::string_view requested);
// Allowed as its four-letter word is, or by its own name; an unknown name
// is allowed (and answered as unknown).
bool admin_command_allowed(const Config& config, std::string_view requested);
// The JSON document, or nullopt for an unknown name. stat_reset and
// connection_stat_reset are only answered: the server resets.
std::optional<std::string> admin_command(const ServerView& v, std::string_view requested);

}  // namespace corral::kernel
