// The tree's node layout and the hash sets that find nodes.
#include "tree/node.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "corral/common/msgpack.hpp"
#include "tree/data_tree.hpp"

using namespace corral::kernel;
using corral::proto::CreateMode;
using corral::proto::open_acl_unsafe;

TEST(Node, HoldsPathNameAndDataInOneAllocation) {
  NodePtr n = Node::make("/app/config", "value");
  EXPECT_EQ(n->path(), "/app/config");
  EXPECT_EQ(n->name(), "config");
  EXPECT_EQ(n->data(), "value");
  EXPECT_FALSE(n->data_null());
  NodePtr root = Node::make("/", "");
  EXPECT_EQ(root->name(), "");
  NodePtr null = Node::make("/n", "", true);
  EXPECT_TRUE(null->data_null());
  EXPECT_EQ(null->data(), "");
}

TEST(Node, DataMovesToANewAllocationOnlyWhenItDoesNotFit) {
  NodePtr n = Node::make("/a", std::string(100, 'x'));
  EXPECT_TRUE(n->data_fits(100));
  EXPECT_TRUE(n->data_fits(40));
  // The room is what the allocation gave: a slab class or malloc, which
  // round up by less than 16 bytes.
  EXPECT_FALSE(n->data_fits(100 + 16));
  EXPECT_FALSE(n->data_fits(10));  // would waste most of it
  n->assign_data("short but fits here, at forty bytes long", false);
  EXPECT_EQ(n->data(), "short but fits here, at forty bytes long");
  n->version = 7;
  NodePtr child = Node::make("/a/b", "");
  n->children_for_update().insert(child.get());
  NodePtr bigger = Node::with_data(*n, std::string(500, 'y'), false);
  EXPECT_EQ(bigger->path(), "/a");
  EXPECT_EQ(bigger->data(), std::string(500, 'y'));
  EXPECT_EQ(bigger->version, 7);
  EXPECT_EQ(bigger->children().find("b"), child.get());
  EXPECT_TRUE(n->children().empty());  // the children moved with the node
}

// The Stat fields most nodes leave at their defaults take no room in the
// node: pzxid is czxid, cversion and aversion 0, and a session's ephemeral
// node keeps its owner in the word of the child set it cannot have. Any
// other value makes the child set's block, which keeps them all.
TEST(Node, RareStatFieldsLiveInTheChildSetsBlock) {
  static_assert(sizeof(Node) == 56);
  NodePtr n = Node::make("/e", "x");
  n->czxid = 5;
  EXPECT_EQ(n->pzxid(), 5);
  n->set_pzxid(5);
  n->set_cversion(0);
  n->set_aversion(0);
  EXPECT_FALSE(n->children().has_block());
  n->set_ephemeral_owner(0x1234567890abcdefLL);  // a session id: no block
  EXPECT_FALSE(n->children().has_block());
  EXPECT_EQ(n->ephemeral_owner(), 0x1234567890abcdefLL);
  EXPECT_EQ(n->num_children(), 0);
  EXPECT_EQ(n->children().find("x"), nullptr);
  // Moving to other data keeps the owner kept in place of the child set.
  NodePtr moved = Node::with_data(*n, std::string(300, 'y'), false);
  EXPECT_EQ(moved->ephemeral_owner(), 0x1234567890abcdefLL);
  EXPECT_EQ(moved->pzxid(), 5);
  // A setACL makes the block; the owner moves into it.
  moved->set_aversion(1);
  EXPECT_TRUE(moved->children().has_block());
  EXPECT_EQ(moved->ephemeral_owner(), 0x1234567890abcdefLL);
  EXPECT_EQ(moved->aversion(), 1);
  EXPECT_EQ(moved->pzxid(), 5);
  EXPECT_EQ(moved->cversion(), 0);
  moved->set_ephemeral_owner(0);
  EXPECT_EQ(moved->ephemeral_owner(), 0);
  EXPECT_EQ(moved->aversion(), 1);
  NodePtr again = Node::with_data(*moved, "z", false);
  EXPECT_EQ(again->aversion(), 1);
  EXPECT_FALSE(moved->children().has_block());  // the block moved with the children
  // An owner given back and taken again, with no block.
  NodePtr m = Node::make("/m", "");
  m->set_ephemeral_owner(7);
  m->set_ephemeral_owner(0);
  EXPECT_EQ(m->ephemeral_owner(), 0);
  EXPECT_FALSE(m->children().has_block());
  // A child under a node that keeps its owner in place: the owner moves
  // into the block (a snapshot may hold such a tree; the tree refuses to
  // make one).
  m->set_ephemeral_owner(-42);
  NodePtr child = Node::make("/m/c", "");
  m->children_for_update().insert(child.get());
  EXPECT_EQ(m->ephemeral_owner(), -42);
  EXPECT_EQ(m->children().find("c"), child.get());
  EXPECT_TRUE(m->children_for_update().erase("c"));
}

