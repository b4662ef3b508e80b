#include "peer/peer_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

#include "corral/common/msgpack.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

constexpr std::string_view kMagic = "corral-peer";
constexpr std::string_view kChallengeMagic = "corral-peer-challenge";
constexpr size_t kProofBytes = 32;
constexpr size_t kMaxUserBytes = 256;

void put_be64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

const std::string* PeerCredentials::key_for(std::string_view name) const {
  auto it = accepted.find(name);
  return it == accepted.end() ? nullptr : &it->second;
}

PeerCredentials PeerCredentials::shared(Mode mode, std::string secret) {
  PeerCredentials c;
  c.mode = mode;
  c.key = secret;
  c.accepted.emplace("", std::move(secret));
  return c;
}

const char* peer_auth_mode_name(PeerCredentials::Mode m) {
  switch (m) {
    case PeerCredentials::Mode::none:
      return "none";
    case PeerCredentials::Mode::optional:
      return "optional";
    case PeerCredentials::Mode::required:
      return "required";
  }
  return "?";
}

bool parse_peer_auth_mode(std::string_view text, PeerCredentials::Mode& out) {
  for (auto m : {PeerCredentials::Mode::none, PeerCredentials::Mode::optional,
                 PeerCredentials::Mode::required})
    if (text == peer_auth_mode_name(m)) {
      out = m;
      return true;
    }
  return false;
}

sdk::Bytes encode_peer_hello(const PeerHello& h) {
  sdk::Bytes out;
  common::MsgpackWriter w(out);
  w.array(7);
  w.bytes(kMagic);
  w.integer(h.version);
  w.integer(static_cast<int>(h.channel));
  w.integer(h.id);
  w.boolean(h.offers);
  w.bytes(h.user);
  w.bytes(h.nonce);
  return out;
}

bool decode_peer_hello(sdk::BytesView in, PeerHello& out, std::string& error) {
  common::MsgpackReader r(in);
  uint32_t n = r.array();
  std::string_view magic = r.bytes();
  if (!r.ok() || magic != kMagic || (n != 4 && n != 7)) {
    error = "it did not open with a Corral peer hello";
    return false;
  }
  out.version = r.integer();
  int64_t channel = r.integer();
  out.id = r.integer();
  if (!r.ok() || channel < 0 || channel > 1) {
    error = "its hello is malformed";
    return false;
  }
  out.channel = static_cast<sdk::PeerChannel>(channel);
  if (n == 4) {
    if (out.version != 1) {
      error = "its hello is malformed";
      return false;
    }
    out.offers = false;
    out.user.clear();
    out.nonce.clear();
    return true;
  }
  if (out.version != kPeerProtocolVersion) {
    error = "it speaks peer protocol " + std::to_string(out.version) + ", this server " +
            std::to_string(kPeerProtocolVersion);
    return false;
  }
  out.offers = r.boolean();
  std::string_view user = r.bytes(), nonce = r.bytes();
  if (!r.ok() || !r.at_end() || user.size() > kMaxUserBytes || nonce.size() != kPeerNonceBytes) {
    error = "its hello is malformed";
    return false;
  }
  out.user = std::string(user);
  out.nonce = std::string(nonce);
  return true;
}

sdk::Bytes encode_peer_challenge(const PeerChallenge& c) {
  sdk::Bytes out;
  common::MsgpackWriter w(out);
  w.array(4);
  w.bytes(kChallengeMagic);
  w.integer(c.id);
  w.bytes(c.nonce);
  w.bytes(c.proof);
  return out;
}

bool decode_peer_challenge(sdk::BytesView in, PeerChallenge& out, std::string& error) {
  common::MsgpackReader r(in);
  uint32_t n = r.array();
  std::string_view magic = r.bytes();
  out.id = r.integer();
  std::string_view nonce = r.bytes(), proof = r.bytes();
  if (!r.ok() || !r.at_end() || n != 4 || magic != kChallengeMagic ||
      nonce.size() != kPeerNonceBytes || (!proof.empty() && proof.size() != kProofBytes)) {
    error =
        "it did not answer with a Corral peer challenge (an older Corral, or not Corral at all)";
    return false;
  }
  out.nonce = std::string(nonce);
  out.proof = std::string(proof);
  return true;
}

