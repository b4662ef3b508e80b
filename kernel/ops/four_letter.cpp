// Four-letter words: ZooKeeper's plain-text admin commands on the client port.
#include "ops/four_letter.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "ensemble/dynamic_config.hpp"
#include "server/version.hpp"
#include "tree/data_tree.hpp"
#include "watch/watch_manager.hpp"

namespace corral::kernel {

namespace {

constexpr const char* kWords[] = {"ruok", "srvr", "stat", "envi", "mntr", "conf", "isro", "srst",
                                  "cons", "crst", "wchs", "wchc", "wchp", "dirs", "dump", "hash"};

std::string zxid_hex(int64_t z) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(z));
  return buf;
}

int64_t open_fds() {
  int64_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
    n -= 3;  // ".", ".." and the directory itself
  }
  return n;
}

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

bool is_four_letter_word(std::string_view word) {
  return std::find(std::begin(kWords), std::end(kWords), word) != std::end(kWords);
}

bool four_letter_allowed(const Config& config, std::string_view word) {
  const auto& allowed = config.server.four_letter_words;
  return std::find(allowed.begin(), allowed.end(), "*") != allowed.end() ||
         std::find(allowed.begin(), allowed.end(), word) != allowed.end();
}

std::vector<std::pair<std::string, MonitorValue>> monitor_values(const ServerView& v) {
  const ServerStats& s = v.stats();
  struct rlimit rl {};
  getrlimit(RLIMIT_NOFILE, &rl);
  size_t ephemerals = 0;
  for (const auto& [id, sess] : v.tree().sessions()) ephemerals += sess.ephemerals.size();
  const int64_t outstanding = v.outstanding();
  double avg = s.latency_count ? static_cast<double>(s.latency_total_ms) / s.latency_count : 0.0;
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return MonitorValue{o.str(), true};
  };
  auto text = [](std::string v) { return MonitorValue{std::move(v), false}; };
  std::vector<std::pair<std::string, MonitorValue>> values = {
      {"version",
       text(std::string(kZooKeeperVersion) + ", built on " + __DATE__ + " " + __TIME__ + " UTC")},
      {"server_state", text(v.mode())},
      {"avg_latency", num(avg)},
      {"max_latency", num(static_cast<double>(s.latency_max_ms))},
      {"min_latency", num(static_cast<double>(std::max<int64_t>(0, s.latency_min_ms)))},
      {"packets_received", num(static_cast<double>(s.packets_received))},
      {"packets_sent", num(static_cast<double>(s.packets_sent))},
      {"num_alive_connections", num(static_cast<double>(v.connection_count()))},
      {"outstanding_requests", num(static_cast<double>(outstanding))},
      {"znode_count", num(static_cast<double>(v.tree().node_count()))},
      {"watch_count", num(static_cast<double>(v.watches().watch_count()))},
      {"ephemerals_count", num(static_cast<double>(ephemerals))},
      {"approximate_data_size", num(static_cast<double>(v.tree().approximate_data_size()))},
      {"open_file_descriptor_count", num(static_cast<double>(open_fds()))},
      {"max_file_descriptor_count", num(static_cast<double>(rl.rlim_cur))},
      {"global_sessions", num(static_cast<double>(v.tree().sessions().size()))},
      {"last_proposal_size", num(-1)},
      {"last_processed_zxid", num(static_cast<double>(v.last_zxid()))},
      {"data_dir_size", num(static_cast<double>(v.snapshot_bytes()))},
      {"log_dir_size", num(static_cast<double>(v.log_bytes()))},
  };
  if (!v.in_ensemble()) return values;
  // An ensemble member: its place in it, as ZooKeeper reports it, and the
  // epochs and election figures Zab keeps.
  sdk::ConsensusStatus cs = v.consensus_status();
  const char* phase = cs.role == sdk::Role::looking ? "looking" : "broadcast";
  values.push_back({"peer_state", text(v.mode() + " - " + phase)});
  size_t voters = 0;
  for (const auto& m : v.config().ensemble.members) voters += m.observer ? 0 : 1;
  values.push_back({"quorum_size", num(static_cast<double>(voters))});
  values.push_back({"leader_id", num(static_cast<double>(cs.leader))});
  values.push_back({"current_epoch", num(cs.current_epoch)});
  values.push_back({"accepted_epoch", num(cs.accepted_epoch)});
  values.push_back({"last_logged_zxid", num(static_cast<double>(cs.last_logged))});
  values.push_back({"last_committed_zxid", num(static_cast<double>(cs.last_committed))});
  values.push_back({"pending_proposals", num(static_cast<double>(cs.pending_proposals))});
  values.push_back({"elections", num(static_cast<double>(cs.elections))});
  values.push_back({"last_election_ms", num(static_cast<double>(cs.last_election_ms))});
  if (cs.role == sdk::Role::leading) {
    size_t synced_followers = 0, synced_observers = 0;
    for (const auto& l : cs.learners) {
      if (!l.synced) continue;
      (l.observer ? synced_observers : synced_followers)++;
    }
    values.push_back({"learners", num(static_cast<double>(cs.learners.size()))});
    values.push_back({"synced_followers", num(static_cast<double>(synced_followers))});
    values.push_back({"synced_non_voting_followers", num(0)});
    values.push_back({"synced_observers", num(static_cast<double>(synced_observers))});
    values.push_back(
        {"pending_syncs",
         num(static_cast<double>(cs.learners.size() - synced_followers - synced_observers))});
  }
  return values;
}