// Random inserts and erases checked against std::map, across growth and
// clusters that wrap around the end of the slots.
TEST(ChildSet, AgreesWithAnOrderedMapUnderRandomInsertsAndErases) {
  std::mt19937 rng(12345);
  ChildSet set;
  std::map<std::string, NodePtr> held;
  for (int step = 0; step < 200000; ++step) {
    std::string key = "k" + std::to_string(rng() % 5000);
    bool insert = step < 100000 ? rng() % 3 != 0 : rng() % 3 == 0;  // grow, then mostly drain
    auto it = held.find(key);
    if (insert && it == held.end()) {
      NodePtr n = Node::make("/" + key, "");
      set.insert(n.get());
      held.emplace(key, std::move(n));
    } else if (!insert && it != held.end()) {
      ASSERT_TRUE(set.erase(key));
      held.erase(it);
    } else if (!insert) {
      ASSERT_FALSE(set.erase(key));
    }
    if (step % 997 == 0) {
      ASSERT_EQ(set.size(), held.size());
      for (const auto& [k, n] : held) ASSERT_EQ(set.find(k), n.get()) << k;
      size_t seen = 0;
      set.for_each([&](Node* n) {
        ++seen;
        ASSERT_EQ(held.at(std::string(n->name())).get(), n);
      });
      ASSERT_EQ(seen, held.size());
    }
    ASSERT_EQ(set.find(key), held.count(key) ? held[key].get() : nullptr);
  }
}

// A large set grows a few slots at a time: right after the insert that
// makes it grow, most entries are still in the old slots, and every
// operation must look there too. Checked at every step of such a resize,
// with insert_new, replace, erase and for_each, on growth and on shrinking.
TEST(ChildSet, EveryOperationWorksWhileALargeSetResizes) {
  std::mt19937 rng(777);
  ChildSet set;
  std::map<std::string, NodePtr> held;
  std::vector<NodePtr> retired;  // replaced nodes, kept alive as the tree keeps them
  auto check_all = [&] {
    ASSERT_EQ(set.size(), held.size());
    for (const auto& [k, n] : held) ASSERT_EQ(set.find(k), n.get()) << k;
    size_t seen = 0;
    set.for_each([&](Node* n) {
      ++seen;
      ASSERT_EQ(held.at(std::string(n->name())).get(), n);
    });
    ASSERT_EQ(seen, held.size());
  };
  int resizes_seen = 0;
  bool was_resizing = false;
  for (int step = 0; step < 120000; ++step) {
    const bool growing = step < 80000;
    std::string key = "n" + std::to_string(rng() % 60000);
    auto it = held.find(key);
    const unsigned what = rng() % 10;
    if (growing ? what < 7 : what < 2) {  // insert_new, present or not
      NodePtr n = Node::make("/" + key, "");
      Node* had = set.insert_new(n.get(), hash_key(key));
      if (it == held.end()) {
        ASSERT_EQ(had, nullptr) << key;
        held.emplace(key, std::move(n));
      } else {
        ASSERT_EQ(had, it->second.get()) << key;
      }
    } else if (what < 8 && it != held.end()) {  // replace with a copy
      NodePtr now = Node::make("/" + key, "r");
      set.replace(it->second.get(), now.get());
      retired.push_back(std::move(it->second));
      it->second = std::move(now);
    } else if (it != held.end()) {
      ASSERT_TRUE(set.erase(key));
      held.erase(it);
    } else {
      ASSERT_FALSE(set.erase(key));
    }
    if (set.resizing() && !was_resizing) ++resizes_seen;
    was_resizing = set.resizing();
    if (set.resizing() || step % 4999 == 0) {
      ASSERT_EQ(set.find(key), held.count(key) ? held[key].get() : nullptr);
      if (step % 97 == 0) check_all();
    }
  }
  check_all();
  // Grew past 1024 slots several times (the next test shrinks).
  EXPECT_GE(resizes_seen, 4);
}

