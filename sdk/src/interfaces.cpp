// Out-of-line destructors anchor each interface's vtable and type info in the
// SDK library, so that kernel and modules agree on one copy (dynamic_cast
// across the module boundary depends on it).
#include <boost/version.hpp>

#include "corral/sdk/consensus.hpp"
#include "corral/sdk/discovery.hpp"
#include "corral/sdk/election.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/peers.hpp"
#include "corral/sdk/plugin.hpp"
#include "corral/sdk/recipe.hpp"
#include "corral/sdk/storage.hpp"
#include "corral/sdk/transport.hpp"

namespace corral::sdk {

Executor::~Executor() = default;
Executor::Timer::~Timer() = default;
Clock::~Clock() = default;
Logger::~Logger() = default;
Counter::~Counter() = default;
Gauge::~Gauge() = default;
Histogram::~Histogram() = default;
Metrics::~Metrics() = default;
ConfigTable::~ConfigTable() = default;
PluginHost::~PluginHost() = default;
Plugin::~Plugin() = default;
ConnectionHandler::~ConnectionHandler() = default;
Connection::~Connection() = default;
ConnectionSecurity Connection::security() const { return {}; }
Listener::~Listener() = default;
SnapshotSink::~SnapshotSink() = default;
SnapshotReader::~SnapshotReader() = default;
SnapshotChildWriter::~SnapshotChildWriter() = default;
PeerListener::~PeerListener() = default;
PeerNetwork::~PeerNetwork() = default;
ElectionHost::~ElectionHost() = default;
ConsensusHost::~ConsensusHost() = default;
void ConsensusHost::prepare(LogEntry&) {}
std::optional<std::vector<PeerSpec>> ConsensusHost::membership_in(const LogEntry&) {
  return std::nullopt;
}
DiscoveryHost::~DiscoveryHost() = default;
TreeSession::~TreeSession() = default;
RecipeHost::~RecipeHost() = default;
HttpResponder::~HttpResponder() = default;
HttpRouter::~HttpRouter() = default;
Transport::~Transport() = default;
Storage::~Storage() = default;
Consensus::~Consensus() = default;
void Consensus::transfer_leadership(ServerId, bool, std::function<void(const Status&)> done) {
  if (done) done(Status(Errc::incompatible, "this consensus module cannot hand over leadership"));
}
Election::~Election() = default;
ServerId Election::fixed_leader() const { return 0; }
Discovery::~Discovery() = default;
Recipe::~Recipe() = default;

const char* build_id() noexcept { return CORRAL_BUILD_ID; }

const char* plugin_kind_name(PluginKind kind) noexcept {
  switch (kind) {
    case PluginKind::transport:
      return "transport";
    case PluginKind::consensus:
      return "consensus";
    case PluginKind::election:
      return "election";
    case PluginKind::storage:
      return "storage";
    case PluginKind::discovery:
      return "discovery";
    case PluginKind::recipe:
      return "recipe";
  }
  return "unknown";
}

bool parse_plugin_kind(std::string_view text, PluginKind& out) noexcept {
  for (PluginKind k : {PluginKind::transport, PluginKind::consensus, PluginKind::election,
                       PluginKind::storage, PluginKind::discovery, PluginKind::recipe}) {
    if (text == plugin_kind_name(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

const char* role_name(Role role) noexcept {
  switch (role) {
    case Role::looking:
      return "looking";
    case Role::standalone:
      return "standalone";
    case Role::leading:
      return "leader";
    case Role::following:
      return "follower";
    case Role::observing:
      return "observer";
  }
  return "unknown";
}

const char* log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "TRACE";
    case LogLevel::debug:
      return "DEBUG";
    case LogLevel::info:
      return "INFO";
    case LogLevel::warn:
      return "WARN";
    case LogLevel::error:
      return "ERROR";
  }
  return "?";
}

}  // namespace corral::sdk
