#include "ensemble/reconfig.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "ensemble/dynamic_config.hpp"

namespace corral::kernel {

namespace {

std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string item(list.substr(start, end - start));
    item.erase(0, item.find_first_not_of(" \t\r\n"));
    item.erase(item.find_last_not_of(" \t\r\n") + 1);
    if (!item.empty()) out.push_back(std::move(item));
    start = end + 1;
  }
  return out;
}

std::string hex(int64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

ReconfigPlan plan_reconfig(const proto::ReconfigRequest& req, const ReconfigState& s) {
  using proto::Err;
  ReconfigPlan plan;
  auto refuse = [&](Err err, std::string why) {
    plan.err = err;
    plan.why = std::move(why);
    plan.next.clear();
    return plan;
  };
  if (!s.enabled)
    return refuse(Err::reconfig_disabled, "reconfig is disabled (ensemble.reconfig_enabled)");
  if (!s.session_alive) return refuse(Err::session_expired, "the session expired");
  if (s.pending) return refuse(Err::reconfig_in_progress, "another reconfig is in progress");
  if (req.cur_config_id != -1 && static_cast<sdk::Zxid>(req.cur_config_id) != s.version)
    return refuse(Err::bad_version, "asked from version " + hex(req.cur_config_id) +
                                        ", the membership is at " +
                                        hex(static_cast<int64_t>(s.version)));
  std::vector<sdk::PeerSpec> next;
  std::string why;
  if (!req.new_members_null) {
    sdk::Zxid ignored = 0;
    if (!parse_dynamic_config(req.new_members, next, ignored, why))
      return refuse(Err::bad_arguments, why);
  } else {
    next = s.members;
    if (!req.leaving_null) {
      for (const std::string& item : split_list(req.leaving)) {
        sdk::ServerId id = 0;
        auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        if (ec != std::errc() || p != item.data() + item.size())
          return refuse(Err::bad_arguments, "'" + item + "' is not a server id");
        std::erase_if(next, [&](const auto& m) { return m.id == id; });
      }
    }
    if (!req.joining_null) {
      for (const std::string& item : split_list(req.joining)) {
        size_t eq = item.find('=');
        if (eq == std::string::npos || item.find('=', eq + 1) != std::string::npos)
          return refuse(
              Err::bad_arguments,
              "'" + item +
                  "' is not server.N=host:quorumPort:electionPort[:type];[clientHost:]clientPort");
        std::string key = item.substr(0, eq);
        std::string digits = key.substr(key.rfind('.') + 1);
        sdk::ServerId id = 0;
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
        if (ec != std::errc() || p != digits.data() + digits.size() || id <= 0)
          return refuse(Err::bad_arguments, "'" + key + "' needs a positive server id");
        sdk::PeerSpec m;
        if (!parse_member(id, item.substr(eq + 1), m, why))
          return refuse(Err::bad_arguments, key + ": expected " + why);
        if (!m.client_port)
          return refuse(Err::bad_arguments,
                        key + ": a joining server needs its client port (after ';')");
        for (const auto& o : next) {
          if (o.id == id) continue;
          auto clash = [&](uint16_t a, uint16_t b) { return a && a == b && o.host == m.host; };
          if (clash(o.quorum_port, m.quorum_port) || clash(o.election_port, m.election_port) ||
              clash(o.quorum_port, m.election_port) || clash(o.election_port, m.quorum_port))
            return refuse(Err::bad_arguments,
                          key + " uses an address of server." + std::to_string(o.id));
        }
        std::erase_if(next, [&](const auto& o) { return o.id == id; });
        next.push_back(std::move(m));
      }
    }
    std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  }
  std::vector<sdk::ServerId> voters;
  for (const auto& m : next)
    if (!m.observer) voters.push_back(m.id);
  // One participant is enough (ZooKeeper's rule with standaloneEnabled=false):
  // an ensemble of one is still an ensemble, and it grows again by reconfig.
  if (voters.empty())
    return refuse(Err::bad_arguments, "the new membership must have at least one participant");
  // A quorum of the new voters must already be synced with this leader: its
  // followers, and its observers, which acknowledge proposals from a change
  // that makes them voters on (so an ensemble of one grows: add a server as
  // an observer, start it, then make it a participant).
  auto votes = [&](sdk::ServerId id) {
    return std::find(voters.begin(), voters.end(), id) != voters.end();
  };
  size_t synced = votes(s.self) ? 1 : 0;
  for (sdk::ServerId id : s.synced_learners)
    if (votes(id)) ++synced;
  if (synced < voters.size() / 2 + 1)
    return refuse(Err::new_config_no_quorum, std::to_string(synced) + " of the " +
                                                 std::to_string(voters.size()) +
                                                 " new voters follow this leader; a quorum must");
  if (!s.may_write_config) return refuse(Err::no_auth, "no permission to write /zookeeper/config");
  plan.next = std::move(next);
  return plan;
}

}  // namespace corral::kernel
