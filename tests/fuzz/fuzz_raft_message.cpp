// One raft message as a server decodes it off the quorum port (after the
// peer handshake: from a member, or one gone bad).
#include <cstdint>

#include "raft_messages.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::raft::Msg m;
  (void)corral::raft::decode_message(
      corral::sdk::BytesView(reinterpret_cast<const char*>(data), size), m);
  return 0;
}
