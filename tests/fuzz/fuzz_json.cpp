// JSON as the registry reads it: a document, then a service instance.
#include <cstdint>

#include "corral/common/json.hpp"
#include "registry_core.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto v = corral::common::JsonValue::parse(in);
  if (v) {
    // What parses writes out as JSON that parses again.
    auto again = corral::common::JsonValue::parse(v->dump());
    if (!again) __builtin_trap();
  }
  (void)corral::registry::parse_instance(in);
  return 0;
}
