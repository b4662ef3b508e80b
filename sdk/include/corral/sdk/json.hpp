// JSON string quoting, for the few places Corral writes JSON by hand (admin
// commands, tool output, recipe documents).
#pragma once

#include <string>
#include <string_view>

namespace corral::sdk {

// `s` as a JSON string literal, quotes included. Control characters become
// \u00XX escapes; other bytes pass through (UTF-8 stays UTF-8).
std::string json_quote(std::string_view s);

}  // namespace corral::sdk
