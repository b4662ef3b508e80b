#include "tree/data_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "corral/common/msgpack.hpp"

using namespace corral::kernel;
using corral::proto::CreateMode;
using corral::proto::open_acl_unsafe;

namespace {

std::string serialized(const DataTree& t) {
  std::string out;
  t.serialize([&](std::string_view chunk) { out += chunk; });
  return out;
}

// Every node with its data, Stat, ACL and children, one line each in path
// order: what two trees must agree on to be equal. (Snapshots list children
// in the order of each child set, which equal trees need not share.)
std::string listing(const DataTree& t) {
  std::vector<std::string> lines;
  t.walk([&](const Node& n) {
    auto s = t.stat(n);
    std::vector<std::string> kids = t.children(n);
    std::sort(kids.begin(), kids.end());
    std::string line =
        std::string(n.path()) + " data=" + (n.data_null() ? "null" : std::string(n.data()));
    for (int64_t v :
         {s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, int64_t{s.version}, int64_t{s.cversion},
          int64_t{s.aversion}, s.ephemeral_owner, int64_t{n.acl}, int64_t{s.num_children}})
      line += " " + std::to_string(v);
    for (const std::string& k : kids) line += " " + k;
    lines.push_back(line);
  });
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

struct TreeTest : ::testing::Test {
  DataTree tree;
  int64_t zxid = 0;
  Ids ids;  // the caller's identities
  Err create(const std::string& path, CreateMode mode = CreateMode::persistent, int64_t owner = 0,
             std::string* name = nullptr) {
    Journal j;
    ++zxid;
    return tree.create(path, "d", open_acl_unsafe(), mode, owner, zxid, 1000 + zxid, ids, name,
                       nullptr, j);
  }
  Err remove(const std::string& path, int32_t version = -1) {
    Journal j;
    return tree.remove(path, version, ++zxid, ids, j);
  }
};

}  // namespace

TEST_F(TreeTest, StartsWithTheZooKeeperNodes) {
  EXPECT_NE(tree.find("/"), nullptr);
  EXPECT_NE(tree.find(""), nullptr);  // ZooKeeper answers to "" as the root
  EXPECT_NE(tree.find("/zookeeper/quota"), nullptr);
  EXPECT_NE(tree.find("/zookeeper/config"), nullptr);
  EXPECT_EQ(tree.find("/")->num_children(), 1);
}

TEST_F(TreeTest, CreateSetsStatAndParentBookkeeping) {
  ASSERT_EQ(create("/a"), Err::ok);
  ASSERT_EQ(create("/a/b"), Err::ok);
  const Node* a = tree.find("/a");
  const Node* b = tree.find("/a/b");
  auto sa = tree.stat(*a), sb = tree.stat(*b);
  EXPECT_EQ(sb.czxid, 2);
  EXPECT_EQ(sb.mzxid, 2);
  EXPECT_EQ(sb.pzxid, 2);
  EXPECT_EQ(sb.ctime, 1002);
  EXPECT_EQ(sb.data_length, 1);
  EXPECT_EQ(sa.cversion, 1);
  EXPECT_EQ(sa.pzxid, 2);
  EXPECT_EQ(sa.mzxid, 1);  // children do not touch the parent's mzxid
  EXPECT_EQ(sa.num_children, 1);
}

TEST_F(TreeTest, DeleteCountsInCversionButNotInSequenceNumbers) {
  // The sequence observed on Apache ZooKeeper 3.8: cversion counts creates
  // and deletes, the sequential suffix counts creates only.
  ASSERT_EQ(create("/p"), Err::ok);
  std::string s0, s2, s3;
  ASSERT_EQ(create("/p/s-", CreateMode::persistent_sequential, 0, &s0), Err::ok);
  ASSERT_EQ(create("/p/plain"), Err::ok);
  ASSERT_EQ(create("/p/s-", CreateMode::persistent_sequential, 0, &s2), Err::ok);
  EXPECT_EQ(s0, "/p/s-0000000000");
  EXPECT_EQ(s2, "/p/s-0000000002");
  ASSERT_EQ(remove("/p/plain"), Err::ok);
  ASSERT_EQ(remove(s0), Err::ok);
  auto st = tree.stat(*tree.find("/p"));
  EXPECT_EQ(st.cversion, 5);
  EXPECT_EQ(st.pzxid, zxid);
  ASSERT_EQ(create("/p/s-", CreateMode::persistent_sequential, 0, &s3), Err::ok);
  EXPECT_EQ(s3, "/p/s-0000000003");
}

TEST_F(TreeTest, ErrorsInZooKeepersOrder) {
  ASSERT_EQ(create("/a"), Err::ok);
  EXPECT_EQ(create("/a"), Err::node_exists);
  EXPECT_EQ(create("/missing/x"), Err::no_node);
  EXPECT_EQ(create("relative"), Err::bad_arguments);
  EXPECT_EQ(create("/a/"), Err::bad_arguments);
  EXPECT_EQ(create("/a/./b"), Err::no_node);  // the parent is looked up first
  EXPECT_EQ(create("/"), Err::node_exists);
  EXPECT_EQ(remove("/"), Err::bad_arguments);
  EXPECT_EQ(remove("/a/"), Err::no_node);
  EXPECT_EQ(remove("/nope"), Err::no_node);
  ASSERT_EQ(create("/a/b"), Err::ok);
  EXPECT_EQ(remove("/a"), Err::not_empty);
  EXPECT_EQ(remove("/a/b", 3), Err::bad_version);
  Journal j;
  EXPECT_EQ(tree.set_data("/a", "x", 7, ++zxid, 0, ids, nullptr, j), Err::bad_version);
  EXPECT_EQ(tree.set_data("/a/", "x", -1, ++zxid, 0, ids, nullptr, j), Err::bad_arguments);
  EXPECT_EQ(tree.check("/a", 0, ids), Err::ok);
  EXPECT_EQ(tree.check("/a", 1, ids), Err::bad_version);
  Journal k;
  EXPECT_EQ(
      tree.create("/a/c", "", {}, CreateMode::persistent, 0, ++zxid, 0, ids, nullptr, nullptr, k),
      Err::invalid_acl);
}

TEST_F(TreeTest, EphemeralsBelongToTheirSessionAndHaveNoChildren) {
  tree.add_session(77, 4000, std::string(16, 'x'));
  ASSERT_EQ(create("/e", CreateMode::ephemeral, 77), Err::ok);
  EXPECT_EQ(tree.stat(*tree.find("/e")).ephemeral_owner, 77);
  EXPECT_EQ(create("/e/child"), Err::no_children_for_ephemerals);
  EXPECT_EQ(tree.session(77)->ephemerals.count("/e"), 1u);
  Journal j;
  tree.close_session(77, ++zxid, j);
  EXPECT_EQ(tree.find("/e"), nullptr);
  EXPECT_EQ(tree.session(77), nullptr);
  ASSERT_EQ(j.changes.size(), 2u);
  EXPECT_EQ(j.changes[0].kind, Change::deleted);
  EXPECT_EQ(j.changes[1].kind, Change::children_changed);
  EXPECT_EQ(j.changes[1].path, "/");
}

TEST_F(TreeTest, RollbackRestoresExactlyTheTreeBefore) {
  tree.add_session(5, 4000, "pw");
  ASSERT_EQ(create("/a"), Err::ok);
  ASSERT_EQ(create("/a/gone"), Err::ok);
  ASSERT_EQ(create("/a/eph", CreateMode::ephemeral, 5), Err::ok);
  std::string before = listing(tree);
  uint64_t digest_before = tree.digest();
  int64_t size_before = tree.approximate_data_size();

  Journal j(/*record_undo=*/true);
  ASSERT_EQ(tree.create("/a/new", "n", open_acl_unsafe(), CreateMode::persistent_sequential, 0,
                        ++zxid, 1, ids, nullptr, nullptr, j),
            Err::ok);
  ASSERT_EQ(tree.set_data("/a", "changed", -1, ++zxid, 2, ids, nullptr, j), Err::ok);
  ASSERT_EQ(tree.remove("/a/gone", -1, ++zxid, ids, j), Err::ok);
  ASSERT_EQ(tree.remove("/a/eph", -1, ++zxid, ids, j), Err::ok);
  tree.rollback(j);

  EXPECT_EQ(listing(tree), before);
  EXPECT_EQ(tree.digest(), digest_before);
  EXPECT_EQ(tree.approximate_data_size(), size_before);
  EXPECT_EQ(tree.session(5)->ephemerals.count("/a/eph"), 1u);
  EXPECT_TRUE(j.changes.empty());
}

TEST_F(TreeTest, ALargeSnapshotRoundTripsWithEveryChildAndItsData) {
  // Enough nodes that loading hands them over in many batches.
  Journal j;
  for (int p = 0; p < 3; ++p) {
    std::string parent = "/p" + std::to_string(p);
    ASSERT_EQ(create(parent), Err::ok);
    for (int c = 0; c < 12000; ++c)
      ASSERT_EQ(tree.create(parent + "/c" + std::to_string(c),
                            "data-" + std::to_string(p * 100000 + c), open_acl_unsafe(),
                            CreateMode::persistent, 0, ++zxid, 0, ids, nullptr, nullptr, j),
                Err::ok);
  }
  std::string bytes = serialized(tree);
  auto back = DataTree::deserialize(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->node_count(), tree.node_count());
  EXPECT_EQ(back->digest(), tree.digest());
  EXPECT_EQ(back->approximate_data_size(), tree.approximate_data_size());
  for (int p = 0; p < 3; ++p) {
    const Node* n = back->find("/p" + std::to_string(p));
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->num_children(), 12000);
    EXPECT_EQ(back->find("/p" + std::to_string(p) + "/c11999")->data(),
              "data-" + std::to_string(p * 100000 + 11999));
  }
  EXPECT_EQ(listing(back.value()), listing(tree));
}

