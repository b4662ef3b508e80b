// One Zab message as a learner or the leader decodes it off the quorum
// port (after the peer handshake: from a member, or one gone bad).
#include <cstdint>

#include "zab_messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::zab::Msg m;
  (void)corral::zab::decode_message(
      corral::sdk::BytesView(reinterpret_cast<const char*>(data), size), m);
  return 0;
}
