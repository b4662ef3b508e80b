#include "corral/common/http_parse.hpp"

namespace corral::common {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim_http_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::map<std::string, std::string> parse_http_headers(std::string_view head) {
  std::map<std::string, std::string> out;
  size_t at = head.find("\r\n");
  while (at != std::string_view::npos) {
    size_t next = head.find("\r\n", at + 2);
    std::string_view line = head.substr(
        at + 2, next == std::string_view::npos ? std::string_view::npos : next - at - 2);
    if (size_t colon = line.find(':'); colon != std::string_view::npos)
      out[ascii_lower(trim_http_space(line.substr(0, colon)))] =
          std::string(trim_http_space(line.substr(colon + 1)));
    at = next;
  }
  return out;
}

}  // namespace corral::common