// A snapshot large enough that its load faults memory in on a second thread
// (SlabArena::FillAhead, from 16 MiB) gives back the same tree.
TEST_F(TreeTest, ALargeSnapshotRoundTrips) {
  ASSERT_EQ(create("/big"), Err::ok);
  const std::string data(200, 'd');
  Journal j;
  for (int i = 0; i < 100000; ++i) {
    const std::string path = "/big/n" + std::to_string(i);
    ASSERT_EQ(tree.create(path, data.substr(0, 100 + i % 100), open_acl_unsafe(),
                          CreateMode::persistent, 0, ++zxid, 0, ids, nullptr, nullptr, j),
              Err::ok);
    j.changes.clear();
  }
  const std::string bytes = serialized(tree);
  ASSERT_GE(bytes.size(), size_t{16} << 20);
  auto back = DataTree::deserialize(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->node_count(), tree.node_count());
  EXPECT_EQ(back->digest(), tree.digest());
  EXPECT_EQ(back->approximate_data_size(), tree.approximate_data_size());
  const Node* n = back->find("/big/n99998");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->data(), data.substr(0, 100 + 99998 % 100));
}

TEST_F(TreeTest, SnapshotRoundTrips) {
  tree.add_session(9, 6000, std::string("\0\1\2", 3));
  ASSERT_EQ(create("/x"), Err::ok);
  ASSERT_EQ(create("/x/y", CreateMode::ephemeral, 9), Err::ok);
  ASSERT_EQ(create("/x/z"), Err::ok);
  Journal j;
  ASSERT_EQ(tree.create("/x/null", "", open_acl_unsafe(), CreateMode::persistent, 0, ++zxid, 0, ids,
                        nullptr, nullptr, j, /*data_null=*/true),
            Err::ok);
  // Stat fields kept in a child set's block: an ephemeral node's owner
  // after a setACL, and the pzxid and cversion of a node whose children
  // are gone.
  ASSERT_EQ(tree.set_acl("/x/y", open_acl_unsafe(), 0, ids, nullptr), Err::ok);
  ASSERT_EQ(create("/x/z/gone"), Err::ok);
  ASSERT_EQ(remove("/x/z/gone"), Err::ok);
  const corral::proto::Stat y = tree.stat(*tree.find("/x/y")), z = tree.stat(*tree.find("/x/z"));
  EXPECT_EQ(y.ephemeral_owner, 9);
  EXPECT_EQ(y.aversion, 1);
  EXPECT_EQ(z.cversion, 2);
  EXPECT_EQ(z.pzxid, zxid);
  EXPECT_NE(z.pzxid, z.czxid);
  std::string bytes = serialized(tree);
  auto back = DataTree::deserialize(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->node_count(), tree.node_count());
  EXPECT_EQ(back->session(9)->password, std::string("\0\1\2", 3));
  EXPECT_EQ(back->session(9)->ephemerals.count("/x/y"), 1u);
  EXPECT_EQ(back->stat(*back->find("/x")), tree.stat(*tree.find("/x")));
  EXPECT_EQ(back->stat(*back->find("/x/y")), y);
  EXPECT_EQ(back->stat(*back->find("/x/z")), z);
  EXPECT_EQ(back->approximate_data_size(), tree.approximate_data_size());
  EXPECT_TRUE(back->find("/x/null")->data_null());
  EXPECT_FALSE(back->find("/x/z")->data_null());
  EXPECT_EQ(listing(back.value()), listing(tree));
}

