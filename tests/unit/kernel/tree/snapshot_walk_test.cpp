// Snapshots walked by the tree's own thread while writes go on: whatever
// the writes do between the steps, the bytes must load into the tree as it
// was when the snapshot began.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tree/data_tree.hpp"

using namespace corral::kernel;
using corral::proto::CreateMode;
using corral::proto::open_acl_unsafe;

namespace {

// Every node with its data, Stat, ACL (by content) and children, and every
// session with its ephemerals: what two trees must agree on to be equal.
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
          int64_t{s.aversion}, s.ephemeral_owner, int64_t{s.num_children}})
      line += " " + std::to_string(v);
    for (const auto& a : t.acl(n))
      line += " acl:" + std::to_string(a.perms) + ":" + a.id.scheme + ":" + a.id.id;
    for (const std::string& k : kids) line += " " + k;
    lines.push_back(line);
  });
  for (const auto& [id, s] : t.sessions()) {
    std::string line =
        "session " + std::to_string(id) + " " + std::to_string(s.timeout_ms) + " " + s.password;
    for (const std::string& e : s.ephemerals) line += " " + e;
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

std::string serialized(const DataTree& t) {
  std::string out;
  t.serialize([&](std::string_view chunk) { out += chunk; });
  return out;
}

std::string loaded_listing(const std::string& bytes) {
  auto t = DataTree::deserialize(bytes);
  if (!t) return "cannot load: " + t.status().to_string();
  return listing(t.value());
}

// Random writes of every kind on a tree of a few levels.
struct Writer {
  DataTree& tree;
  std::mt19937_64 rng;
  int64_t zxid = 0;
  Ids ids;
  std::vector<std::string> paths{"/"};  // created by this writer, maybe gone since

  explicit Writer(DataTree& t, uint64_t seed) : tree(t), rng(seed) {}

  // Creates alone, so that the tree has a few hundred nodes to walk.
  void grow(int n) {
    for (int i = 0; i < n; ++i) {
      Journal j;
      create_under(any_path(), j);
    }
  }

  size_t pick(size_t n) { return static_cast<size_t>(rng() % n); }
  std::string any_path() { return paths[pick(paths.size())]; }
  std::string data() {
    // Sizes that fit in place, and ones that move the node to a larger
    // allocation (or out of the slab arena).
    static const size_t kSizes[] = {0, 3, 40, 200, 700, 3000};
    return std::string(kSizes[pick(6)], static_cast<char>('a' + pick(26)));
  }
  corral::proto::AclList acl() {
    if (pick(4) != 0) return open_acl_unsafe();
    return {corral::proto::Acl{corral::proto::perm::all,
                               {"world", "anyone" + std::to_string(pick(3))}}};
  }

  void create_under(const std::string& parent, Journal& j) {
    std::string path = (parent == "/" ? "" : parent) + "/n" + std::to_string(pick(40));
    CreateMode mode = CreateMode::persistent;
    int64_t owner = 0;
    switch (pick(6)) {
      case 0:
        mode = CreateMode::ephemeral;
        owner = 1 + static_cast<int64_t>(pick(3));
        break;
      case 1:
        mode = CreateMode::persistent_sequential;
        break;
      case 2:
        mode = CreateMode::container;
        owner = kContainerOwner;
        break;
      default:
        break;
    }
    std::string made;
    ++zxid;
    if (tree.create(path, data(), acl(), mode, owner, zxid, zxid * 10, ids, &made, nullptr, j) ==
        Err::ok)
      paths.push_back(made);
  }

  // One write; a multi of several, rolled back half the time.
  void write() {
    const size_t kind = pick(10);
    if (kind == 9) {
      Journal j(/*record_undo=*/true);
      for (size_t k = 0, n = 1 + pick(4); k < n; ++k) one(j);
      if (pick(2)) tree.rollback(j);
      return;
    }
    Journal j;
    one(j);
  }

  void one(Journal& j) {
    switch (pick(8)) {
      case 0:
      case 1:
      case 2:
        create_under(any_path(), j);
        break;
      case 3:
      case 4:
        (void)tree.remove(any_path(), -1, ++zxid, ids, j);
        break;
      case 5:
      case 6:
        ++zxid;
        (void)tree.set_data(any_path(), data(), -1, zxid, zxid * 10, ids, nullptr, j);
        break;
      default:
        if (pick(3) == 0 && !j.changes.empty()) break;
        if (pick(4) == 0) {
          const int64_t id = 1 + static_cast<int64_t>(pick(3));
          tree.close_session(id, ++zxid, j);
          tree.add_session(id, 4000, "pw" + std::to_string(zxid));
        } else {
          (void)tree.set_acl(any_path(), acl(), -1, ids, nullptr);
        }
        break;
    }
  }
};

struct SnapshotWalk : ::testing::Test {
  DataTree tree;
  std::string bytes;
  uint64_t begin() {
    bytes.clear();
    return tree.begin_snapshot([this](std::string_view chunk) { bytes += chunk; });
  }
};

}  // namespace

