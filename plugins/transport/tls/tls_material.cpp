#include "tls_material.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace corral::tls {

using sdk::Errc;
using sdk::Result;
using sdk::Status;

const char* client_auth_name(ClientAuth a) {
  switch (a) {
    case ClientAuth::none:
      return "none";
    case ClientAuth::want:
      return "want";
    case ClientAuth::need:
      return "need";
  }
  return "?";
}

bool parse_client_auth(const std::string& text, ClientAuth& out) {
  std::string t;
  for (char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (t == "none")
    out = ClientAuth::none;
  else if (t == "want")
    out = ClientAuth::want;
  else if (t == "need")
    out = ClientAuth::need;
  else
    return false;
  return true;
}

std::vector<std::string> Settings::files() const {
  std::vector<std::string> out;
  for (const std::string* f : {&certificate, &key, &ca, &crl})
    if (!f->empty()) out.push_back(*f);
  return out;
}

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // "error:0A00018E:SSL routines::ca md too weak": keep the reason.
    std::string s(buf);
    size_t at = s.rfind(':');
    if (at != std::string::npos && at + 1 < s.size()) s = s.substr(at + 1);
    if (!out.empty()) out += "; ";
    out += s;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using P12Ptr = std::unique_ptr<PKCS12, Deleter<PKCS12, PKCS12_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;

void free_x509_stack(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_x509_stack>>;

enum class Format { pem, pkcs12, jks };

Result<std::string> read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return Status{Errc::invalid_argument,
                  what + ": cannot read '" + path + "': " + std::strerror(err)};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  if (bytes.empty()) return Status{Errc::invalid_argument, what + ": '" + path + "' is empty"};
  if (bytes.size() > (16u << 20))
    return Status{Errc::invalid_argument, what + ": '" + path + "' is larger than 16 MiB"};
  return bytes;
}

Format sniff(const std::string& bytes) {
  if (bytes.size() >= 4 && static_cast<uint8_t>(bytes[0]) == 0xfe &&
      static_cast<uint8_t>(bytes[1]) == 0xed && static_cast<uint8_t>(bytes[2]) == 0xfe &&
      static_cast<uint8_t>(bytes[3]) == 0xed)
    return Format::jks;
  if (bytes.find("-----BEGIN ") != std::string::npos) return Format::pem;
  return Format::pkcs12;
}

Status jks_error(const std::string& what, const std::string& path) {
  return {Errc::invalid_argument,
          what + ": '" + path +
              "' is a Java KeyStore (JKS), which Corral does not read; convert it to PKCS#12 "
              "with: keytool -importkeystore -srckeystore " +
              path + " -destkeystore " + path +
              ".p12 -deststoretype PKCS12, and name the .p12 file instead"};
}

std::string name_of(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return "";
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n > 0 ? n : 0));
}

int64_t epoch_seconds(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string asn1_text(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !t) return "?";
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n > 0 ? n : 0));
}

// The certificate chain and key a file holds.
struct Identity {
  X509Ptr leaf;
  X509StackPtr chain{sk_X509_new_null()};
  KeyPtr key;
};

extern "C" int password_cb(char* buf, int size, int, void* userdata) {
  const auto* pw = static_cast<const std::string*>(userdata);
  if (!pw || static_cast<int>(pw->size()) >= size) return 0;
  std::memcpy(buf, pw->data(), pw->size());
  return static_cast<int>(pw->size());
}

Status read_pem_identity(const std::string& bytes, const std::string& path, const std::string& what,
                         const std::string& password, Identity& id, bool want_key) {
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ERR_clear_error();
  id.leaf.reset(
      PEM_read_bio_X509_AUX(bio.get(), nullptr, password_cb, const_cast<std::string*>(&password)));
  if (!id.leaf) return {Errc::invalid_argument, what + ": '" + path + "' holds no PEM certificate"};
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, password_cb,
                                     const_cast<std::string*>(&password)))
    sk_X509_push(id.chain.get(), c);
  ERR_clear_error();
  if (want_key) {
    BioPtr kb(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    id.key.reset(PEM_read_bio_PrivateKey(kb.get(), nullptr, password_cb,
                                         const_cast<std::string*>(&password)));
    ERR_clear_error();
  }
  return {};
}