TEST_F(TreeTest, CorruptSnapshotIsRefusedWithItsOffset) {
  ASSERT_EQ(create("/x"), Err::ok);
  std::string bytes = serialized(tree);
  // Every truncation is refused, never half-loaded.
  for (size_t n = 0; n < bytes.size(); n += 7) {
    auto r = DataTree::deserialize(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r) << "accepted a snapshot cut at " << n;
    EXPECT_EQ(r.status().code(), corral::sdk::Errc::corrupt);
    EXPECT_NE(r.status().message().find("at byte"), std::string::npos);
  }
  auto r = DataTree::deserialize(bytes + "junk");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("trailing bytes"), std::string::npos);
}

// Records that contradict the tree's shape: a node twice, a node whose
// parent never came, a path that ends in a slash.
TEST_F(TreeTest, SnapshotsWithImpossibleTreesAreRefused) {
  for (int i = 0; i < 20; ++i) ASSERT_EQ(create("/n" + std::to_string(i)), Err::ok);
  ASSERT_EQ(create("/a"), Err::ok);
  ASSERT_EQ(create("/b"), Err::ok);
  ASSERT_EQ(create("/a/c"), Err::ok);
  const std::string bytes = serialized(tree);
  auto refused = [&](const std::string& from, const std::string& to, const std::string& why) {
    std::string bad = bytes;
    size_t at = bad.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    bad.replace(at, from.size(), to);
    auto r = DataTree::deserialize(bad);
    ASSERT_FALSE(r) << from << " -> " << to;
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("at byte"), std::string::npos) << r.status().message();
  };
  refused(std::string("\xa2/b", 3), std::string("\xa2/a", 3), "node /a appears twice");
  refused(std::string("\xa3/n7", 4), std::string("\xa3/n3", 4), "node /n3 appears twice");
  refused(std::string("\xa4/a/c", 5), std::string("\xa4/q/c", 5), "node /q/c has no parent");
  refused(std::string("\xa4/a/c", 5), std::string("\xa4/a/c", 5).substr(0, 4) + "/",
          "malformed path");
  refused(std::string("\xa4/a/c", 5), std::string("\xa4//c", 5), "malformed path");
  // Under a node whose record claims no children: refused where /b comes
  // first, without a parent where it comes after.
  refused(std::string("\xa4/a/c", 5), std::string("\xa4/b/c", 5),
          bytes.find(std::string("\xa2/b", 3)) < bytes.find(std::string("\xa4/a/c", 5))
              ? "node /b/c is under /b, whose record claims no children"
              : "node /b/c has no parent");
}