sdk::Bytes encode_peer_proof(std::string_view proof) {
  sdk::Bytes out;
  common::MsgpackWriter w(out);
  w.array(1);
  w.bytes(proof);
  return out;
}

bool decode_peer_proof(sdk::BytesView in, std::string& proof, std::string& error) {
  common::MsgpackReader r(in);
  uint32_t n = r.array();
  std::string_view p = r.bytes();
  if (!r.ok() || !r.at_end() || n != 1 || (!p.empty() && p.size() != kProofBytes)) {
    error = "its answer to the challenge is malformed";
    return false;
  }
  proof = std::string(p);
  return true;
}

std::string peer_proof(std::string_view key, PeerSide side, sdk::PeerChannel channel,
                       sdk::ServerId dialer, sdk::ServerId acceptor, std::string_view dialer_nonce,
                       std::string_view acceptor_nonce) {
  std::string msg(side == PeerSide::dialer ? "corral-peer-dialer" : "corral-peer-acceptor");
  msg.push_back(static_cast<char>(channel));
  put_be64(msg, static_cast<uint64_t>(dialer));
  put_be64(msg, static_cast<uint64_t>(acceptor));
  msg.append(dialer_nonce);
  msg.append(acceptor_nonce);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

bool peer_proof_matches(std::string_view got, std::string_view want) {
  return got.size() == want.size() && !want.empty() &&
         CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A certificate name against a host: equal ignoring case (and an IPv6
// host's brackets), or a leftmost "*." wildcard standing for one label.
bool name_matches(std::string_view name, std::string_view host) {
  std::string n = lower(name), h = lower(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (n == h) return true;
  // A wildcard names DNS hosts only, never an address.
  bool address =
      h.find(':') != std::string::npos || h.find_first_not_of("0123456789.") == std::string::npos;
  if (!address && n.size() > 2 && n.compare(0, 2, "*.") == 0) {
    size_t dot = h.find('.');
    return dot != std::string::npos && dot > 0 && h.substr(dot) == n.substr(1);
  }
  return false;
}

}  // namespace

bool certificate_names_member(const sdk::ConnectionSecurity& sec, sdk::ServerId id,
                              const std::vector<sdk::PeerSpec>& members, std::string& why) {
  if (!sec.peer_verified) {
    why = "it presented no certificate this server's authorities vouch for";
    return false;
  }
  const std::string by_id = "server." + std::to_string(id);
  for (const std::string& n : sec.peer_names)
    if (lower(n) == by_id) return true;
  const sdk::PeerSpec* me = nullptr;
  size_t sharing = 0;
  for (const sdk::PeerSpec& m : members) {
    if (m.id == id) me = &m;
  }
  if (me) {
    for (const sdk::PeerSpec& m : members)
      if (lower(m.host) == lower(me->host)) ++sharing;
    bool host_named = false;
    for (const std::string& n : sec.peer_names)
      if (name_matches(n, me->host)) host_named = true;
    if (host_named && sharing == 1) return true;
    if (host_named) {
      why = "it names the host " + me->host + ", which " + std::to_string(sharing) +
            " members share, and not " + by_id + " (certificate " + sec.peer_subject + ")";
      return false;
    }
  }
  std::string names;
  for (const std::string& n : sec.peer_names) names += (names.empty() ? "" : ", ") + n;
  why = "it names " + (names.empty() ? std::string("nothing") : names) + " (certificate " +
        sec.peer_subject + "), not " + by_id + (me ? " nor its host " + me->host : std::string());
  return false;
}

sdk::Result<std::string> read_peer_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string how = " (make one with: head -c 32 /dev/urandom | base64 > " + path +
                          ", and give every member the same file)";
  if (!in)
    return Status{Errc::not_found, "ensemble.secret_file " + path + ": cannot be read" + how};
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  if (s.size() < 16)
    return Status{Errc::invalid_argument, "ensemble.secret_file " + path + ": holds " +
                                              std::to_string(s.size()) +
                                              " bytes; a shared secret needs at least 16" + how};
  return s;
}

}  // namespace corral::kernel
