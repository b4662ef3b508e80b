// zoo.cfg's TLS and identity keys (secureClientPort, ssl.*, ssl.quorum.*,
// sslQuorum, portUnification, the x509 provider), mapped onto Corral's
// server and [transport.tls] keys. Fail closed: a security key that is set
// and that Corral cannot honour stops the start, naming it, instead of
// leaving a port less protected than the file asks.
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>

#include "config/config_internal.hpp"

namespace corral::kernel {

using sdk::Errc;
using sdk::Status;

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "TLSv1.2,TLSv1.3" -> lowest and highest; false when one is not TLS 1.2+.
bool protocol_range(const std::string& list, std::string& lo, std::string& hi) {
  std::vector<std::string> seen;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string p = config_trim(list.substr(start, comma - start));
    if (!p.empty()) {
      if (p != "TLSv1.2" && p != "TLSv1.3") return false;
      seen.push_back(p);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (seen.empty()) return false;
  std::sort(seen.begin(), seen.end());
  lo = seen.front();
  hi = seen.back();
  return true;
}

}  // namespace

bool ZooSecurity::take(const std::string& key, const std::string& value, const std::string& where,
                       Status& error) {
  auto refuse = [&](const std::string& why) {
    error = {Errc::invalid_argument, where + ": " + key + "=" + value + ": " + why};
    return true;
  };
  auto boolean = [&](bool& out) {
    if (value != "true" && value != "false") return refuse("must be true or false"), false;
    out = value == "true";
    return true;
  };
  if (key == "secureClientPort") {
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), secure_port);
    if (ec != std::errc() || end != value.data() + value.size() || secure_port <= 0 ||
        secure_port > 65535)
      return refuse("must be a port number");
    return true;
  }
  if (key == "secureClientPortAddress") return secure_host = value, true;
  if (key == "client.portUnification") return boolean(client_unification), true;
  if (key == "sslQuorum") return boolean(ssl_quorum), true;
  if (key == "portUnification") return boolean(quorum_unification), true;
  if (key == "admin.forceHttps") return boolean(admin_https), true;
  if (key == "admin.portUnification") {
    bool on = false;
    if (boolean(on) && on)
      refuse("not supported: the admin endpoint speaks either HTTP or HTTPS; use admin.forceHttps");
    return true;
  }
  if (key == "ssl.authProvider") {
    if (value == "x509") return true;  // ZooKeeper's default: client certificates are x509 ids
    return refuse(
        "Corral's client certificates are x509 identities; other providers are Java "
        "classes it cannot load");
  }
  if (key == "serverCnxnFactory" || key == "ssl.sslProvider" || key == "ssl.quorum.sslProvider")
    return true;  // Java choices with no bearing here: every port is served alike
  if (key == "X509AuthenticationProvider.superUser" ||
      key == "zookeeper.X509AuthenticationProvider.superUser")
    return x509_superuser = value, true;
  if (starts_with(key, "authProvider.")) {
    if (value == "org.apache.zookeeper.server.auth.X509AuthenticationProvider" ||
        value == "org.apache.zookeeper.server.auth.SASLAuthenticationProvider" ||
        value == "org.apache.zookeeper.server.auth.DigestAuthenticationProvider" ||
        value == "org.apache.zookeeper.server.auth.IPAuthenticationProvider")
      return true;
    return refuse(
        "not supported: Corral authenticates with digest, ip, sasl (DIGEST-MD5) and x509; "
        "other providers are Java classes it cannot load");
  }
  if (key == "enforce.auth.enabled" || key == "enforce.auth.schemes" ||
      key == "zookeeper.enforce.auth.enabled") {
    if (key != "enforce.auth.schemes" && value == "false") return true;
    return refuse(
        "not supported: Corral does not require clients to authenticate before "
        "their first request; lock the tree with ACLs instead");
  }
  bool quorum = starts_with(key, "ssl.quorum.");
  if (!quorum && !starts_with(key, "ssl.")) return false;
  std::string name = key.substr(quorum ? 11 : 4);
  Tls& t = quorum ? quorum_tls : client_tls;
  auto set = [&](const char* k) { return t.keys[k] = value, true; };
  if (name == "keyStore.location") return set("certificate");
  if (name == "keyStore.password") return set("password");
  if (name == "trustStore.location") return set("ca");
  if (name == "trustStore.password") return set("ca_password");
  if (name == "keyStore.type" || name == "trustStore.type") {
    std::string v = value;
    for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (v == "PEM" || v == "PKCS12" || v.empty()) return true;
    return refuse(
        "Corral reads PEM and PKCS12 stores; convert a JKS one with: keytool "
        "-importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 "
        "-deststoretype PKCS12");
  }
  if (name == "clientAuth") {
    std::string v = value;
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v != "none" && v != "want" && v != "need") return refuse("must be none, want or need");
    if (quorum && v != "need")
      return refuse("peers always prove themselves with certificates in Corral; leave it out");
    return t.keys["client_auth"] = v, true;
  }
  if (name == "protocol" || name == "enabledProtocols") {
    std::string lo, hi;
    if (!protocol_range(value, lo, hi)) return refuse("Corral speaks TLSv1.2 and TLSv1.3 only");
    if (name == "protocol") {
      // ZooKeeper's context protocol: the highest version it will use.
      t.keys["max_version"] = hi;
    } else {
      t.keys["min_version"] = lo;
      t.keys["max_version"] = hi;
    }
    return true;
  }
  if (name == "ciphersuites")
    return refuse(
        "names Java's cipher suites; give OpenSSL's names in transport.tls.ciphers "
        "(TLS 1.2) and transport.tls.ciphersuites (TLS 1.3) instead");
  if (name == "hostnameVerification") {
    bool on = true;
    if (!boolean(on)) return true;
    if (!on && quorum)
      return refuse(
          "Corral always checks that a peer's certificate names it (server.N, or its "
          "host); issue certificates that do and leave this out");
    return true;  // clients are never dialed; peers are always checked
  }
  if (name == "clientHostnameVerification") {
    bool on = false;
    if (boolean(on) && on)
      refuse(
          "not supported: client certificates are identities (x509:<subject>), not host "
          "names; leave it out");
    return true;
  }
  if (name == "crl") {
    bool on = false;
    if (boolean(on) && on)
      refuse(
          "not supported as ZooKeeper does it (lists fetched from the certificates' "
          "distribution points): Corral reads revocation lists from a file, "
          "transport.tls.crl in corral.toml, and reloads it when it changes");
    return true;
  }
  if (name == "ocsp") {
    bool on = false;
    if (boolean(on) && on)
      refuse(
          "not supported: Corral does not ask OCSP responders; give it revocation lists "
          "with transport.tls.crl in corral.toml");
    return true;
  }
  if (name == "handshakeDetectionTimeoutMillis") {
    int64_t ms = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec != std::errc() || end != value.data() + value.size() || ms < 100)
      return refuse("must be at least 100 milliseconds");
    handshake_timeout_ms = ms;
    return true;
  }
  return refuse(
      "not supported (Corral reads ssl[.quorum].keyStore.*, trustStore.*, clientAuth, "
      "protocol, enabledProtocols, hostnameVerification, crl, ocsp, "
      "handshakeDetectionTimeoutMillis)");
}

