// How two servers of an ensemble prove to each other that they belong to it,
// before either reads a single protocol message from the other.
//
// The dialer D opens with a hello (its id, the channel, the name it proves
// as, a fresh nonce); the acceptor A answers with a challenge (its own id, its
// nonce and, when it holds a key, a proof); D checks A's proof and answers
// with its own; only then does A read anything else from the connection.
// A proof is HMAC-SHA256 under the shared key of a label ("dialer" or
// "acceptor"), the channel, both ids and both nonces: it binds the claimed id
// to this one connection, cannot be replayed (fresh nonces on both sides) or
// reflected (different labels), and never sends the key.
//
// Keys come from a shared ensemble secret (ensemble.secret_file) or, for a
// ZooKeeper zoo.cfg with quorum.auth.enableSasl, from the JAAS file's
// QuorumServer (users accepted) and QuorumLearner (name and password dialed
// with) sections.
//
// Over mutual TLS (ensemble.tls) the transport has already checked that each
// side's certificate chains to a trusted authority; what is left is whose it
// is: certificate_names_member() below. A link whose certificate names the
// member it claims needs no shared secret (one, when configured, is checked
// as well).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/status.hpp"
#include "corral/sdk/transport.hpp"
#include "corral/sdk/types.hpp"

namespace corral::kernel {

// What this server proves and what it asks of others.
struct PeerCredentials {
  enum class Mode {
    none,      // anyone who reaches the peer ports is taken at their word (ZooKeeper's default)
    optional,  // proofs offered and checked when offered; peers without one accepted (a rolling
               // switch)
    required,  // every peer proves itself, both ways
  };
  Mode mode = Mode::none;
  std::string user;  // the name this server dials as ("" for a shared secret)
  std::string key;   // what it proves with; empty: it has nothing to prove
  std::map<std::string, std::string, std::less<>> accepted;  // name -> key of dialers it accepts

  // The key a dialer naming `name` must prove, or null.
  const std::string* key_for(std::string_view name) const;
  // A shared secret: one key that every member dials and accepts with.
  static PeerCredentials shared(Mode mode, std::string secret);
};

const char* peer_auth_mode_name(PeerCredentials::Mode m);
bool parse_peer_auth_mode(std::string_view text, PeerCredentials::Mode& out);

// Protocol version 2 opens with this handshake; version 1 (a plain hello, no
// reply) is still accepted from older members when the mode is `none`.
inline constexpr int64_t kPeerProtocolVersion = 2;
inline constexpr size_t kPeerNonceBytes = 32;

struct PeerHello {
  int64_t version = kPeerProtocolVersion;
  sdk::PeerChannel channel = sdk::PeerChannel::quorum;
  sdk::ServerId id = 0;
  bool offers = false;  // a proof will follow (HMAC-SHA256)
  std::string user;
  std::string nonce;
};

struct PeerChallenge {
  sdk::ServerId id = 0;  // the acceptor's own id
  std::string nonce;
  std::string proof;  // empty when the acceptor holds no key
};

sdk::Bytes encode_peer_hello(const PeerHello& h);
// False with `error` saying what was wrong. A version-1 hello decodes with
// version 1, offers false and no nonce.
bool decode_peer_hello(sdk::BytesView in, PeerHello& out, std::string& error);
sdk::Bytes encode_peer_challenge(const PeerChallenge& c);
bool decode_peer_challenge(sdk::BytesView in, PeerChallenge& out, std::string& error);
sdk::Bytes encode_peer_proof(std::string_view proof);
bool decode_peer_proof(sdk::BytesView in, std::string& proof, std::string& error);

enum class PeerSide { dialer, acceptor };
// The proof `side` sends on a connection from `dialer` to `acceptor`.
std::string peer_proof(std::string_view key, PeerSide side, sdk::PeerChannel channel,
                       sdk::ServerId dialer, sdk::ServerId acceptor, std::string_view dialer_nonce,
                       std::string_view acceptor_nonce);
// Compares in time independent of where they differ.
bool peer_proof_matches(std::string_view got, std::string_view want);

// Whether a verified certificate speaks for member `id`: one of its names
// (subjectAltName DNS or IP, or common name) is "server.<id>", or is the host
// of id's server.N line (a DNS name may match a "*.example.com" wildcard)
// while no other member has that host (members that share a host, as on one
// machine, are told apart only by "server.<id>"). False with `why` saying
// what the certificate names.
bool certificate_names_member(const sdk::ConnectionSecurity& sec, sdk::ServerId id,
                              const std::vector<sdk::PeerSpec>& members, std::string& why);

// Reads a shared secret from `path` (trailing whitespace dropped). Errors
// name the file and say how to make one.
sdk::Result<std::string> read_peer_secret(const std::string& path);

}  // namespace corral::kernel
