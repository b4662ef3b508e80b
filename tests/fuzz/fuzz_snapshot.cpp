// A tree snapshot as recovery or a learner's SNAP loads it; one that loads
// must write out and load again to the same tree.
#include <cstdint>
#include <string>

#include "tree/data_tree.hpp"

using namespace corral::kernel;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = DataTree::deserialize(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!t) return 0;
  std::string out;
  t->serialize([&](std::string_view chunk) { out += chunk; });
  auto again = DataTree::deserialize(out);
  if (!again || again->node_count() != t->node_count() || again->digest() != t->digest())
    __builtin_trap();
  return 0;
}