Status read_pkcs12(const std::string& bytes, const std::string& path, const std::string& what,
                   const std::string& password, Identity& id) {
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ERR_clear_error();
  P12Ptr p12(d2i_PKCS12_bio(bio.get(), nullptr));
  if (!p12)
    return {Errc::invalid_argument,
            what + ": '" + path + "' is neither PEM nor PKCS#12 (" + openssl_errors() + ")"};
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* ca = nullptr;
  if (PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &ca) != 1)
    return {Errc::invalid_argument, what + ": cannot open the PKCS#12 file '" + path +
                                        "' (a wrong password?): " + openssl_errors()};
  id.key.reset(key);
  id.leaf.reset(cert);
  if (ca) id.chain.reset(ca);
  return {};
}

Status read_identity(const Settings& s, const std::string& label, Identity& id) {
  const std::string what = label + ".certificate";
  auto bytes = read_file(s.certificate, what);
  if (!bytes) return bytes.status();
  Format f = sniff(bytes.value());
  if (f == Format::jks) return jks_error(what, s.certificate);
  if (f == Format::pkcs12) {
    if (!s.key.empty())
      return {Errc::invalid_argument, label + ".key: '" + s.certificate +
                                          "' is PKCS#12, which holds its own key; leave " + label +
                                          ".key out"};
    Status st = read_pkcs12(bytes.value(), s.certificate, what, s.password, id);
    if (!st) return st;
    if (!id.leaf)
      return {Errc::invalid_argument, what + ": '" + s.certificate + "' holds no certificate"};
  } else {
    Status st =
        read_pem_identity(bytes.value(), s.certificate, what, s.password, id, s.key.empty());
    if (!st) return st;
  }
  if (!s.key.empty()) {
    auto kb = read_file(s.key, label + ".key");
    if (!kb) return kb.status();
    if (sniff(kb.value()) != Format::pem)
      return {Errc::invalid_argument, label + ".key: '" + s.key + "' is not a PEM private key"};
    BioPtr bio(BIO_new_mem_buf(kb.value().data(), static_cast<int>(kb.value().size())));
    ERR_clear_error();
    id.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, password_cb,
                                         const_cast<std::string*>(&s.password)));
    if (!id.key)
      return {Errc::invalid_argument, label + ".key: cannot read a private key from '" + s.key +
                                          "' (encrypted without the right " + label +
                                          ".password?): " + openssl_errors()};
  }
  if (!id.key)
    return {Errc::invalid_argument, what + ": '" + s.certificate +
                                        "' holds no private key; name it with " + label + ".key"};
  return {};
}

Status load_trust(SSL_CTX* ctx, const Settings& s, const std::string& label) {
  const std::string what = label + ".ca";
  auto bytes = read_file(s.ca, what);
  if (!bytes) return bytes.status();
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  Format f = sniff(bytes.value());
  if (f == Format::jks) return jks_error(what, s.ca);
  int added = 0;
  if (f == Format::pem) {
    BioPtr bio(BIO_new_mem_buf(bytes.value().data(), static_cast<int>(bytes.value().size())));
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509Ptr owned(c);
      if (X509_STORE_add_cert(store, c) == 1) ++added;
    }
    ERR_clear_error();
  } else {
    Identity id;
    Status st = read_pkcs12(bytes.value(), s.ca, what,
                            s.ca_password.empty() ? s.password : s.ca_password, id);
    if (!st) return st;
    if (id.leaf && X509_STORE_add_cert(store, id.leaf.get()) == 1) ++added;
    for (int i = 0; i < sk_X509_num(id.chain.get()); ++i)
      if (X509_STORE_add_cert(store, sk_X509_value(id.chain.get(), i)) == 1) ++added;
    ERR_clear_error();
  }
  if (added == 0) return {Errc::invalid_argument, what + ": '" + s.ca + "' holds no certificate"};
  return {};
}