std::string four_letter_text(const ServerView& v, std::string_view word) {
  std::ostringstream o;
  // As ZooKeeper: without a leader, the words that describe a serving
  // server have nothing to describe.
  static const std::set<std::string_view> kNeedServing = {"srvr", "stat", "mntr", "cons",
                                                          "wchs", "wchc", "wchp", "dump",
                                                          "crst", "srst", "dirs", "hash"};
  if (!v.serving() && kNeedServing.count(word))
    return "This ZooKeeper instance is not currently serving requests\n";
  const ServerStats& s = v.stats();
  auto latency = [&](std::ostream& out) {
    double avg = s.latency_count ? static_cast<double>(s.latency_total_ms) / s.latency_count : 0.0;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld/%.4f/%lld",
                  static_cast<long long>(std::max<int64_t>(0, s.latency_min_ms)), avg,
                  static_cast<long long>(s.latency_max_ms));
    out << "Latency min/avg/max: " << buf << "\n";
  };
  const int64_t outstanding = v.outstanding();
  if (word == "ruok") return "imok";
  // As ZooKeeper's: "null" while this member serves no one (looking, in
  // read-only mode's grace period or without it).
  if (word == "isro") return v.serving() ? "rw" : v.read_only_mode() ? "ro" : "null";
  if (word == "cons") {
    for (const ConnectionView& c : v.connections()) {
      o << " /" << c.remote << "[1](queued=" << c.outstanding << ",recved=" << c.received
        << ",sent=" << c.sent;
      if (c.session_id != 0) o << ",sid=" << session_hex(c.session_id) << ",to=" << c.timeout_ms;
      o << ")\n";
    }
    o << "\n";
    return o.str();
  }
  if (word == "wchs") {
    WatchManager::Summary sum = v.watches().summary();
    o << sum.connections << " connections watching " << sum.paths << " paths\n";
    o << "Total watches:" << sum.watches << "\n";
    return o.str();
  }
  if (word == "wchc" || word == "wchp") {
    // By session (wchc) or by path (wchp), as ZooKeeper lists them.
    std::map<std::string, std::set<std::string>> groups;
    for (const auto& [session, path] : v.watches_by_session()) {
      std::string sid = session_hex(session);
      if (word == "wchc")
        groups[sid].insert(path);
      else
        groups[path].insert(sid);
    }
    for (const auto& [key, items] : groups) {
      o << key << "\n";
      for (const auto& item : items) o << "\t" << item << "\n";
    }
    o << "\n";
    return o.str();
  }
  if (word == "hash") {
    // ZooKeeper's: the tree digest after each recent zxid, oldest first.
    // Servers that applied the same entries print the same digest for a zxid.
    for (const auto& [zxid, digest] : v.digests())
      o << std::hex << zxid << std::dec << ": " << digest << "\n";
    return o.str();
  }
  if (word == "dirs") {
    o << "datadir_size: " << (v.snapshot_bytes()) << "\n";
    o << "logdir_size: " << (v.log_bytes()) << "\n";
    return o.str();
  }
  if (word == "dump") {
    o << "SessionTracker dump:\n";
    o << "Global Sessions(" << v.tree().sessions().size() << "):\n";
    for (const auto& [id, s] : v.tree().sessions())
      o << session_hex(id) << "\t" << s.timeout_ms << "ms\n";
    size_t with = 0;
    for (const auto& [id, s] : v.tree().sessions()) with += s.ephemerals.empty() ? 0 : 1;
    o << "ephemeral nodes dump:\nSessions with Ephemerals (" << with << "):\n";
    for (const auto& [id, s] : v.tree().sessions()) {
      if (s.ephemerals.empty()) continue;
      o << session_hex(id) << ":\n";
      for (const auto& path : s.ephemerals) o << "\t" << path << "\n";
    }
    return o.str();
  }
  if (word == "srvr" || word == "stat") {
    o << "Zookeeper version: " << kZooKeeperVersion << ", built on " << __DATE__ << " " << __TIME__
      << " UTC\n";
    if (word == "stat") {
      o << "Clients:\n";
      for (const ConnectionView& c : v.connections())
        o << " /" << c.remote << "[1](queued=" << c.outstanding << ",recved=" << c.received
          << ",sent=" << c.sent << ")\n";
      o << "\n";
    }
    latency(o);
    o << "Received: " << s.packets_received << "\n";
    o << "Sent: " << s.packets_sent << "\n";
    o << "Connections: " << v.connection_count() << "\n";
    o << "Outstanding: " << outstanding << "\n";
    o << "Zxid: " << zxid_hex(v.last_zxid()) << "\n";
    o << "Mode: " << v.mode() << "\n";
    o << "Node count: " << v.tree().node_count() << "\n";
    return o.str();
  }
  if (word == "envi") {
    o << "Environment:\n";
    o << "zookeeper.version=" << kZooKeeperVersion << ", built on " << __DATE__ << " " << __TIME__
      << " UTC\n";
    o << "host.name=" << host_name() << "\n";
    o << "corral.version=" << kCorralVersion << "\n";
    o << "os.name=Linux\n";
    o << "user.dir=" << std::filesystem::current_path().string() << "\n";
    o << "corral.data_dir=" << v.info().data_dir << "\n";
    o << "corral.plugins=transport:" << v.config().plugins.transport
      << ",consensus:" << v.config().plugins.consensus << ",storage:" << v.config().plugins.storage
      << "\n";
    return o.str();
  }
  if (word == "conf") {
    o << "clientPort=" << v.client_endpoint().port << "\n";
    o << "clientPortAddress=" << v.client_endpoint().host << "\n";
    o << "secureClientPort=-1\n";
    o << "dataDir=" << v.info().data_dir << "\n";
    o << "dataDirSize=" << (v.snapshot_bytes()) << "\n";
    o << "dataLogDir=" << v.info().data_dir << "\n";
    o << "dataLogSize=" << (v.log_bytes()) << "\n";
    o << "tickTime=" << v.config().server.tick_ms << "\n";
    o << "maxClientCnxns=" << v.config().server.max_client_cnxns << "\n";
    o << "minSessionTimeout=" << v.config().server.min_session_timeout() << "\n";
    o << "maxSessionTimeout=" << v.config().server.max_session_timeout() << "\n";
    o << "clientPortListenBacklog=-1\n";
    o << "serverId=" << v.config().server.id << "\n";
    if (const sdk::PeerSpec* me = v.config().ensemble.member(v.config().server.id)) {
      // As a ZooKeeper quorum peer adds: its ports, its type and the
      // membership with its version (what /zookeeper/config holds).
      o << "electionPort=" << me->election_port << "\n";
      o << "quorumPort=" << me->quorum_port << "\n";
      o << "peerType=" << (me->observer ? 1 : 0) << "\n";
      o << "membership: \n"
        << format_dynamic_config(v.config().ensemble.members, v.config_version()) << "\n";
    }
    return o.str();
  }
  // mntr
  for (const auto& [key, value] : monitor_values(v))
    o << "zk_" << key << "\t" << value.text << "\n";
  return o.str();
}

}  // namespace corral::kernel
