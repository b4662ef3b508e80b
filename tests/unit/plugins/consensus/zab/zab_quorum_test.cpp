// Quorum arithmetic, as tables: each row a membership, a set of servers or
// acknowledgements, and what a quorum makes of them.
#include <gtest/gtest.h>

#include <set>

#include "quorum.hpp"

using corral::sdk::ServerId;
using corral::sdk::Zxid;
using corral::zab::Quorum;
using corral::zab::reached_by;

namespace {
constexpr Zxid z(uint32_t epoch, uint32_t counter) {
  return corral::sdk::make_zxid(epoch, counter);
}
}  // namespace

TEST(ZabQuorum, ReachedBy) {
  struct Row {
    std::vector<Zxid> acks;
    size_t n;
    Zxid want;
  } rows[] = {
      {{}, 1, 0},
      {{5}, 1, 5},
      {{5}, 2, 0},
      {{1, 2, 3}, 2, 2},
      {{3, 1, 2}, 3, 1},
      {{7, 7, 1}, 2, 7},
      {{4, 9, 4, 1, 9}, 3, 4},
      {{1, 2}, 0, 0},
  };
  for (const auto& r : rows) EXPECT_EQ(reached_by(r.acks, r.n), r.want) << "n=" << r.n;
}

TEST(ZabQuorum, Majorities) {
  struct Row {
    std::vector<ServerId> voters;
    size_t want;
  } rows[] = {{{1}, 1},          {{1, 2}, 2},          {{1, 2, 3}, 2},
              {{1, 2, 3, 4}, 3}, {{1, 2, 3, 4, 5}, 3}, {{}, 1}};
  for (const auto& r : rows)
    EXPECT_EQ(Quorum(r.voters).majority(), r.want) << r.voters.size() << " voters";
}

TEST(ZabQuorum, VotersOfLeavesObserversOut) {
  std::vector<corral::sdk::PeerSpec> members(4);
  for (int i = 0; i < 4; ++i) members[i].id = i + 1;
  members[3].observer = true;
  EXPECT_EQ(Quorum::voters_of(members), (std::vector<ServerId>{1, 2, 3}));
  Quorum q(Quorum::voters_of(members));
  EXPECT_TRUE(q.is_voter(2));
  EXPECT_FALSE(q.is_voter(4));
}

TEST(ZabQuorum, Contains) {
  struct Row {
    const char* what;
    std::vector<ServerId> voters;
    Zxid change;
    std::vector<ServerId> next;
    std::set<ServerId> in;
    bool want;
  } rows[] = {
      {"2 of 3", {1, 2, 3}, 0, {}, {1, 2}, true},
      {"1 of 3", {1, 2, 3}, 0, {}, {3}, false},
      {"an observer does not count", {1, 2, 3}, 0, {}, {1, 4}, false},
      {"2 of 4 is no majority", {1, 2, 3, 4}, 0, {}, {1, 2}, false},
      {"3 of 5", {1, 2, 3, 4, 5}, 0, {}, {2, 4, 5}, true},
      {"growing 3 to 5: old majority only", {1, 2, 3}, z(1, 7), {1, 2, 3, 4, 5}, {1, 2}, false},
      {"growing 3 to 5: both majorities", {1, 2, 3}, z(1, 7), {1, 2, 3, 4, 5}, {1, 2, 4}, true},
      {"shrinking 5 to 3: new majority only", {1, 2, 3, 4, 5}, z(2, 1), {1, 2, 3}, {1, 2}, false},
      {"shrinking 5 to 3: both", {1, 2, 3, 4, 5}, z(2, 1), {1, 2, 3}, {1, 2, 5}, true},
      {"replacing all: disjoint sets need both", {1, 2, 3}, z(3, 1), {4, 5, 6}, {1, 2, 4, 5}, true},
      {"replacing all: one side short", {1, 2, 3}, z(3, 1), {4, 5, 6}, {1, 2, 3, 4}, false},
  };
  for (const auto& r : rows) {
    Quorum q(r.voters, r.change, r.next);
    EXPECT_EQ(q.contains([&](ServerId id) { return r.in.count(id) > 0; }), r.want) << r.what;
  }
}

TEST(ZabQuorum, CommitPoint) {
  using Ack = Quorum::Ack;
  struct Row {
    const char* what;
    std::vector<ServerId> voters;
    Zxid change;
    std::vector<ServerId> next;
    std::vector<Ack> acks;
    Zxid last_logged;
    Zxid want;
  } rows[] = {
      {"leader alone of 3", {1, 2, 3}, 0, {}, {{1, z(1, 5), true}}, z(1, 5), 0},
      {"leader and one follower",
       {1, 2, 3},
       0,
       {},
       {{1, z(1, 5), true}, {2, z(1, 3), true}},
       z(1, 5),
       z(1, 3)},
      {"the second highest of three",
       {1, 2, 3},
       0,
       {},
       {{1, z(1, 9), true}, {2, z(1, 4), true}, {3, z(1, 7), true}},
       z(1, 9),
       z(1, 7)},
      {"never past the leader's log",
       {1, 2, 3},
       0,
       {},
       {{1, z(1, 9), true}, {2, z(1, 9), true}},
       z(1, 8),
       z(1, 8)},
      {"an observer's ack does not count",
       {1, 2, 3},
       0,
       {},
       {{1, z(1, 9), true}, {4, z(1, 9), false}},
       z(1, 9),
       0},
      {"before a pending change: old voters suffice",
       {1, 2, 3},
       z(1, 10),
       {1, 2, 3, 4, 5},
       {{1, z(1, 12), true}, {2, z(1, 8), true}},
       z(1, 12),
       z(1, 8)},
      {"the change itself waits for the new voters",
       {1, 2, 3},
       z(1, 10),
       {1, 2, 3, 4, 5},
       {{1, z(1, 12), true}, {2, z(1, 12), true}},
       z(1, 12),
       z(1, 9)},
      {"new voters (observers today) carry it",
       {1, 2, 3},
       z(1, 10),
       {1, 2, 3, 4, 5},
       {{1, z(1, 12), true}, {2, z(1, 12), true}, {4, z(1, 11), false}},
       z(1, 12),
       z(1, 11)},
      {"the lower of both majorities",
       {1, 2, 3},
       z(1, 10),
       {3, 4, 5},
       {{1, z(1, 12), true}, {2, z(1, 12), true}, {4, z(1, 10), false}, {5, z(1, 11), false}},
       z(1, 12),
       z(1, 10)},
      {"a leader leaving counts only in the old set",
       {1, 2, 3},
       z(1, 10),
       {2, 3, 4},
       {{1, z(1, 12), true}, {2, z(1, 12), true}, {4, z(1, 8), false}},
       z(1, 12),
       z(1, 9)},
  };
  for (const auto& r : rows) {
    Quorum q(r.voters, r.change, r.next);
    EXPECT_EQ(q.commit_point(r.acks, r.last_logged), r.want) << r.what;
  }
}
