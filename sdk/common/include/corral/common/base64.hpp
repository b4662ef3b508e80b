// Base64 (RFC 4648, the standard alphabet), for HTTP credentials and the
// console's znode data.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace corral::common {

// With padding.
std::string base64_encode(std::string_view bytes);
// Padding optional; nullopt on any character outside the alphabet (spaces
// included) and on a length no encoding has.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace corral::common
