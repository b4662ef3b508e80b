// The first frames on a peer port, before the other side has proved
// anything: the hello, the challenge and the proof.
#include <cstdint>
#include <string>

#include "peer/peer_auth.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sdk::BytesView in(reinterpret_cast<const char*>(data), size);
  std::string error, proof;
  kernel::PeerHello h;
  if (kernel::decode_peer_hello(in, h, error)) {
    // What decodes must encode to something that decodes the same.
    kernel::PeerHello again;
    if (h.version == kernel::kPeerProtocolVersion &&
        (!kernel::decode_peer_hello(kernel::encode_peer_hello(h), again, error) ||
         again.id != h.id || again.nonce != h.nonce || again.user != h.user))
      __builtin_trap();
  }
  kernel::PeerChallenge c;
  (void)kernel::decode_peer_challenge(in, c, error);
  (void)kernel::decode_peer_proof(in, proof, error);
  return 0;
}
