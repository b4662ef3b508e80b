// The `tls` transport's certificates, keys and policies: reading them from
// PEM or PKCS#12 files into an OpenSSL context, with errors that name the file
// and say what is wrong with it, and describing what a handshake established.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "corral/sdk/status.hpp"
#include "corral/sdk/transport.hpp"

namespace boost::asio::ssl {
class context;
}
typedef struct ssl_st SSL;

namespace corral::tls {

// Whether the accepting side asks the other for a certificate (ZooKeeper's
// ssl.clientAuth): not at all, optionally (a certificate sent must verify), or
// always.
enum class ClientAuth { none, want, need };
const char* client_auth_name(ClientAuth a);
bool parse_client_auth(const std::string& text, ClientAuth& out);

// One purpose's settings (client, peer or admin streams).
struct Settings {
  // This side's certificate chain: PEM (the leaf first, then intermediates;
  // the key may follow in the same file) or PKCS#12 (.p12, .pfx).
  std::string certificate;
  std::string key;       // PEM private key; "" = in `certificate`
  std::string password;  // of an encrypted PEM key or a PKCS#12 file
  // Authorities trusted to sign the other side's certificate: PEM, or a
  // PKCS#12 trust store. "" = none (then nothing can be verified).
  std::string ca;
  std::string ca_password;  // of a PKCS#12 trust store; "" = `password`
  ClientAuth client_auth = ClientAuth::want;
  // "TLSv1.2", "TLSv1.3": the lowest and highest versions allowed.
  std::string min_version = "TLSv1.2";
  std::string max_version = "TLSv1.3";
  // OpenSSL cipher lists for TLS 1.2 and for TLS 1.3; "" = the defaults
  // (forward-secret AEAD suites only).
  std::string ciphers;
  std::string ciphersuites;
  // Certificate revocation lists (PEM, one or more, or one DER), each signed
  // by an authority in `ca`. "" = revocation is not checked.
  std::string crl;
  // Whose revocation is checked: the other side's own certificate ("leaf"),
  // or every certificate up its chain ("chain": each authority needs a CRL
  // from the one above it).
  std::string crl_scope = "leaf";

  // The files these settings read, for noticing when they change.
  std::vector<std::string> files() const;
};

inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
inline constexpr const char* kDefaultCiphersuites =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

// A context built from settings, with what operators want to know about it.
struct Material {
  std::shared_ptr<boost::asio::ssl::context> context;
  std::string subject;      // of this side's certificate, RFC 2253
  int64_t not_after_s = 0;  // when it expires, seconds since the epoch
  // With `crl`: how many certificates the lists revoke, and the soonest
  // nextUpdate among them (0: none given), after which OpenSSL refuses
  // every certificate they cover until a newer list is in place.
  size_t revoked = 0;
  int64_t crl_next_update_s = 0;
  // What an operator should hear about but that does not stop the start
  // (an authority without a revocation list).
  std::vector<std::string> warnings;
};

// Reads the files `s` names and builds a context that serves as either end
// of a handshake. Fails, naming the setting and the file, when a file is
// missing or unreadable, is a Java KeyStore (with how to convert it), holds
// no certificate, a certificate that has expired or is not valid yet, or a
// key that does not match it; `label` prefixes the messages
// ("transport.tls").
sdk::Result<Material> load_material(const Settings& s, const std::string& label, int64_t now_s);

// A fingerprint of the files (path, size, modification time, inode), which
// changes when any of them is replaced or rewritten.
std::string stamp_files(const std::vector<std::string>& files);

// What a finished handshake established, from either end.
sdk::ConnectionSecurity describe(SSL* ssl);

// Whether the other end's certificate (or one above it in its chain) is
// revoked by a list in `ctx`'s store: "" when not, else which certificate,
// its serial and when it was revoked. For connections that were open when
// a new list came in.
std::string revoked_by(SSL* ssl, const boost::asio::ssl::context& ctx);

// Why the other end's certificate was refused ("certificate has expired,
// subject CN=x"), or "" when it was not.
std::string verify_failure(SSL* ssl);

// OpenSSL's queued errors as one line, emptying the queue.
std::string openssl_errors();

}  // namespace corral::tls