TEST_F(SnapshotWalk, WritesTheTreeAsItWasWhateverTheWritesBetweenItsSteps) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DataTree fresh;
    tree = std::move(fresh);
    Writer w(tree, seed);
    for (int64_t id = 1; id <= 3; ++id) tree.add_session(id, 4000, "pw");
    w.grow(600);
    for (int i = 0; i < 200; ++i) w.write();
    ASSERT_GT(tree.node_count(), 150u);
    // Three snapshots in a row on the same tree: each must find every node
    // unwritten, whatever the one before marked.
    for (int round = 0; round < 3; ++round) {
      const std::string expected = loaded_listing(serialized(tree));
      const uint64_t id = begin();
      ASSERT_NE(id, 0u);
      EXPECT_EQ(tree.begin_snapshot([](std::string_view) {}), 0u) << "one at a time";
      DataTree::SnapshotStep step = DataTree::SnapshotStep::more;
      size_t steps = 0;
      while (step == DataTree::SnapshotStep::more) {
        for (size_t k = 0, n = w.pick(6); k < n; ++k) w.write();
        step = tree.snapshot_step(id, 1 + w.pick(5));
        ++steps;
      }
      // Done, not gone: every copy kept was written.
      ASSERT_EQ(step, DataTree::SnapshotStep::done) << tree.snapshot_left() << " left";
      EXPECT_GT(steps, 10u);
      EXPECT_EQ(tree.snapshot_step(id, 1), DataTree::SnapshotStep::gone);
      EXPECT_EQ(loaded_listing(bytes), expected);
    }
  }
}

TEST_F(SnapshotWalk, KeepsOnlyWhatItHasNotWrittenAndLetsItGoOnceWritten) {
  Journal j;
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(tree.create("/n" + std::to_string(i), "x", open_acl_unsafe(), CreateMode::persistent,
                          0, i + 1, 1, {}, nullptr, nullptr, j),
              Err::ok);
  const std::string expected = loaded_listing(serialized(tree));
  const uint64_t id = begin();
  EXPECT_EQ(tree.snapshot_kept_bytes(), 0u);
  // The root is written first: changing it then keeps nothing.
  ASSERT_EQ(tree.snapshot_step(id, 1), DataTree::SnapshotStep::more);
  ASSERT_EQ(tree.set_data("/", "root", -1, 100, 2, {}, nullptr, j), Err::ok);
  EXPECT_EQ(tree.snapshot_kept_bytes(), 0u);
  // A node not written yet is kept once, however often it changes.
  ASSERT_EQ(tree.set_data("/n7", "y", -1, 101, 2, {}, nullptr, j), Err::ok);
  const size_t one = tree.snapshot_kept_bytes();
  EXPECT_GT(one, 0u);
  ASSERT_EQ(tree.set_data("/n7", std::string(5000, 'z'), -1, 102, 2, {}, nullptr, j), Err::ok);
  ASSERT_EQ(tree.remove("/n7", -1, 103, {}, j), Err::ok);
  EXPECT_EQ(tree.snapshot_kept_bytes(), one);
  // New nodes take no part.
  ASSERT_EQ(tree.create("/new", "x", open_acl_unsafe(), CreateMode::persistent, 0, 104, 1, {},
                        nullptr, nullptr, j),
            Err::ok);
  EXPECT_EQ(tree.snapshot_kept_bytes(), one);
  DataTree::SnapshotStep step;
  while ((step = tree.snapshot_step(id, 3)) == DataTree::SnapshotStep::more) {
  }
  EXPECT_EQ(step, DataTree::SnapshotStep::done);
  EXPECT_EQ(loaded_listing(bytes), expected);
}

