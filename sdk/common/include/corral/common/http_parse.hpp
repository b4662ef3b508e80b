// Small pieces of HTTP/1.x parsing shared by the admin endpoint, the
// registry and the Docker Engine client. Not part of the plugin contract.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace corral::common {

// The header fields of an HTTP/1.x message head (request or status line,
// then CRLF-separated fields; the blank line excluded): names lower-cased,
// values without surrounding spaces. Lines without a colon are skipped.
std::map<std::string, std::string> parse_http_headers(std::string_view head);
// `s` without leading and trailing spaces, tabs and a final CR.
std::string_view trim_http_space(std::string_view s);
// ASCII lower case.
std::string ascii_lower(std::string_view s);

}  // namespace corral::common