// The authorities in a store, for naming the one that signed a list.
std::vector<X509*> authorities(X509_STORE* store) {
  std::vector<X509*> out;
  STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(store);
  for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i)
    if (X509* c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i))) out.push_back(c);
  return out;
}

// Reads the revocation lists `s.crl` names into the store, each checked
// against the authority that signed it, and turns checking on.
Status load_crls(SSL_CTX* ctx, const Settings& s, const std::string& label, int64_t now_s,
                 Material& m) {
  const std::string what = label + ".crl";
  if (s.crl_scope != "leaf" && s.crl_scope != "chain")
    return {Errc::invalid_argument,
            label + ".crl_scope: '" + s.crl_scope + "' must be \"leaf\" or \"chain\""};
  if (s.ca.empty())
    return {Errc::invalid_argument,
            what +
                ": revocation lists are checked against the authorities that sign them; name "
                "those in " +
                label + ".ca"};
  auto bytes = read_file(s.crl, what);
  if (!bytes) return bytes.status();
  std::vector<CrlPtr> lists;
  BioPtr bio(BIO_new_mem_buf(bytes.value().data(), static_cast<int>(bytes.value().size())));
  ERR_clear_error();
  if (sniff(bytes.value()) == Format::pem) {
    if (bytes.value().find("-----BEGIN X509 CRL-----") == std::string::npos)
      return {Errc::invalid_argument,
              what + ": '" + s.crl + "' holds no PEM revocation list (-----BEGIN X509 CRL-----)"};
    while (X509_CRL* c = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr))
      lists.emplace_back(c);
    unsigned long e = ERR_peek_last_error();
    // The end of the file reads as "no start line"; anything else is damage.
    if (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
      return {Errc::invalid_argument, what + ": '" + s.crl + "' holds a revocation list that " +
                                          "cannot be read after the " +
                                          std::to_string(lists.size()) +
                                          " before it: " + openssl_errors()};
    ERR_clear_error();
  } else {
    if (X509_CRL* c = d2i_X509_CRL_bio(bio.get(), nullptr)) lists.emplace_back(c);
    if (lists.empty())
      return {Errc::invalid_argument, what + ": '" + s.crl +
                                          "' is neither a PEM nor a DER revocation list (" +
                                          openssl_errors() + ")"};
  }
  if (lists.empty())
    return {Errc::invalid_argument, what + ": '" + s.crl + "' holds no revocation list"};
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  std::vector<X509*> cas = authorities(store);
  std::vector<bool> covered(cas.size(), false);
  for (size_t n = 0; n < lists.size(); ++n) {
    X509_CRL* crl = lists[n].get();
    std::string issuer = name_of(X509_CRL_get_issuer(crl));
    std::string which = "the revocation list " + std::to_string(n + 1) + " in '" + s.crl +
                        "' (issued by " + issuer + ")";
    bool signed_by_ca = false;
    for (size_t i = 0; i < cas.size(); ++i) {
      if (X509_NAME_cmp(X509_get_subject_name(cas[i]), X509_CRL_get_issuer(crl)) != 0) continue;
      EVP_PKEY* pub = X509_get0_pubkey(cas[i]);
      if (pub && X509_CRL_verify(crl, pub) == 1) {
        signed_by_ca = true;
        covered[i] = true;
      }
    }
    ERR_clear_error();
    if (!signed_by_ca)
      return {Errc::invalid_argument,
              what + ": " + which + " is not signed by any authority in '" + s.ca + "'"};
    int64_t last = epoch_seconds(X509_CRL_get0_lastUpdate(crl));
    if (last > now_s)
      return {Errc::invalid_argument, what + ": " + which + " is not valid before " +
                                          asn1_text(X509_CRL_get0_lastUpdate(crl))};
    if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl)) {
      int64_t t = epoch_seconds(next);
      if (t && t < now_s)
        return {Errc::invalid_argument,
                what + ": " + which + " expired on " + asn1_text(next) +
                    " (its nextUpdate): every certificate it covers would be refused; publish a "
                    "newer list"};
      if (t && (!m.crl_next_update_s || t < m.crl_next_update_s)) m.crl_next_update_s = t;
    }
    if (STACK_OF(X509_REVOKED)* r = X509_CRL_get_REVOKED(crl))
      m.revoked += static_cast<size_t>(sk_X509_REVOKED_num(r));
    if (X509_STORE_add_crl(store, crl) != 1) {
      // The same list twice in the file is harmless.
      ERR_clear_error();
    }
  }
  for (size_t i = 0; i < cas.size(); ++i)
    if (!covered[i])
      m.warnings.push_back(
          what + ": no revocation list in '" + s.crl + "' comes from " +
          name_of(X509_get_subject_name(cas[i])) +
          (s.crl_scope == "chain"
               ? ", so chains through it are refused (\"unable to get certificate CRL\")"
               : ", so a certificate it signs directly is refused (\"unable to get certificate "
                 "CRL\"); nothing to do if it signs only other authorities"));
  X509_STORE_set_flags(
      store, X509_V_FLAG_CRL_CHECK | (s.crl_scope == "chain" ? X509_V_FLAG_CRL_CHECK_ALL : 0));
  return {};
}