// A small file whose counts promise more than it holds must not make the
// loader reserve memory for what is not there.
TEST_F(TreeTest, SnapshotCountsAreCheckedAgainstTheBytesPresent) {
  ASSERT_EQ(create("/a"), Err::ok);
  ASSERT_EQ(create("/a/b"), Err::ok);
  const std::string bytes = serialized(tree);
  // The header's node count, made huge (a uint32 msgpack integer).
  corral::common::MsgpackReader r(bytes);
  r.array();
  r.bytes();
  r.integer();
  r.integer();
  r.integer();
  size_t count_at = r.position();
  const int64_t node_count =
      corral::common::MsgpackReader(std::string_view(bytes).substr(count_at)).integer();
  ASSERT_GT(node_count, 3);
  ASSERT_LT(node_count, 0x7f);
  std::string huge = bytes.substr(0, count_at) + std::string("\xce\x7f\xff\xff\xff", 5);
  corral::common::MsgpackReader rest(std::string_view(bytes).substr(count_at));
  rest.integer();
  huge += bytes.substr(count_at + rest.position());
  auto r1 = DataTree::deserialize(huge);
  ASSERT_FALSE(r1);
  EXPECT_NE(r1.status().message().find("counts larger than the snapshot could hold"),
            std::string::npos)
      << r1.status().message();
  // A node claiming as many children as there are records, twice over.
  std::string many_children = bytes;
  size_t a = many_children.find(std::string("\xa2/a", 3));
  ASSERT_NE(a, std::string::npos);
  // Its children count, the last integer of its 13-field record: 1 -> as
  // many as there are records besides the root (which claims its own).
  corral::common::MsgpackReader rec(std::string_view(many_children).substr(a));
  rec.bytes();
  if (!rec.nil()) rec.bytes();
  for (int k = 0; k < 10; ++k) rec.integer();
  size_t children_at = a + rec.position();
  ASSERT_EQ(many_children[children_at], '\x01');
  many_children[children_at] = static_cast<char>(node_count - 1);
  auto r2 = DataTree::deserialize(many_children);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.status().message().find("more than the snapshot's records hold"), std::string::npos)
      << r2.status().message();
}

