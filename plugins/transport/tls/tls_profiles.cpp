// The `tls` transport's profiles: each purpose's (client, peer, admin)
// settings read from [transport.tls] and its sub-tables, its certificate
// and key loaded when first used, and read again when the files change.
#include "tls_transport.hpp"

namespace corral::tls_plugin {

Status TlsTransport::read_settings(const corral::sdk::ConfigTable& cfg, const std::string& sub,
                                   Settings& s) {
  auto key = [&](const char* k) { return sub.empty() ? std::string(k) : sub + "." + k; };
  struct Str {
    const char* name;
    std::string* out;
  } strs[] = {{"certificate", &s.certificate},   {"key", &s.key},
              {"password", &s.password},         {"ca", &s.ca},
              {"ca_password", &s.ca_password},   {"min_version", &s.min_version},
              {"max_version", &s.max_version},   {"ciphers", &s.ciphers},
              {"ciphersuites", &s.ciphersuites}, {"crl", &s.crl},
              {"crl_scope", &s.crl_scope}};
  for (auto& e : strs) {
    auto v = cfg.get_string(key(e.name), *e.out);
    if (!v) return v.status();
    *e.out = v.value();
  }
  auto pf = cfg.get_string(key("password_file"), "");
  if (!pf) return pf.status();
  if (!pf.value().empty()) {
    FILE* f = std::fopen(pf.value().c_str(), "rb");
    if (!f)
      return {Errc::invalid_argument, std::string(cfg.name()) + "." + key("password_file") +
                                          ": cannot read '" + pf.value() + "'"};
    char buf[1024];
    size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    std::string pw(buf, n);
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    s.password = pw;
  }
  // Unless told, a server with authorities asks for client certificates and
  // one without cannot check them, so does not ask.
  if (!cfg.contains(key("client_auth")) && !cfg.contains(key("ca")) && s.ca.empty() &&
      s.client_auth == corral::tls::ClientAuth::want)
    s.client_auth = corral::tls::ClientAuth::none;
  auto ca = cfg.get_string(key("client_auth"), corral::tls::client_auth_name(s.client_auth));
  if (!ca) return ca.status();
  if (!corral::tls::parse_client_auth(ca.value(), s.client_auth))
    return cfg.invalid(key("client_auth"), "none, want or need");
  return {};
}

Status TlsTransport::init(corral::sdk::PluginHost& host) {
  host_ = &host;
  const auto& cfg = host.config();
  static const char* const kProfileKeys[] = {
      "certificate",  "key",         "password",    "password_file", "ca",
      "ca_password",  "client_auth", "min_version", "max_version",   "ciphers",
      "ciphersuites", "crl",         "crl_scope"};
  auto known_profile_key = [](const std::string& k) {
    for (const char* p : kProfileKeys)
      if (k == p) return true;
    return false;
  };
  for (const std::string& k : cfg.keys()) {
    if (k == "peer" || k == "admin") {
      for (const std::string& sk : cfg.keys_in(k))
        if (!known_profile_key(sk))
          return cfg.invalid(
              k + "." + sk,
              "one of certificate, key, password, password_file, ca, ca_password, "
              "client_auth, min_version, max_version, ciphers, ciphersuites, crl, crl_scope "
              "(unknown key)");
      continue;
    }
    if (!known_profile_key(k) && k != "no_delay" && k != "read_buffer_bytes" &&
        k != "listen_backlog" && k != "handshake_timeout_ms" && k != "max_handshaking" &&
        k != "reload_interval_ms")
      return cfg.invalid(k,
                         "one of certificate, key, password, password_file, ca, ca_password, "
                         "client_auth, min_version, max_version, ciphers, ciphersuites, crl, "
                         "crl_scope, no_delay, "
                         "read_buffer_bytes, listen_backlog, handshake_timeout_ms, "
                         "max_handshaking, reload_interval_ms, or a [peer] or [admin] table "
                         "(unknown key)");
  }
  if (Status st = corral::stream::read_stream_options(cfg, opt_.stream); !st) return st;
  auto ht = cfg.get_int("handshake_timeout_ms", 10000);
  if (!ht) return ht.status();
  if (ht.value() < 100 || ht.value() > 600000)
    return cfg.invalid("handshake_timeout_ms", "between 100 and 600000");
  auto mh = cfg.get_int("max_handshaking", 256);
  if (!mh) return mh.status();
  if (mh.value() < 1 || mh.value() > 100000)
    return cfg.invalid("max_handshaking", "between 1 and 100000");
  auto ri = cfg.get_int("reload_interval_ms", 10000);
  if (!ri) return ri.status();
  if (ri.value() != 0 && (ri.value() < 100 || ri.value() > 86400000))
    return cfg.invalid("reload_interval_ms", "0 (never) or between 100 and 86400000");
  opt_.handshake_timeout_ms = ht.value();
  opt_.max_handshaking = static_cast<size_t>(mh.value());
  opt_.reload_interval_ms = ri.value();

  // The base table serves clients; [peer] and [admin] start from it and
  // override what they name. Peers always prove themselves both ways.
  Settings base;
  Status st = read_settings(cfg, "", base);
  if (!st) return st;
  std::string label(cfg.name());
  for (StreamPurpose p : {StreamPurpose::client, StreamPurpose::peer, StreamPurpose::admin}) {
    Profile prof;
    prof.purpose = p;
    prof.settings = base;
    prof.label = label;
    if (p != StreamPurpose::client) {
      std::string sub = purpose_name(p);
      if (p == StreamPurpose::peer) prof.settings.client_auth = corral::tls::ClientAuth::need;
      if (!cfg.keys_in(sub).empty()) prof.label = label + "." + sub;
      st = read_settings(cfg, sub, prof.settings);
      if (!st) return st;
      if (p == StreamPurpose::peer && prof.settings.client_auth != corral::tls::ClientAuth::need)
        return cfg.invalid("peer.client_auth",
                           "\"need\": members of an ensemble always prove who they are");
    }
    profiles_[p] = std::move(prof);
  }
  failures = host.metrics().counter("corral_tls_handshake_failures_total",
                                    "accepted TLS connections refused: handshake failed or late");
  return {};
}

Profile* TlsTransport::profile(StreamPurpose purpose) {
  Profile& p = profiles_[purpose];
  if (p.loaded) return &p;
  p.stamp = corral::tls::stamp_files(p.settings.files());
  auto m = corral::tls::load_material(p.settings, p.label,
                                      std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  if (!m) {
    last_error_ = m.status();
    return nullptr;
  }
  p.material = std::move(m.value());
  p.loaded = true;
  set_gauges(purpose, p);
  host_->logger().info(
      std::string("TLS for ") + purpose_name(purpose) + " streams: certificate " +
      p.material.subject + " from " + p.settings.certificate + ", client certificates " +
      corral::tls::client_auth_name(p.settings.client_auth) +
      (p.settings.crl.empty() ? std::string(", revocation not checked")
                              : ", revocation checked (" + p.settings.crl_scope + ") against " +
                                    std::to_string(p.material.revoked) +
                                    " revoked certificates in " + p.settings.crl));
  for (const std::string& w : p.material.warnings) host_->logger().warn("TLS: " + w);
  if (!reload_timer_ && opt_.reload_interval_ms > 0) schedule_reload();
  return &p;
}

void TlsTransport::schedule_reload() {
  reload_timer_ = host_->executor().schedule(std::chrono::milliseconds(opt_.reload_interval_ms),
                                             [this, alive = alive_.ref()] {
                                               if (!alive) return;
                                               reload();
                                               schedule_reload();
                                             });
}

// Files that changed are read again; new connections use what they hold,
// open ones keep theirs. A change that does not load is logged, once per
// change, and the last good material stays.
void TlsTransport::reload() {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (auto& [purpose, p] : profiles_) {
    if (!p.loaded) continue;
    std::string stamp = corral::tls::stamp_files(p.settings.files());
    if (stamp == p.stamp) continue;
    p.stamp = stamp;
    auto m = corral::tls::load_material(p.settings, p.label, now);
    if (!m) {
      host_->logger().error(
          "TLS: keeping the " + std::string(purpose_name(purpose)) +
          " certificate in use: the changed files do not load: " + m.status().message());
      continue;
    }
    p.material = std::move(m.value());
    set_gauges(purpose, p);
    host_->logger().info(std::string("TLS: reloaded the ") + purpose_name(purpose) +
                         " certificate: " + p.material.subject + " from " + p.settings.certificate +
                         (p.settings.crl.empty()
                              ? std::string()
                              : ", " + std::to_string(p.material.revoked) +
                                    " revoked certificates in " + p.settings.crl));
    for (const std::string& w : p.material.warnings) host_->logger().warn("TLS: " + w);
    if (!p.settings.crl.empty()) cut_revoked(purpose, p);
  }
}

void TlsTransport::set_gauges(StreamPurpose purpose, const Profile& p) {
  std::string label = std::string("{purpose=\"") + purpose_name(purpose) + "\"}";
  host_->metrics()
      .gauge("corral_tls_certificate_expiry_seconds" + label,
             "when this server's certificate for each purpose expires, seconds since the epoch")
      ->set(p.material.not_after_s);
  if (!p.settings.crl.empty())
    host_->metrics()
        .gauge("corral_tls_crl_next_update_seconds" + label,
               "the soonest nextUpdate of the revocation lists in use, seconds since the epoch: "
               "past it every certificate they cover is refused")
        ->set(p.material.crl_next_update_s);
}

}  // namespace corral::tls_plugin
