// An admin endpoint request head, as the server parses it before routing.
#include <cstdint>
#include <string>
#include <vector>

#include "admin/admin_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The server parses what precedes the blank line, at most 16 KiB of it.
  std::string_view head = in.substr(0, std::min<size_t>(in.find("\r\n\r\n"), 16 * 1024));
  corral::sdk::HttpRequest req;
  size_t body = 0;
  std::string error;
  int code = corral::kernel::parse_http_head(head, req, body, error);
  if (code == 0 && body > 1024 * 1024) __builtin_trap();
  if (code == 0) {
    // The Host check runs on every parsed head before anything else.
    static const std::vector<std::string> allowed{"corral.example", ".ops.example"};
    static const std::vector<std::string> own{"node1", "node1.corral.svc"};
    auto why = corral::kernel::misdirected(req, allowed, own);
    if (why && why->empty()) __builtin_trap();
  }
  if (code != 0 && error.empty()) __builtin_trap();
  return 0;
}