TEST_F(TreeTest, AclsAreCheckedInZooKeepersOrder) {
  using corral::proto::Acl;
  using corral::proto::AclList;
  namespace perm = corral::proto::perm;
  std::string alice = digest_of("alice:secret");
  Ids as_alice = {{"ip", "127.0.0.1"}, {"digest", alice}};
  Ids as_bob = {{"ip", "127.0.0.1"}, {"digest", digest_of("bob:pw")}};
  Ids as_super = {{"super", ""}};
  Journal j;
  // "auth" expands to the caller's digest identities; without one it is invalid.
  EXPECT_EQ(tree.create("/p", "", {Acl{perm::all, {"auth", ""}}}, CreateMode::persistent, 0, ++zxid,
                        0, {}, nullptr, nullptr, j),
            Err::invalid_acl);
  ASSERT_EQ(tree.create("/p", "", {Acl{perm::read | perm::create, {"auth", ""}}},
                        CreateMode::persistent, 0, ++zxid, 0, as_alice, nullptr, nullptr, j),
            Err::ok);
  EXPECT_EQ(tree.acl(*tree.find("/p")),
            (AclList{Acl{perm::read | perm::create, {"digest", alice}}}));
  // INVALIDACL is reported before NONODE, NOAUTH after it.
  EXPECT_EQ(tree.create("/missing/x", "", {Acl{perm::all, {"world", "someone"}}},
                        CreateMode::persistent, 0, ++zxid, 0, as_bob, nullptr, nullptr, j),
            Err::invalid_acl);
  EXPECT_EQ(tree.create("/p/x", "", open_acl_unsafe(), CreateMode::persistent, 0, ++zxid, 0, as_bob,
                        nullptr, nullptr, j),
            Err::no_auth);
  ASSERT_EQ(tree.create("/p/x", "", open_acl_unsafe(), CreateMode::persistent, 0, ++zxid, 0,
                        as_alice, nullptr, nullptr, j),
            Err::ok);
  // Alice may create under /p but not delete from it, nor write it; super may.
  EXPECT_EQ(tree.remove("/p/x", -1, ++zxid, as_alice, j), Err::no_auth);
  EXPECT_EQ(tree.set_data("/p", "v", -1, ++zxid, 0, as_alice, nullptr, j), Err::no_auth);
  EXPECT_EQ(tree.set_data("/p", "v", -1, ++zxid, 0, as_super, nullptr, j), Err::ok);
  EXPECT_EQ(tree.check("/p", -1, as_bob), Err::no_auth);
  // setACL needs ADMIN and checks aversion.
  EXPECT_EQ(tree.set_acl("/p", open_acl_unsafe(), -1, as_alice, nullptr), Err::no_auth);
  corral::proto::Stat st;
  EXPECT_EQ(tree.set_acl("/p", open_acl_unsafe(), 3, as_super, &st), Err::bad_version);
  EXPECT_EQ(tree.set_acl("/p", open_acl_unsafe(), 0, as_super, &st), Err::ok);
  EXPECT_EQ(st.aversion, 1);
  EXPECT_EQ(tree.remove("/p/x", -1, ++zxid, as_bob, j), Err::ok);
  // /zookeeper/config is read-only for everyone but the superuser.
  EXPECT_EQ(tree.set_data("/zookeeper/config", "x", -1, ++zxid, 0, as_alice, nullptr, j),
            Err::no_auth);
}