Status ZooSecurity::apply(toml::table& root, const std::string& client_host, bool ensemble,
                          const std::string& where) const {
  auto put = [&](const std::string& k, const std::string& v) {
    (void)set_dotted(root, k, toml::value<std::string>(v));
  };
  bool any_tls = secure_port > 0 || client_unification ||
                 (ensemble && (ssl_quorum || quorum_unification)) || admin_https;
  if (!any_tls) {
    if (!client_tls.keys.empty() || !quorum_tls.keys.empty() || !x509_superuser.empty())
      return {Errc::invalid_argument,
              where +
                  ": ssl.* keys are set but no port uses TLS (set secureClientPort, "
                  "client.portUnification or sslQuorum)"};
    return {};
  }
  if (secure_port > 0)
    put("server.secure_client_address",
        sdk::Endpoint{secure_host.empty() ? client_host : secure_host,
                      static_cast<uint16_t>(secure_port)}
            .to_string());
  if (client_unification)
    (void)set_dotted(root, "server.client_port_unification", toml::value<bool>(true));
  if (ensemble && ssl_quorum) (void)set_dotted(root, "ensemble.tls", toml::value<bool>(true));
  if (ensemble && quorum_unification)
    (void)set_dotted(root, "ensemble.tls_port_unification", toml::value<bool>(true));
  if (admin_https) (void)set_dotted(root, "server.admin_tls", toml::value<bool>(true));
  if (!x509_superuser.empty()) put("server.x509_superuser", x509_superuser);
  // ZooKeeper asks for client certificates unless told otherwise.
  std::map<std::string, std::string> client = client_tls.keys;
  if (!client.count("client_auth")) client["client_auth"] = "need";
  for (const auto& [k, v] : client) put("transport.tls." + k, v);
  // Peers (and, as ZooKeeper's AdminServer does, HTTPS) use ssl.quorum.*.
  for (const char* sub : {"peer", "admin"})
    for (const auto& [k, v] : quorum_tls.keys)
      if (k != "client_auth") put(std::string("transport.tls.") + sub + "." + k, v);
  // HTTPS callers may bring a certificate (then it must verify) or not.
  if (admin_https)
    put("transport.tls.admin.client_auth",
        quorum_tls.keys.count("ca") || client_tls.keys.count("ca") ? "want" : "none");
  if (handshake_timeout_ms > 0)
    (void)set_dotted(root, "transport.tls.handshake_timeout_ms",
                     toml::value<int64_t>(handshake_timeout_ms));
  return {};
}

}  // namespace corral::kernel
