// The `tls` transport's parts, shared by its two files: tls_transport.cpp
// (connections, listeners, dialling) and tls_profiles.cpp (each purpose's
// settings and certificates, read at start and again when files change).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <map>

#include "corral/common/lifeline.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/transport.hpp"
#include "stream_parts.hpp"
#include "tls_material.hpp"

namespace corral::tls_plugin {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using corral::sdk::Errc;
using corral::sdk::Status;
using corral::sdk::StreamPurpose;
using corral::tls::Settings;

inline const char* purpose_name(StreamPurpose p) {
  switch (p) {
    case StreamPurpose::client:
      return "client";
    case StreamPurpose::peer:
      return "peer";
    case StreamPurpose::admin:
      return "admin";
  }
  return "?";
}

struct Options {
  corral::stream::StreamOptions stream;
  int64_t handshake_timeout_ms = 10000;
  size_t max_handshaking = 256;
  int64_t reload_interval_ms = 10000;
};

// One purpose's live settings: the context new connections use, replaced
// when the files change. Connections keep the context they started with.
struct Profile {
  StreamPurpose purpose;
  std::string label;  // "transport.tls", "transport.tls.peer"
  Settings settings;
  corral::tls::Material material;
  std::string stamp;
  bool loaded = false;
};

// Logs at most a few lines a second, so a flood of failing handshakes cannot
// fill the log; says how many it left out.
class Throttled {
 public:
  void log(corral::sdk::Logger& log, const std::string& line) {
    auto now = std::chrono::steady_clock::now();
    if (now - window_ > std::chrono::seconds(1)) {
      if (dropped_)
        log.info("(" + std::to_string(dropped_) + " more TLS handshake failures not logged)");
      window_ = now;
      count_ = 0;
      dropped_ = 0;
    }
    if (++count_ <= 5)
      log.info(line);
    else
      ++dropped_;
  }

 private:
  std::chrono::steady_clock::time_point window_{};
  int count_ = 0;
  uint64_t dropped_ = 0;
};

class TlsConnection;

class TlsTransport final : public corral::sdk::Transport {
 public:
  ~TlsTransport() override { alive_.end(); }

  Status init(corral::sdk::PluginHost& host) override;

  corral::sdk::Result<std::unique_ptr<corral::sdk::Listener>> listen(
      const corral::sdk::Endpoint& where, const corral::sdk::ListenOptions& lo,
      AcceptFn on_accept) override;

  void connect(const corral::sdk::Endpoint& where, int64_t timeout_ms,
               const corral::sdk::ConnectOptions& co, ConnectFn done) override;

  const Options& options() const { return opt_; }
  corral::sdk::PluginHost& host() { return *host_; }
  Throttled refusals;
  corral::sdk::Counter* failures = nullptr;

  // Connections whose other side showed a verified certificate, cut when a
  // revocation list read later names it. Returns why `conn` must not be
  // used (its certificate is revoked by lists read during its handshake),
  // or "".
  std::string track(StreamPurpose purpose, const std::shared_ptr<TlsConnection>& conn);

 private:
  void cut_revoked(StreamPurpose purpose, const Profile& p);
  void set_gauges(StreamPurpose purpose, const Profile& p);
  // The profile for `purpose`, its material loaded; null with last_error_ set.
  Profile* profile(StreamPurpose purpose);
  Status read_settings(const corral::sdk::ConfigTable& cfg, const std::string& sub, Settings& s);
  void schedule_reload();
  void reload();

  corral::sdk::PluginHost* host_ = nullptr;
  Options opt_;
  std::map<StreamPurpose, Profile> profiles_;
  std::unique_ptr<corral::sdk::Executor::Timer> reload_timer_;
  Status last_error_;
  struct Live {
    std::vector<std::weak_ptr<TlsConnection>> conns;
    size_t sweep_at = 64;
  };
  std::map<StreamPurpose, Live> live_;
  corral::common::Lifeline alive_;
};

}  // namespace corral::tls_plugin