TEST_F(SnapshotWalk, OneAbandonedHalfWayLeavesTheNextOneWhole) {
  Writer w(tree, 7);
  w.grow(600);
  ASSERT_GT(tree.node_count(), 150u);
  const uint64_t first = begin();
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(tree.snapshot_step(first, 10), DataTree::SnapshotStep::more);
  // Writes until one keeps a copy: which nodes the walk has reached
  // depends on the order of the child sets, that is on the hash seed.
  for (int i = 0; i < 5000 && tree.snapshot_kept_bytes() == 0; ++i) w.write();
  ASSERT_GT(tree.snapshot_kept_bytes(), 0u);
  for (int i = 0; i < 20; ++i) w.write();
  const size_t kept = tree.snapshot_kept_bytes();
  tree.end_snapshot(first);
  EXPECT_EQ(tree.snapshot_step(first, 10), DataTree::SnapshotStep::gone);
  // The records kept to write go at once; the children's addresses stay
  // until the walk has settled.
  EXPECT_LT(tree.snapshot_kept_bytes(), kept);
  // The nodes it had not reached are marked a few at a time, between
  // writes; until then no snapshot is walked (the server forks one), and
  // no id (not even 0) steps or ends the settling walk.
  EXPECT_EQ(begin(), 0u);
  EXPECT_EQ(tree.snapshot_step(0, 10), DataTree::SnapshotStep::gone);
  tree.end_snapshot(0);
  int settling = 0;
  for (; !tree.settle_snapshot(3); ++settling) w.write();
  EXPECT_GT(settling, 5);
  EXPECT_EQ(tree.snapshot_kept_bytes(), 0u);
  EXPECT_TRUE(tree.settle_snapshot(3));
  for (int i = 0; i < 50; ++i) w.write();
  const std::string expected = loaded_listing(serialized(tree));
  const uint64_t second = begin();
  ASSERT_NE(second, 0u);
  DataTree::SnapshotStep step;
  while ((step = tree.snapshot_step(second, 4)) == DataTree::SnapshotStep::more) w.write();
  EXPECT_EQ(step, DataTree::SnapshotStep::done);
  EXPECT_EQ(loaded_listing(bytes), expected);
}

// Abandoned again and again at random points, with every kind of write
// between the steps and while the abandoned walks settle: each snapshot
// that runs to its end still loads as the tree was when it began.
TEST_F(SnapshotWalk, AbandonedOnesSettleBetweenWritesAndLeaveEveryLaterOneWhole) {
  Writer w(tree, 11);
  w.grow(2000);
  std::mt19937_64 rng(5);
  int whole = 0;
  for (int round = 0; round < 12; ++round) {
    const std::string expected = loaded_listing(serialized(tree));
    const uint64_t id = begin();
    ASSERT_NE(id, 0u);
    const bool abandon = round % 3 != 2;
    const size_t abandon_after = 1 + rng() % 40;
    DataTree::SnapshotStep step = DataTree::SnapshotStep::more;
    for (size_t steps = 0; step == DataTree::SnapshotStep::more; ++steps) {
      if (abandon && steps == abandon_after) break;
      step = tree.snapshot_step(id, 1 + rng() % 20);
      for (size_t i = rng() % 4; i > 0; --i) w.write();
    }
    if (step == DataTree::SnapshotStep::more) {
      tree.end_snapshot(id);
      while (!tree.settle_snapshot(1 + rng() % 8)) {
        for (size_t i = rng() % 3; i > 0; --i) w.write();
        ASSERT_EQ(begin(), 0u);
      }
      continue;
    }
    ASSERT_EQ(step, DataTree::SnapshotStep::done);
    EXPECT_EQ(loaded_listing(bytes), expected) << "round " << round;
    ++whole;
  }
  EXPECT_GE(whole, 4);
}

TEST_F(SnapshotWalk, EndsWhenItsTreeIsReplaced) {
  Writer w(tree, 3);
  w.grow(100);
  const uint64_t id = begin();
  ASSERT_EQ(tree.snapshot_step(id, 2), DataTree::SnapshotStep::more);
  w.write();
  tree = DataTree();
  EXPECT_EQ(tree.snapshot_step(id, 2), DataTree::SnapshotStep::gone);
  EXPECT_EQ(tree.snapshot_kept_bytes(), 0u);
  // The new tree takes snapshots of its own.
  const std::string expected = loaded_listing(serialized(tree));
  const uint64_t next = begin();
  ASSERT_NE(next, 0u);
  while (tree.snapshot_step(next, 1) == DataTree::SnapshotStep::more) {
  }
  EXPECT_EQ(loaded_listing(bytes), expected);
}