// Grown past the size at which slots are a mapping of their own (1 MiB),
// then drained far below a sixteenth, so that it shrinks a few entries at
// a time, with every operation checked at each step of each resize.
TEST(ChildSet, ALargeSetShrinksWhileInUse) {
  std::mt19937 rng(4242);
  ChildSet set;
  std::map<std::string, NodePtr> held;
  std::vector<NodePtr> retired;
  std::vector<std::string> names;  // what `held` holds, to pick from
  for (int i = 0; i < 70000; ++i) {
    std::string name = "c" + std::to_string(i);
    NodePtr n = Node::make("/p/" + name, "");
    set.insert(n.get());
    held.emplace(name, std::move(n));
    names.push_back(name);
  }
  int shrinks = 0;
  bool was_resizing = set.resizing();
  for (int step = 0; held.size() > 300; ++step) {
    const size_t pick = rng() % names.size();
    auto it = held.find(names[pick]);
    const unsigned what = rng() % 10;
    if (what < 7) {
      ASSERT_TRUE(set.erase(it->first));
      held.erase(it);
      names[pick] = names.back();
      names.pop_back();
    } else if (what < 8) {
      NodePtr now = Node::make("/p/" + it->first, "r");
      set.replace(it->second.get(), now.get());
      retired.push_back(std::move(it->second));
      it->second = std::move(now);
    } else {
      // insert_new of a name held (returns it) and of a new one.
      NodePtr dup = Node::make("/p/" + it->first, "");
      ASSERT_EQ(set.insert_new(dup.get(), hash_key(it->first)), it->second.get());
      std::string name = "d" + std::to_string(rng());
      if (!held.count(name)) {
        NodePtr n = Node::make("/p/" + name, "");
        ASSERT_EQ(set.insert_new(n.get(), hash_key(name)), nullptr);
        held.emplace(name, std::move(n));
        names.push_back(name);
      }
    }
    if (set.resizing() && !was_resizing) ++shrinks;
    was_resizing = set.resizing();
    if (set.resizing() && step % 31 == 0) {
      ASSERT_EQ(set.size(), held.size());
      for (const auto& [k, n] : held) ASSERT_EQ(set.find(k), n.get()) << k;
      size_t seen = 0;
      set.for_each([&](Node* n) {
        ++seen;
        ASSERT_EQ(held.at(std::string(n->name())).get(), n);
      });
      ASSERT_EQ(seen, held.size());
      ASSERT_EQ(set.find("absent"), nullptr);
    }
  }
  // 131072 slots -> 32768 -> 8192 -> 2048, each while in use.
  EXPECT_GE(shrinks, 3);
  for (const auto& [k, n] : held) ASSERT_EQ(set.find(k), n.get()) << k;
}

TEST(ChildSet, GrowingALargeSetMovesOnlyAFewEntriesAtATime) {
  ChildSet set;
  std::vector<NodePtr> nodes;
  size_t grew_at = 0;
  for (int i = 0; i < 200000 && !grew_at; ++i) {
    nodes.push_back(Node::make("/p/c" + std::to_string(i), ""));
    set.insert(nodes.back().get());
    if (set.size() > 4096 && set.resizing()) grew_at = set.size();
  }
  ASSERT_GT(grew_at, 0u);
  // The resize goes on over later inserts, and ends.
  int inserts = 0;
  while (set.resizing()) {
    nodes.push_back(Node::make("/p/d" + std::to_string(inserts++), ""));
    set.insert(nodes.back().get());
  }
  EXPECT_GT(inserts, 10);
  EXPECT_LT(static_cast<size_t>(inserts), grew_at);
  for (const auto& n : nodes) ASSERT_EQ(set.find(n->name()), n.get());
}

TEST(ChildSet, ReplaceSwapsOneNodeForAnotherWithTheSameKey) {
  ChildSet set;
  NodePtr a = Node::make("/p/a", "1"), b = Node::make("/p/b", "2"), a2 = Node::make("/p/a", "3");
  set.insert(a.get());
  set.insert(b.get());
  set.replace(a.get(), a2.get());
  EXPECT_EQ(set.find("a"), a2.get());
  EXPECT_EQ(set.find("b"), b.get());
  EXPECT_EQ(set.size(), 2u);
}