// The certificate a failed verification stopped at, kept on the SSL so the
// refusal can name it (OpenSSL keeps no peer certificate for a handshake it
// refused).
void free_refused(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::string*>(ptr);
}

int refused_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_refused);
  return index;
}

extern "C" int remember_refused(int ok, X509_STORE_CTX* x) {
  if (ok) return ok;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx()));
  X509* cert = X509_STORE_CTX_get_current_cert(x);
  if (ssl && cert && !SSL_get_ex_data(ssl, refused_index()))
    SSL_set_ex_data(ssl, refused_index(), new std::string(name_of(X509_get_subject_name(cert))));
  return ok;
}

int version_of(const std::string& v) {
  if (v == "TLSv1.2") return TLS1_2_VERSION;
  if (v == "TLSv1.3") return TLS1_3_VERSION;
  return 0;
}

}  // namespace

Result<Material> load_material(const Settings& s, const std::string& label, int64_t now_s) {
  namespace ssl = boost::asio::ssl;
  int lo = version_of(s.min_version), hi = version_of(s.max_version);
  if (!lo)
    return Status{Errc::invalid_argument,
                  label + ".min_version: '" + s.min_version + "' must be TLSv1.2 or TLSv1.3"};
  if (!hi)
    return Status{Errc::invalid_argument,
                  label + ".max_version: '" + s.max_version + "' must be TLSv1.2 or TLSv1.3"};
  if (lo > hi)
    return Status{Errc::invalid_argument, label + ": min_version " + s.min_version +
                                              " is above max_version " + s.max_version};
  if (s.certificate.empty())
    return Status{Errc::invalid_argument,
                  label + ".certificate: no certificate is configured (a PEM or PKCS#12 file)"};
  if (s.client_auth != ClientAuth::none && s.ca.empty())
    return Status{Errc::invalid_argument,
                  label + ".ca: client_auth = \"" + client_auth_name(s.client_auth) +
                      "\" verifies the other side's certificate, so it needs the authorities "
                      "that sign them"};

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, lo);
  SSL_CTX_set_max_proto_version(native, hi);
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  // OpenSSL gives back a connection's record buffers while it has nothing
  // buffered, so an idle session does not hold them.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(native, s.ciphers.empty() ? kDefaultCiphers : s.ciphers.c_str()) != 1)
    return Status{Errc::invalid_argument,
                  label + ".ciphers: '" + s.ciphers + "' names no cipher this OpenSSL has"};
  if (SSL_CTX_set_ciphersuites(
          native, s.ciphersuites.empty() ? kDefaultCiphersuites : s.ciphersuites.c_str()) != 1)
    return Status{Errc::invalid_argument, label + ".ciphersuites: '" + s.ciphersuites +
                                              "' names no TLS 1.3 suite this OpenSSL has"};

  Identity id;
  Status st = read_identity(s, label, id);
  if (!st) return st;
  Material m;
  m.subject = name_of(X509_get_subject_name(id.leaf.get()));
  m.not_after_s = epoch_seconds(X509_get0_notAfter(id.leaf.get()));
  int64_t not_before = epoch_seconds(X509_get0_notBefore(id.leaf.get()));
  if (m.not_after_s && m.not_after_s < now_s)
    return Status{Errc::invalid_argument, label + ".certificate: the certificate in '" +
                                              s.certificate + "' (" + m.subject + ") expired on " +
                                              asn1_text(X509_get0_notAfter(id.leaf.get()))};
  if (not_before && not_before > now_s)
    return Status{Errc::invalid_argument,
                  label + ".certificate: the certificate in '" + s.certificate + "' (" + m.subject +
                      ") is not valid before " + asn1_text(X509_get0_notBefore(id.leaf.get()))};
  ERR_clear_error();
  if (X509_check_private_key(id.leaf.get(), id.key.get()) != 1) {
    ERR_clear_error();
    return Status{Errc::invalid_argument, label + ".key: the private key in '" +
                                              (s.key.empty() ? s.certificate : s.key) +
                                              "' does not match the certificate in '" +
                                              s.certificate + "' (" + m.subject + ")"};
  }
  if (SSL_CTX_use_cert_and_key(native, id.leaf.get(), id.key.get(), id.chain.get(), 1) != 1)
    return Status{Errc::invalid_argument, label + ".certificate: cannot use the certificate in '" +
                                              s.certificate + "': " + openssl_errors()};
  if (!s.ca.empty()) {
    st = load_trust(native, s, label);
    if (!st) return st;
  }
  if (!s.crl.empty()) {
    st = load_crls(native, s, label, now_s, m);
    if (!st) return st;
    // This server's own certificate, revoked by the lists it hands out:
    // every other member and client checking them will refuse it.
    STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(native));
    for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i) {
      X509_CRL* crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
      X509_REVOKED* r = nullptr;
      if (crl &&
          X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(id.leaf.get())) == 0 &&
          X509_CRL_get0_by_cert(crl, &r, id.leaf.get()) == 1)
        m.warnings.push_back(label + ".certificate: this server's own certificate in '" +
                             s.certificate + "' (" + m.subject + ") is revoked by '" + s.crl +
                             "': others that check the list will refuse it");
    }
  }
  int mode = SSL_VERIFY_NONE;
  if (s.client_auth == ClientAuth::want) mode = SSL_VERIFY_PEER;
  if (s.client_auth == ClientAuth::need) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(native, mode, remember_refused);
  SSL_CTX_set_verify_depth(native, 10);
  // A server that asks for client certificates can only resume a session
  // (browsers and Java clients resume theirs) within a named context: without
  // one OpenSSL fails the handshake ("session id context uninitialized").
  // Each role has its own, so a session is resumed only where it was made.
  {
    std::string context = label.substr(0, SSL_MAX_SID_CTX_LENGTH);
    SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>(context.data()),
                                   static_cast<unsigned>(context.size()));
  }
  // The CA names a server sends when it asks for a client certificate.
  if (s.client_auth != ClientAuth::none) {
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i) {
      X509* c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
      if (c) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(c)));
    }
    SSL_CTX_set_client_CA_list(native, names);
  }
  m.context = std::move(ctx);
  return m;
}