TEST_F(SnapshotWalk, GivesTheSameBytesAsSerializeWhenNothingChanges) {
  Writer w(tree, 11);
  w.grow(600);
  for (int i = 0; i < 100; ++i) w.write();
  const std::string expected = serialized(tree);
  const uint64_t id = begin();
  while (tree.snapshot_step(id, 7) == DataTree::SnapshotStep::more) {
  }
  EXPECT_EQ(bytes, expected);
}

TEST_F(SnapshotWalk, AParentOfManyChildrenGoesOntoTheStackOverSeveralSteps) {
  // More children than the walk puts on its stack in one step (a node at a
  // time here, and a few slots of the parent's set with it): writes to the
  // children and to the parent come between those steps.
  Journal j;
  ASSERT_EQ(tree.create("/big", "", open_acl_unsafe(), CreateMode::persistent, 0, 1, 1, {}, nullptr,
                        nullptr, j),
            Err::ok);
  for (int i = 0; i < 20000; ++i)
    ASSERT_EQ(tree.create("/big/c" + std::to_string(i), "v", open_acl_unsafe(),
                          CreateMode::persistent, 0, 2 + i, 1, {}, nullptr, nullptr, j),
              Err::ok);
  // Round 0 changes the parent only once the walk has written it and is
  // putting its children on the stack; round 1 from the start, so that the
  // parent is kept, children and all, before the walk reaches it.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::mt19937_64 rng(round);
    int64_t zxid = 100000 * (round + 1);
    const std::string expected = loaded_listing(serialized(tree));
    const uint64_t id = begin();
    size_t steps = 0;
    DataTree::SnapshotStep step = DataTree::SnapshotStep::more;
    while (step == DataTree::SnapshotStep::more) {
      const std::string child = "/big/c" + std::to_string(rng() % 20000);
      // In round 0, data that fits where the child is: a child moved to a
      // larger allocation changes the parent's set.
      const size_t size = round == 0 ? 1 + rng() % 4 : rng() % 300;
      (void)tree.set_data(child, std::string(size, 'x'), -1, ++zxid, 2, {}, nullptr, j);
      if ((round == 1 || steps > 10) && rng() % 8 == 0) {
        if (tree.remove(child, -1, ++zxid, {}, j) != Err::ok)
          (void)tree.create(child, "again", open_acl_unsafe(), CreateMode::persistent, 0, ++zxid, 2,
                            {}, nullptr, nullptr, j);
      }
      step = tree.snapshot_step(id, 1);
      ++steps;
    }
    ASSERT_EQ(step, DataTree::SnapshotStep::done);
    EXPECT_GT(steps, round == 0 ? 20000u : 15000u);
    EXPECT_EQ(loaded_listing(bytes), expected);
  }
  // Abandoned while it puts the parent's children on its stack, then
  // settled with the same writes between its steps (children moved,
  // removed and made again, the parent's set changed): the next walk is
  // whole.
  std::mt19937_64 rng(7);
  int64_t zxid = 900000;
  auto churn = [&] {
    const std::string child = "/big/c" + std::to_string(rng() % 20000);
    (void)tree.set_data(child, std::string(rng() % 300, 'y'), -1, ++zxid, 2, {}, nullptr, j);
    if (rng() % 8 == 0 && tree.remove(child, -1, ++zxid, {}, j) != Err::ok)
      (void)tree.create(child, "again", open_acl_unsafe(), CreateMode::persistent, 0, ++zxid, 2, {},
                        nullptr, nullptr, j);
  };
  const uint64_t id = begin();
  for (int i = 0; i < 30; ++i) ASSERT_EQ(tree.snapshot_step(id, 1), DataTree::SnapshotStep::more);
  tree.end_snapshot(id);
  size_t settling = 0;
  for (; !tree.settle_snapshot(1); ++settling) churn();
  EXPECT_GT(settling, 100u);
  for (int i = 0; i < 100; ++i) churn();
  const std::string expected = loaded_listing(serialized(tree));
  const uint64_t next = begin();
  ASSERT_NE(next, 0u);
  DataTree::SnapshotStep step;
  while ((step = tree.snapshot_step(next, 1)) == DataTree::SnapshotStep::more) churn();
  ASSERT_EQ(step, DataTree::SnapshotStep::done);
  EXPECT_EQ(loaded_listing(bytes), expected);
}