TEST(ChildSet, AnEmptiedSetGivesItsSlotsBack) {
  ChildSet set;
  std::vector<NodePtr> nodes;
  for (int i = 0; i < 1000; ++i) {
    nodes.push_back(Node::make("/p/c" + std::to_string(i), ""));
    set.insert(nodes.back().get());
  }
  set.rare().cversion = 2000;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(set.erase("c" + std::to_string(i)));
  EXPECT_TRUE(set.empty());
  // One slot is left, in the block that keeps the node's Rare fields.
  EXPECT_TRUE(set.has_block());
  EXPECT_EQ(set.capacity(), 1u);
  EXPECT_EQ(set.rare().cversion, 2000);
  EXPECT_EQ(set.find("c1"), nullptr);
  size_t seen = 0;
  set.for_each([&](Node*) { ++seen; });
  EXPECT_EQ(seen, 0u);
}

// setData that outgrows (or shrinks far below) a node's allocation moves the
// node: the tree, its parent's child set and its own children must follow.
TEST(NodeInTree, DataThatOutgrowsItsNodeKeepsStatChildrenAndParent) {
  DataTree tree;
  Ids ids;
  Journal j;
  ASSERT_EQ(tree.create("/a", "x", open_acl_unsafe(), CreateMode::persistent, 0, 1, 10, ids,
                        nullptr, nullptr, j),
            Err::ok);
  ASSERT_EQ(tree.create("/a/b", "y", open_acl_unsafe(), CreateMode::persistent, 0, 2, 20, ids,
                        nullptr, nullptr, j),
            Err::ok);
  const int64_t size_with_x = tree.approximate_data_size();
  std::string big(10000, 'z');
  ASSERT_EQ(tree.set_data("/a", big, 0, 3, 30, ids, nullptr, j), Err::ok);
  const Node* after = tree.find("/a");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->data(), big);
  EXPECT_EQ(after->version, 1);
  EXPECT_EQ(after->czxid, 1);
  EXPECT_EQ(after->num_children(), 1);
  EXPECT_EQ(after->children().find("b"), tree.find("/a/b"));
  EXPECT_EQ(tree.find("/")->children().find("a"), after);
  ASSERT_EQ(tree.set_data("/a", "tiny", 1, 4, 40, ids, nullptr, j), Err::ok);
  EXPECT_EQ(tree.find("/a")->data(), "tiny");
  EXPECT_EQ(tree.find("/")->children().find("a"), tree.find("/a"));
  EXPECT_EQ(tree.approximate_data_size(), size_with_x - 1 + 4);

  // And a rollback that moves it back.
  Journal undo(/*record_undo=*/true);
  uint64_t digest = tree.digest();
  ASSERT_EQ(tree.set_data("/a", std::string(5000, 'w'), -1, 5, 50, ids, nullptr, undo), Err::ok);
  tree.rollback(undo);
  EXPECT_EQ(tree.find("/a")->data(), "tiny");
  EXPECT_EQ(tree.find("/a")->version, 2);
  EXPECT_EQ(tree.find("/")->children().find("a"), tree.find("/a"));
  EXPECT_EQ(tree.digest(), digest);
}

