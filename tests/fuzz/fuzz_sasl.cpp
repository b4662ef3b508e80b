// A SASL DIGEST-MD5 exchange as the server runs it: the opening token, then
// the client's response with its directives (RFC 2831).
#include <cstdint>

#include "session/sasl.hpp"

using namespace corral::kernel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const SaslUsers users = {{"alice", "secret"}, {"bob", "hunter2"}};
  DigestMd5Server server(users, "OA6MG9tEQGm2hh");
  auto first = server.step("");
  if (!first) __builtin_trap();
  auto second = server.step(in);
  if (second && server.complete() && !users.count(server.username())) __builtin_trap();
  return 0;
}