TEST(Auth, DigestsIpsAndMasks) {
  // ZooKeeper's DigestAuthenticationProvider.generateDigest("super:test").
  EXPECT_EQ(digest_of("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
  EXPECT_TRUE(ip_matches("10.0.0.0/8", "10.2.3.4"));
  EXPECT_FALSE(ip_matches("10.0.0.0/8", "11.2.3.4"));
  EXPECT_TRUE(ip_matches("127.0.0.1", "127.0.0.1"));
  EXPECT_TRUE(ip_matches("fe80::/10", "fe80::1"));
  EXPECT_FALSE(ip_matches("fe80::/10", "127.0.0.1"));
  EXPECT_FALSE(valid_ip_spec("10.0.0.0/33"));
  auto masked = masked_acl({{1, {"digest", "alice:abc="}}, {31, {"world", "anyone"}}});
  EXPECT_EQ(masked[0].id.id, "alice:x");
  EXPECT_EQ(masked[1].id.id, "anyone");
}

namespace {
struct QuotaTest : TreeTest {
  Err set(const std::string& path, const std::string& data) {
    Journal j;
    ++zxid;
    return tree.set_data(path, data, -1, zxid, 1000 + zxid, ids, nullptr, j);
  }
  Err make(const std::string& path, const std::string& data) {
    Journal j;
    ++zxid;
    return tree.create(path, data, open_acl_unsafe(), CreateMode::persistent, 0, zxid, 1000 + zxid,
                       ids, nullptr, nullptr, j);
  }
  std::string stats(const std::string& target) {
    return std::string(tree.find("/zookeeper/quota" + target + "/zookeeper_stats")->data());
  }
  // What zkCli's setquota writes.
  void set_quota(const std::string& target, const std::string& limits) {
    std::string at = "/zookeeper/quota";
    for (size_t i = 1; i <= target.size(); ++i)
      if (i == target.size() || target[i] == '/') make(at + target.substr(0, i), "");
    ASSERT_EQ(make("/zookeeper/quota" + target + "/zookeeper_limits", limits), Err::ok);
    ASSERT_EQ(make("/zookeeper/quota" + target + "/zookeeper_stats", "count=0,bytes=0"), Err::ok);
  }
};
}  // namespace

TEST_F(QuotaTest, StatsFollowEveryChangeBelowTheQuota) {
  ASSERT_EQ(make("/q", "abc"), Err::ok);
  ASSERT_EQ(make("/q/a", "12345"), Err::ok);
  set_quota("/q", "count=10,bytes=-1");
  // Counted when the stats node appears: /q and /q/a, 3 + 5 bytes.
  EXPECT_EQ(stats("/q"), "count=2,bytes=8");
  ASSERT_EQ(make("/q/a/b", "xy"), Err::ok);
  EXPECT_EQ(stats("/q"), "count=3,bytes=10");
  ASSERT_EQ(set("/q/a", "1"), Err::ok);
  EXPECT_EQ(stats("/q"), "count=3,bytes=6");
  ASSERT_EQ(remove("/q/a/b"), Err::ok);
  EXPECT_EQ(stats("/q"), "count=2,bytes=4");
  ASSERT_EQ(make("/other", "zzzz"), Err::ok);  // outside the quota
  EXPECT_EQ(stats("/q"), "count=2,bytes=4");
  // A nested quota takes over its subtree (the longest prefix wins).
  ASSERT_EQ(make("/q/a/deep", ""), Err::ok);
  set_quota("/q/a", "count=-1,bytes=100");
  EXPECT_EQ(stats("/q/a"), "count=2,bytes=1");
  ASSERT_EQ(make("/q/a/deep/x", "123"), Err::ok);
  EXPECT_EQ(stats("/q/a"), "count=3,bytes=4");
  EXPECT_EQ(stats("/q"), "count=3,bytes=4");  // not counted twice
  // delquota: the limits node goes and the path is no longer under quota.
  ASSERT_EQ(remove("/zookeeper/quota/q/a/zookeeper_limits"), Err::ok);
  EXPECT_EQ(tree.quota_paths().count("/q/a"), 0u);
}

TEST_F(QuotaTest, HardLimitsAreEnforcedOnlyWhenAskedAndSoftLimitsNever) {
  ASSERT_EQ(make("/h", ""), Err::ok);
  // As zkCli 3.8 writes it (setquota -N 3 -B 10).
  set_quota("/h", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3");
  ASSERT_EQ(make("/h/1", "12345"), Err::ok);
  ASSERT_EQ(make("/h/2", ""), Err::ok);
  EXPECT_EQ(make("/h/3", ""), Err::ok);  // not enforced: only counted
  EXPECT_EQ(stats("/h"), "count=4,bytes=5");
  ASSERT_EQ(remove("/h/3"), Err::ok);
  tree.set_enforce_quota(true);
  EXPECT_EQ(make("/h/3", ""), Err::quota_exceeded);
  EXPECT_EQ(set("/h/1", "1234567890x"), Err::quota_exceeded);
  EXPECT_EQ(set("/h/1", "1234567890"), Err::ok);  // exactly at the limit
  EXPECT_EQ(stats("/h"), "count=3,bytes=10");
  ASSERT_EQ(make("/s", ""), Err::ok);
  set_quota("/s", "count=1,bytes=-1");  // a soft limit: logged by ZooKeeper, never refused
  EXPECT_EQ(make("/s/1", ""), Err::ok);
}

TEST_F(QuotaTest, AMultiRolledBackLeavesTheStatsAsTheyWere) {
  ASSERT_EQ(make("/m", "1"), Err::ok);
  set_quota("/m", "count=100,bytes=-1");
  std::string before = stats("/m");
  Journal j(true);
  ++zxid;
  ASSERT_EQ(tree.create("/m/a", "abc", open_acl_unsafe(), CreateMode::persistent, 0, zxid, 1, ids,
                        nullptr, nullptr, j),
            Err::ok);
  ASSERT_EQ(tree.set_data("/m", "longer", -1, zxid, 1, ids, nullptr, j), Err::ok);
  ASSERT_EQ(tree.remove("/m/a", -1, zxid, ids, j), Err::ok);
  EXPECT_NE(stats("/m"), before);
  tree.rollback(j);
  EXPECT_EQ(stats("/m"), before);
}

TEST_F(QuotaTest, ASnapshotBringsTheQuotasBack) {
  ASSERT_EQ(make("/r", "xyz"), Err::ok);
  set_quota("/r", "count=-1,bytes=-1,countHardLimit=2,byteHardLimit=-1");
  auto back = DataTree::deserialize(serialized(tree));
  ASSERT_TRUE(back) << back.status().to_string();
  DataTree& t = back.value();
  EXPECT_EQ(t.quota_paths().count("/r"), 1u);
  t.set_enforce_quota(true);
  Journal j;
  EXPECT_EQ(t.create("/r/1", "", open_acl_unsafe(), CreateMode::persistent, 0, 100, 1, ids, nullptr,
                     nullptr, j),
            Err::ok);
  EXPECT_EQ(t.create("/r/2", "", open_acl_unsafe(), CreateMode::persistent, 0, 101, 1, ids, nullptr,
                     nullptr, j),
            Err::quota_exceeded);
}

TEST_F(TreeTest, TheDigestFollowsTheTreeAndSurvivesRollbackAndSnapshots) {
  uint64_t empty = tree.digest();
  ASSERT_EQ(create("/d"), Err::ok);
  uint64_t one = tree.digest();
  EXPECT_NE(one, empty);
  // Another tree given the same changes has the same digest.
  DataTree other;
  Journal oj;
  ASSERT_EQ(other.create("/d", "d", open_acl_unsafe(), CreateMode::persistent, 0, 1, 1001, ids,
                         nullptr, nullptr, oj),
            Err::ok);
  EXPECT_EQ(other.digest(), one);
  Journal j(true);
  ASSERT_EQ(tree.set_data("/d", "changed", -1, 9, 9, ids, nullptr, j), Err::ok);
  ASSERT_EQ(tree.create("/d/x", "", open_acl_unsafe(), CreateMode::persistent, 0, 9, 9, ids,
                        nullptr, nullptr, j),
            Err::ok);
  EXPECT_NE(tree.digest(), one);
  tree.rollback(j);
  EXPECT_EQ(tree.digest(), one);
  ASSERT_EQ(remove("/d"), Err::ok);
  EXPECT_EQ(tree.digest(), empty);
  ASSERT_EQ(create("/e"), Err::ok);
  auto back = DataTree::deserialize(serialized(tree));
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().digest(), tree.digest());
}

namespace {

// All permissions for one digest user (`user`:x).
corral::proto::AclList digest_acl_of(const std::string& user) {
  return corral::proto::AclList{{corral::proto::perm::all, {"digest", user + ":x"}}};
}

}  // namespace

// A snapshot whose table holds the same list twice (as an older table could)
// loads with one entry for it, every node on that entry, and the unused
// entries freed.
TEST(DataTree, ASnapshotWithAnAclListTwiceLoadsOneEntryForIt) {
  DataTree tree;
  Ids ids;
  corral::sdk::Zxid zxid = 0;
  auto digest_acl = [](char c) { return digest_acl_of(std::string("user") + c); };
  const size_t base = tree.acl_count();
  const char* names[] = {"/a", "/b", "/c", "/d"};
  const char users[] = {'P', 'Q', 'Q', 'R'};
  for (int i = 0; i < 4; ++i) {
    Journal j;
    ASSERT_EQ(tree.create(names[i], "", digest_acl(users[i]), CreateMode::persistent, 0, ++zxid, 0,
                          ids, nullptr, nullptr, j),
              corral::proto::Err::ok);
  }
  // /d's list goes unused: its entry stays in the table until purged.
  {
    corral::proto::Stat st;
    ASSERT_EQ(tree.set_acl("/d", digest_acl('P'), -1, {{"digest", "userR:x"}}, &st),
              corral::proto::Err::ok);
  }
  ASSERT_EQ(tree.acl_count(), base + 3);
  // Make Q's entry a second copy of P's: the same bytes, one letter apart.
  std::string bytes = serialized(tree);
  const size_t q = bytes.find("userQ:x");
  ASSERT_NE(q, std::string::npos);
  ASSERT_EQ(bytes.find("userQ:x", q + 1), std::string::npos);
  bytes[q + 4] = 'P';
  auto back = DataTree::deserialize(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->acl_count(), base + 1);  // P's; R's had no node left
  const uint32_t p = back->find("/a")->acl;
  for (const char* n : {"/b", "/c", "/d"}) EXPECT_EQ(back->find(n)->acl, p) << n;
  EXPECT_EQ(back->acl_at(p), digest_acl('P'));
  // The entry is counted right: it goes once its last node does.
  for (const char* n : {"/a", "/b", "/c", "/d"}) {
    Journal j;
    ASSERT_EQ(back->remove(n, -1, ++zxid, ids, j), corral::proto::Err::ok);
    back->purge_acls();
    EXPECT_EQ(back->acl_count(), std::string(n) == "/d" ? base : base + 1) << n;
  }
}

TEST(DataTree, AclsNoNodeUsesArePurgedAndTheirSlotsReused) {
  DataTree tree;
  Ids ids;
  corral::sdk::Zxid zxid = 0;
  auto digest_acl = [](int i) { return digest_acl_of("u" + std::to_string(i)); };
  const size_t base = tree.acl_count();
  for (int i = 0; i < 2000; ++i) {
    Journal j;
    ASSERT_EQ(tree.create("/n" + std::to_string(i), "", digest_acl(i), CreateMode::persistent, 0,
                          ++zxid, 0, ids, nullptr, nullptr, j),
              corral::proto::Err::ok);
  }
  EXPECT_EQ(tree.acl_count(), base + 2000);
  // The same list again is the same entry.
  {
    Journal j;
    ASSERT_EQ(tree.create("/again", "", digest_acl(7), CreateMode::persistent, 0, ++zxid, 0, ids,
                          nullptr, nullptr, j),
              corral::proto::Err::ok);
    EXPECT_EQ(tree.find("/again")->acl, tree.find("/n7")->acl);
  }
  for (int i = 0; i < 2000; ++i) {
    Journal j;
    ASSERT_EQ(tree.remove("/n" + std::to_string(i), -1, ++zxid, ids, j), corral::proto::Err::ok);
    // The change still names the ACL until the next entry.
    EXPECT_EQ(tree.acl_at(j.changes[0].acl), digest_acl(i));
    tree.purge_acls();
  }
  EXPECT_EQ(tree.acl_count(), base + 1);  // /again keeps u7's
  // A node that took its ACL with setACL, then lost it.
  {
    corral::proto::Stat st;
    ASSERT_EQ(tree.set_acl("/again", open_acl_unsafe(), -1, {{"digest", "u7:x"}}, &st),
              corral::proto::Err::ok);
    tree.purge_acls();
    EXPECT_EQ(tree.acl_count(), base);
  }
  // Slots are reused, lowest first: the table does not grow again.
  for (int i = 0; i < 100; ++i) {
    Journal j;
    ASSERT_EQ(tree.create("/m" + std::to_string(i), "", digest_acl(5000 + i),
                          CreateMode::persistent, 0, ++zxid, 0, ids, nullptr, nullptr, j),
              corral::proto::Err::ok);
  }
  EXPECT_EQ(tree.find("/m0")->acl, 2u);
  // A create undone (a failed multi) leaves nothing behind once purged.
  {
    Journal j(/*record_undo=*/true);
    ASSERT_EQ(tree.create("/undone", "", digest_acl(9999), CreateMode::persistent, 0, ++zxid, 0,
                          ids, nullptr, nullptr, j),
              corral::proto::Err::ok);
    tree.rollback(j);
    tree.purge_acls();
    EXPECT_EQ(tree.acl_count(), base + 100);
  }
  // A delete undone keeps its ACL.
  {
    Journal j(/*record_undo=*/true);
    ASSERT_EQ(tree.remove("/m1", -1, ++zxid, ids, j), corral::proto::Err::ok);
    tree.rollback(j);
    tree.purge_acls();
    EXPECT_EQ(tree.acl_at(tree.find("/m1")->acl), digest_acl(5001));
  }
  // A snapshot holds the same table; loaded, it reuses the same slots.
  auto back = DataTree::deserialize(serialized(tree));
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(listing(*back), listing(tree));
  EXPECT_EQ(back->acl_count(), tree.acl_count());
}