// Nodes are found by walking their path's names down from the root: only
// whole names match, and a path of any other shape finds nothing.
TEST(NodeInTree, PathsAreFoundByWalkingTheirNames) {
  DataTree tree;
  Ids ids;
  Journal j;
  for (const char* p : {"/a", "/a/b", "/ab", "/a/b/c"})
    ASSERT_EQ(tree.create(p, p, open_acl_unsafe(), CreateMode::persistent, 0, 1, 10, ids, nullptr,
                          nullptr, j),
              Err::ok)
        << p;
  for (const char* p : {"/a", "/a/b", "/ab", "/a/b/c"}) {
    ASSERT_NE(tree.find(p), nullptr) << p;
    EXPECT_EQ(tree.find(p)->path(), p);
    EXPECT_EQ(tree.find(p)->data(), p);
  }
  EXPECT_EQ(tree.find(""), tree.find("/"));
  EXPECT_EQ(tree.find("/")->name(), "");
  EXPECT_EQ(tree.find("/a/b/c")->name(), "c");
  for (const char* p :
       {"/a/b/", "a/b", "a", "//a", "/a//b", "/a/bc", "/a/b/c/d", "/ab/b", "/b", "/a/"})
    EXPECT_EQ(tree.find(p), nullptr) << p;
  // Deleting a path that is not a node's never deletes another node.
  for (const char* p : {"//a", "//ab", "/a//b", "/a/b/"})
    EXPECT_EQ(tree.remove(p, -1, 3, ids, j), Err::no_node) << p;
  EXPECT_NE(tree.find("/a"), nullptr);
  EXPECT_NE(tree.find("/ab"), nullptr);
  // Names compare whole, from the end of the path.
  const Node* ab = tree.find("/ab");
  EXPECT_TRUE(ab->has_name("ab"));
  EXPECT_FALSE(ab->has_name("b"));
  EXPECT_FALSE(ab->has_name("xab"));
  EXPECT_FALSE(ab->has_name(""));
  EXPECT_TRUE(tree.find("/a/b/c")->has_name("c"));
  EXPECT_FALSE(tree.find("/a/b/c")->has_name("b"));
  // The root is its own parent's empty name, and exists.
  EXPECT_EQ(tree.create("/", "", open_acl_unsafe(), CreateMode::persistent, 0, 2, 20, ids, nullptr,
                        nullptr, j),
            Err::node_exists);
  EXPECT_EQ(tree.node_count(), 4u + 4u);  // and the root and /zookeeper's three
}

// The root's data may outgrow its allocation too: the tree's root follows.
TEST(NodeInTree, TheRootsDataCanOutgrowItsNode) {
  DataTree tree;
  Ids ids;
  Journal j;
  const size_t before = tree.node_count();
  const std::string big(10000, 'r');
  ASSERT_EQ(tree.set_data("/", big, -1, 1, 10, ids, nullptr, j), Err::ok);
  ASSERT_NE(tree.find("/"), nullptr);
  EXPECT_EQ(tree.find("/")->data(), big);
  EXPECT_NE(tree.find("/zookeeper/config"), nullptr);
  EXPECT_EQ(tree.node_count(), before);
  std::string bytes;
  tree.serialize([&](std::string_view chunk) { bytes += chunk; });
  auto back = DataTree::deserialize(bytes);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->find("/")->data(), big);
  EXPECT_EQ(back->digest(), tree.digest());
}

// Snapshots converted from ZooKeeper list nodes in path order, where a
// sibling whose name sorts before '/' ("a-x") comes between a node and its
// children: each node still finds its parent, wherever that came.
TEST(NodeInTree, ASnapshotInPathOrderLoads) {
  const std::vector<std::pair<std::string, int>> nodes = {
      {"/", 2}, {"/a", 1}, {"/a-x", 1}, {"/a-x/q", 0}, {"/a/b", 0}};
  std::string bytes;
  corral::common::MsgpackWriter w(bytes);
  w.array(5);
  w.bytes("corral-tree");
  w.integer(1);
  w.integer(1);  // ACL lists
  w.integer(0);  // sessions
  w.integer(static_cast<int64_t>(nodes.size()));
  w.array(1);
  w.array(3);
  w.integer(31);
  w.bytes("world");
  w.bytes("anyone");
  int64_t zxid = 0;
  for (const auto& [path, children] : nodes) {
    w.array(13);
    w.bytes(path);
    w.bytes("d:" + path);
    ++zxid;
    for (int k = 0; k < 5; ++k) w.integer(zxid);  // czxid mzxid pzxid ctime mtime
    for (int k = 0; k < 5; ++k) w.integer(0);     // versions, owner, ACL
    w.integer(children);
  }
  auto t = DataTree::deserialize(bytes);
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->node_count(), nodes.size());
  EXPECT_EQ(t->find("/a/b")->data(), "d:/a/b");
  EXPECT_EQ(t->find("/a-x/q")->data(), "d:/a-x/q");
  EXPECT_EQ(t->find("/a")->num_children(), 1);
  EXPECT_EQ(t->find("/")->num_children(), 2);
  // Written back depth first, it loads to the same tree.
  std::string again;
  t->serialize([&](std::string_view chunk) { again += chunk; });
  auto back = DataTree::deserialize(again);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->digest(), t->digest());
  EXPECT_EQ(back->find("/a-x/q")->data(), "d:/a-x/q");
}