std::string stamp_files(const std::vector<std::string>& files) {
  std::string out;
  for (const std::string& f : files) {
    struct stat st {};
    out += f;
    if (::stat(f.c_str(), &st) == 0) {
      out += ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino);
    } else {
      out += ":missing";
    }
    out += ";";
  }
  return out;
}

sdk::ConnectionSecurity describe(SSL* ssl) {
  sdk::ConnectionSecurity s;
  s.encrypted = true;
  s.protocol = SSL_get_version(ssl);
  if (const char* c = SSL_get_cipher_name(ssl)) s.cipher = c;
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) return s;
  s.peer_verified = true;
  s.peer_subject = name_of(X509_get_subject_name(peer.get()));
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(peer.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const ASN1_IA5STRING* d = g->d.dNSName;
        s.peer_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                                  static_cast<size_t>(ASN1_STRING_length(d)));
      } else if (g->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = g->d.iPAddress;
        char buf[64] = {};
        int n = ASN1_STRING_length(ip);
        const unsigned char* b = ASN1_STRING_get0_data(ip);
        if (n == 4) {
          std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
          s.peer_names.emplace_back(buf);
        } else if (n == 16) {
          char v6[INET6_ADDRSTRLEN] = {};
          if (inet_ntop(AF_INET6, b, v6, sizeof v6)) s.peer_names.emplace_back(v6);  // "::1"
        }
      }
    }
    GENERAL_NAMES_free(sans);
  }
  const X509_NAME* subj = X509_get_subject_name(peer.get());
  for (int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) {
    const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, cn);
    if (n > 0) s.peer_names.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  return s;
}

