// Four-letter words: ZooKeeper's plain-text admin commands on the client
// port, written from a read-only view of the server.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ops/server_view.hpp"

namespace corral::kernel {

// One value of mntr / the monitor command: its text, and whether it is a number.
struct MonitorValue {
  std::string text;
  bool number;
};

bool is_four_letter_word(std::string_view word);
// Whether server.four_letter_words lets anyone run it: the word itself (or "*") is listed.
bool four_letter_allowed(const Config& config, std::string_view word);
// The reply to `word`; srst and crst, which reset statistics, are the server's.
std::string four_letter_text(const ServerView& v, std::string_view word);
// mntr's values, in order, keys without the "zk_" prefix.
std::vector<std::pair<std::string, MonitorValue>> monitor_values(const ServerView& v);

}  // namespace corral::kernel
