#include "quorum.hpp"

#include <algorithm>

namespace corral::zab {

using sdk::ServerId;
using sdk::Zxid;

Zxid reached_by(std::vector<Zxid> acks, size_t n) {
  if (n == 0 || acks.size() < n) return 0;
  std::nth_element(acks.begin(), acks.begin() + static_cast<long>(n - 1), acks.end(),
                   std::greater<Zxid>());
  return acks[n - 1];
}

Quorum::Quorum(std::vector<ServerId> voters, Zxid change_zxid,
               std::span<const ServerId> next_voters)
    : voters_(std::move(voters)), change_zxid_(change_zxid), next_(next_voters) {}

std::vector<ServerId> Quorum::voters_of(const std::vector<sdk::PeerSpec>& members) {
  std::vector<ServerId> out;
  out.reserve(members.size());
  for (const auto& m : members)
    if (!m.observer) out.push_back(m.id);
  return out;
}

bool Quorum::is_voter(ServerId id) const {
  return std::find(voters_.begin(), voters_.end(), id) != voters_.end();
}

bool Quorum::is_next_voter(ServerId id) const {
  return std::find(next_.begin(), next_.end(), id) != next_.end();
}

bool Quorum::contains(const std::function<bool(ServerId)>& in) const {
  size_t counted = 0;
  for (ServerId id : voters_)
    if (in(id)) ++counted;
  if (counted < majority()) return false;
  if (!changing()) return true;
  counted = 0;
  for (ServerId id : next_)
    if (in(id)) ++counted;
  return counted >= next_majority();
}

Zxid Quorum::commit_point(const std::vector<Ack>& acks, Zxid last_logged) const {
  std::vector<Zxid> now;
  for (const Ack& a : acks)
    if (a.voting) now.push_back(a.zxid);
  if (now.size() < majority()) return 0;
  Zxid candidate = std::min(reached_by(std::move(now), majority()), last_logged);
  if (!changing() || candidate < change_zxid_) return candidate;
  // The change, and what follows it, also need the voters it installs.
  std::vector<Zxid> next;
  for (const Ack& a : acks)
    if (is_next_voter(a.id)) next.push_back(a.zxid);
  Zxid reached = reached_by(std::move(next), next_majority());
  if (reached >= change_zxid_) return std::min(candidate, reached);
  return change_zxid_ - 1;
}

}  // namespace corral::zab