namespace {

// What a re-verification found revoked: the first certificate, and the
// list that revoked it. Other failures (a certificate that expired since
// the handshake) are let pass: only revocation ends an open connection.
struct RevokedFinding {
  X509* cert = nullptr;
  X509_CRL* crl = nullptr;
};

int revocation_index() {
  static const int index = X509_STORE_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

extern "C" int note_revoked(int ok, X509_STORE_CTX* x) {
  if (ok) return ok;
  if (X509_STORE_CTX_get_error(x) == X509_V_ERR_CERT_REVOKED) {
    auto* f = static_cast<RevokedFinding*>(X509_STORE_CTX_get_ex_data(x, revocation_index()));
    if (f && !f->cert) {
      f->cert = X509_STORE_CTX_get_current_cert(x);
      f->crl = X509_STORE_CTX_get0_current_crl(x);
    }
  }
  return 1;
}

}  // namespace

std::string revoked_by(SSL* ssl, const boost::asio::ssl::context& ctx) {
  X509_STORE* store = SSL_CTX_get_cert_store(
      const_cast<SSL_CTX*>(const_cast<boost::asio::ssl::context&>(ctx).native_handle()));
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return "";
  // The handshake's own check, run again against the new lists: the same
  // chain building from the store's authorities (what the other side sent
  // only as untrusted help), the same CRL flags.
  std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>> vc(
      X509_STORE_CTX_new());
  if (!vc || X509_STORE_CTX_init(vc.get(), store, leaf, SSL_get_peer_cert_chain(ssl)) != 1) {
    ERR_clear_error();
    return "";
  }
  RevokedFinding found;
  X509_STORE_CTX_set_ex_data(vc.get(), revocation_index(), &found);
  X509_STORE_CTX_set_verify_cb(vc.get(), note_revoked);
  (void)X509_verify_cert(vc.get());
  ERR_clear_error();
  if (!found.cert) return "";
  std::string out = "certificate " + name_of(X509_get_subject_name(found.cert));
  X509_REVOKED* r = nullptr;
  if (found.crl && X509_CRL_get0_by_cert(found.crl, &r, found.cert) == 1 && r) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), nullptr);
    char* hex = bn ? BN_bn2hex(bn) : nullptr;
    out += std::string(" (serial ") + (hex ? hex : "?") + ") was revoked on " +
           asn1_text(X509_REVOKED_get0_revocationDate(r));
    OPENSSL_free(hex);
    BN_free(bn);
  } else {
    out += " was revoked";
  }
  return out;
}

std::string verify_failure(SSL* ssl) {
  long r = SSL_get_verify_result(ssl);
  if (r == X509_V_OK) return "";
  std::string out = X509_verify_cert_error_string(r);
  if (const auto* refused = static_cast<const std::string*>(SSL_get_ex_data(ssl, refused_index())))
    return out + " (certificate " + *refused + ")";
  X509Ptr peer(SSL_get1_peer_certificate(ssl));
  if (peer) out += " (certificate " + name_of(X509_get_subject_name(peer.get())) + ")";
  return out;
}

}  // namespace corral::tls
