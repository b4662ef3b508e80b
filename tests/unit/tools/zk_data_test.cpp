// ZooKeeper's snapshot and log formats and its replay rules
// (tools/zookeeper/zk_data.cpp): what `corral import zookeeper` reads.
#include "zk_data.hpp"

#include <gtest/gtest.h>
#include <snappy-c.h>
#include <zlib.h>

#include "corral/proto/jute.hpp"

namespace corral::zk {
namespace {

using proto::JuteWriter;

std::string hex(std::string_view b) {
  std::string out;
  char x[3];
  for (unsigned char c : b) {
    std::snprintf(x, sizeof x, "%02x", c);
    out += x;
  }
  return out;
}

TEST(ZkData, SessionPasswordIsJavaRandomsAsZooKeeperDrawsIt) {
  // From java.util.Random(id ^ 0xB3415C00L).nextBytes(new byte[16]) on a JVM.
  EXPECT_EQ(hex(session_password(0x100000abcdefLL)), "f72266253fc5701d7402a32be30f0a18");
  EXPECT_EQ(hex(session_password(-5)), "d47144b5e45e45c49c3b7fdcd66257ba");
  EXPECT_EQ(hex(session_password(0x7fffffffffffffffLL)), "20f62cb5648dc2d771471c8a2486a9ee");
}

ZkTree sample_tree() {
  ZkTree t;
  t.add("/app", {});
  ZkNode& app = t.nodes["/app"];
  app.data = "hello";
  app.czxid = 3;
  app.mzxid = 9;
  app.ctime = 1000;
  app.mtime = 2000;
  app.version = 4;
  app.cversion = 2;
  app.aversion = 1;
  app.pzxid = 8;
  app.acl = t.intern_acl({{31, {"digest", "alice:xyz="}}, {1, {"world", "anyone"}}});
  t.add("/app/e", {});
  t.add("/app/nothing", {});
  ZkNode& e = t.nodes["/app/e"];
  e.owner = 0x100000abcdefLL;
  e.data = std::string("\0\x01\x02", 3);
  t.nodes["/app/nothing"].data_null = true;
  t.sessions[0x100000abcdefLL] = 30000;
  t.sessions[0x100000abcdf0LL] = 4000;
  return t;
}

void expect_same(const ZkTree& a, const ZkTree& b) {
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (const auto& [path, n] : a.nodes) {
    auto it = b.nodes.find(path);
    ASSERT_NE(it, b.nodes.end()) << path;
    const ZkNode& m = it->second;
    EXPECT_EQ(n.data, m.data) << path;
    EXPECT_EQ(n.data_null, m.data_null) << path;
    EXPECT_EQ(a.acls[n.acl], b.acls[m.acl]) << path;
    EXPECT_EQ(std::tie(n.czxid, n.mzxid, n.ctime, n.mtime, n.version, n.cversion, n.aversion,
                       n.owner, n.pzxid),
              std::tie(m.czxid, m.mzxid, m.ctime, m.mtime, m.version, m.cversion, m.aversion,
                       m.owner, m.pzxid))
        << path;
    EXPECT_EQ(n.num_children, m.num_children) << path;
  }
  EXPECT_EQ(a.sessions, b.sessions);
}

TEST(ZkData, SnapshotsRoundTripWithEveryField) {
  ZkTree t = sample_tree();
  std::string bytes = write_snapshot(t);
  ZkTree back;
  ASSERT_TRUE(read_snapshot(bytes, "snap", back));
  expect_same(t, back);
}

TEST(ZkData, ADamagedSnapshotIsRefusedWithItsNameAndOffset) {
  std::string bytes = write_snapshot(sample_tree());
  std::string damaged = bytes;
  damaged[damaged.size() / 2] ^= 0x40;
  ZkTree t;
  sdk::Status st = read_snapshot(damaged, "snapshot.9", t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("snapshot.9 at byte "), std::string::npos) << st.message();

  // Cut short anywhere: an error, never a partial tree.
  for (size_t cut : {size_t{10}, bytes.size() / 3, bytes.size() - 40, bytes.size() - 30}) {
    ZkTree u;
    sdk::Status s = read_snapshot(std::string_view(bytes).substr(0, cut), "snapshot.9", u);
    EXPECT_FALSE(s) << "cut at " << cut;
  }
}

TEST(ZkData, AThreeNineSnapshotWithTheDigestOffHasOnlyTheLastZxidAfterItsSeal) {
  std::string bytes = write_snapshot(sample_tree());
  bytes.resize(bytes.size() - 33);  // the digest and its seal
  JuteWriter w(bytes);
  w.write_long(0x500000123);  // lastProcessedZxid
  w.write_long(adler32(bytes));
  w.write_string("/");
  ZkTree t;
  sdk::Status st = read_snapshot(bytes, "snapshot.1", t);
  ASSERT_TRUE(st) << st.message();
  expect_same(sample_tree(), t);
  bytes += "x";  // and nothing may follow
  EXPECT_FALSE(read_snapshot(bytes, "snapshot.1", t));
}

TEST(ZkData, CountsLargerThanTheBytesAreRefusedBeforeAnythingIsSized) {
  std::string bytes;
  JuteWriter w(bytes);
  w.write_int(kSnapMagic);
  w.write_int(2);
  w.write_long(-1);
  w.write_int(0x7fffffff);  // sessions
  w.write_long(1);
  ZkTree t;
  sdk::Status st = read_snapshot(bytes, "s", t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("session table"), std::string::npos) << st.message();

  bytes.clear();
  w.write_int(kSnapMagic);
  w.write_int(2);
  w.write_long(-1);
  w.write_int(0);  // sessions
  w.write_int(1);  // one ACL list...
  w.write_long(7);
  w.write_int(0x10000000);  // ...claiming 268M entries
  st = read_snapshot(bytes, "s", t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("ACL"), std::string::npos) << st.message();
}

std::string gzip(std::string_view in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// snappy-java's framing: magic, version, compatible version, then blocks.
std::string snappy_java(std::string_view in, size_t block) {
  std::string out("\x82SNAPPY\0", 8);
  JuteWriter w(out);
  w.write_int(1);
  w.write_int(1);
  for (size_t at = 0; at < in.size(); at += block) {
    std::string_view piece = in.substr(at, block);
    size_t n = snappy_max_compressed_length(piece.size());
    std::string c(n, '\0');
    EXPECT_EQ(snappy_compress(piece.data(), piece.size(), c.data(), &n), SNAPPY_OK);
    c.resize(n);
    w.write_int(static_cast<int32_t>(n));
    out += c;
  }
  return out;
}

TEST(ZkData, GzipAndSnappySnapshotsReadAsZooKeeperWritesThem) {
  std::string plain = write_snapshot(sample_tree());
  auto g = snapshot_stream(gzip(plain), "snapshot.5.gz");
  ASSERT_TRUE(g) << g.status().message();
  EXPECT_EQ(g.value(), plain);
  auto s = snapshot_stream(snappy_java(plain, 64), "snapshot.5.snappy");
  ASSERT_TRUE(s) << s.status().message();
  EXPECT_EQ(s.value(), plain);
  EXPECT_EQ(snapshot_stream(plain, "snapshot.5").value(), plain);

  std::string bad = gzip(plain);
  bad.resize(bad.size() / 2);
  auto cut = snapshot_stream(bad, "snapshot.5.gz");
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.status().message().find("snapshot.5.gz"), std::string::npos);
  std::string sbad = snappy_java(plain, 64);
  sbad[30] ^= 0x7f;
  sbad.resize(sbad.size() - 3);
  EXPECT_FALSE(snapshot_stream(sbad, "snapshot.5.snappy").is_ok());
  EXPECT_FALSE(snapshot_stream("not snappy at all", "snapshot.5.snappy").is_ok());
}

// ---- transactions, as ZooKeeper logs them ----

std::string header(int64_t session, int64_t zxid, int32_t type, int64_t time = 5000) {
  std::string b;
  JuteWriter w(b);
  w.write_long(session);
  w.write_int(1);
  w.write_long(zxid);
  w.write_long(time);
  w.write_int(type);
  return b;
}

std::string open_acl() {
  std::string b;
  JuteWriter w(b);
  proto::write(w, proto::open_acl_unsafe());
  return b;
}

std::string create_body(std::string_view path, std::string_view data, bool ephemeral,
                        int32_t parent_cversion) {
  std::string b;
  JuteWriter w(b);
  w.write_string(path);
  w.write_buffer(data);
  b += open_acl();
  w.write_bool(ephemeral);
  w.write_int(parent_cversion);
  return b;
}

std::string create(int64_t zxid, std::string_view path, int32_t parent_cversion,
                   int64_t session = 0, bool ephemeral = false) {
  return header(session, zxid, 1) + create_body(path, "d", ephemeral, parent_cversion);
}

std::string remove(int64_t zxid, std::string_view path) {
  std::string b = header(0, zxid, 2);
  JuteWriter(b).write_string(path);
  return b;
}

TEST(ZkData, ReplayFollowsZooKeepersRulesForAFuzzySnapshot) {
  ZkTree t;
  ReplayCounts c;
  ASSERT_TRUE(t.apply(create(10, "/a", 1), c));
  ASSERT_TRUE(t.apply(create(11, "/a/x", 1), c));
  EXPECT_EQ(t.nodes["/a"].cversion, 1);
  EXPECT_EQ(t.nodes["/a"].pzxid, 11);
  // The snapshot already held /a/y, but not its parent's update: the
  // create fails and still moves the parent's cversion and pzxid on.
  t.add("/a/y", {});
  ASSERT_TRUE(t.apply(create(12, "/a/y", 2), c));
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(t.nodes["/a"].cversion, 2);
  EXPECT_EQ(t.nodes["/a"].pzxid, 12);
  // A delete of a node the snapshot no longer holds: the parent's pzxid moves.
  ASSERT_TRUE(t.apply(remove(13, "/a/gone"), c));
  EXPECT_EQ(c.failed, 2u);
  EXPECT_EQ(t.nodes["/a"].pzxid, 13);
  // ...but never back.
  ASSERT_TRUE(t.apply(remove(12, "/a/x"), c));
  EXPECT_EQ(t.nodes["/a"].pzxid, 13);
  EXPECT_FALSE(t.nodes.count("/a/x"));
  EXPECT_EQ(t.nodes["/a"].num_children, 1);  // /a/y
  EXPECT_EQ(t.zxid, 13);
  // Set data and ACL take the versions the log carries.
  std::string set = header(0, 14, 5);
  JuteWriter w(set);
  w.write_string("/a");
  w.write_buffer("new");
  w.write_int(7);
  ASSERT_TRUE(t.apply(set, c));
  EXPECT_EQ(t.nodes["/a"].data, "new");
  EXPECT_EQ(t.nodes["/a"].version, 7);
  EXPECT_EQ(t.nodes["/a"].mzxid, 14);
  EXPECT_EQ(t.nodes["/a"].mtime, 5000);
}

TEST(ZkData, SessionsAndTheirEphemeralsComeAndGoWithTheLog) {
  ZkTree t;
  ReplayCounts c;
  const int64_t s = 0x100000000000abLL;
  std::string open = header(s, 1, -10);
  JuteWriter(open).write_int(12000);
  ASSERT_TRUE(t.apply(open, c));
  EXPECT_EQ(t.sessions.at(s), 12000);
  ASSERT_TRUE(t.apply(create(2, "/e1", -1, s, true), c));
  ASSERT_TRUE(t.apply(create(3, "/e2", -1, s, true), c));
  EXPECT_EQ(t.nodes["/e1"].owner, s);
  EXPECT_EQ(t.ephemerals()[s].size(), 2u);
  // 3.6+ lists the paths; each ephemeral goes either way.
  std::string close = header(s, 4, -11);
  JuteWriter cw(close);
  cw.write_int(1);
  cw.write_string("/e1");
  ASSERT_TRUE(t.apply(close, c));
  EXPECT_FALSE(t.nodes.count("/e1"));
  EXPECT_FALSE(t.nodes.count("/e2"));
  EXPECT_FALSE(t.sessions.count(s));
  EXPECT_EQ(t.nodes[""].pzxid, 4);

  // closeSession with zookeeper.closeSessionTxn.enabled=false: only the
  // TxnDigest follows the header.
  std::string open2 = header(s, 5, -10);
  JuteWriter(open2).write_int(9000);
  ASSERT_TRUE(t.apply(open2, c));
  ASSERT_TRUE(t.apply(create(6, "/e3", -1, s, true), c));
  std::string close2 = header(s, 7, -11);
  JuteWriter dw(close2);
  dw.write_int(2);  // TxnDigest: version, tree digest
  dw.write_long(0x1234567890LL);
  ASSERT_TRUE(t.apply(close2, c));
  EXPECT_FALSE(t.nodes.count("/e3"));
  EXPECT_FALSE(t.sessions.count(s));

  // Loading: ephemerals of sessions that are not in the table go.
  ZkNode orphan;
  orphan.owner = 0x2000000000000001LL;
  t.add("/orphan", orphan);
  EXPECT_EQ(t.drop_orphan_ephemerals(), 1u);
  EXPECT_FALSE(t.nodes.count("/orphan"));
}

TEST(ZkData, AMultiWithAnErrorAppliesNothingAndTtlAndContainerOwnersAreZooKeepers) {
  ZkTree t;
  ReplayCounts c;
  auto multi = [](int64_t zxid, const std::vector<std::pair<int32_t, std::string>>& subs) {
    std::string b = header(0, zxid, 14);
    JuteWriter w(b);
    w.write_int(static_cast<int32_t>(subs.size()));
    for (const auto& [type, data] : subs) {
      w.write_int(type);
      w.write_buffer(data);
    }
    return b;
  };
  std::string err;
  JuteWriter(err).write_int(-101);
  ASSERT_TRUE(t.apply(multi(5, {{1, create_body("/m1", "x", false, 1)}, {-1, err}}), c));
  EXPECT_FALSE(t.nodes.count("/m1"));
  ASSERT_TRUE(t.apply(
      multi(6, {{1, create_body("/m1", "x", false, 1)}, {1, create_body("/m2", "y", false, 2)}}),
      c));
  EXPECT_TRUE(t.nodes.count("/m1") && t.nodes.count("/m2"));
  EXPECT_EQ(t.nodes["/m2"].czxid, 6);

  std::string ttl = header(0, 7, 21);
  JuteWriter tw(ttl);
  tw.write_string("/ttl");
  tw.write_buffer("");
  ttl += open_acl();
  tw.write_int(-1);
  tw.write_long(60000);
  ASSERT_TRUE(t.apply(ttl, c));
  EXPECT_EQ(static_cast<uint64_t>(t.nodes["/ttl"].owner), 0xff00000000000000ULL | 60000);
  std::string box = header(0, 8, 19);
  JuteWriter bw(box);
  bw.write_string("/box");
  bw.write_buffer("");
  box += open_acl();
  bw.write_int(-1);
  ASSERT_TRUE(t.apply(box, c));
  EXPECT_EQ(t.nodes["/box"].owner, INT64_MIN);

  // What ZooKeeper never logs is an error, not a guess.
  EXPECT_FALSE(t.apply(multi(9, {{-10, "xxxx"}}), c));
  EXPECT_FALSE(t.apply(header(0, 9, 99), c));
  EXPECT_FALSE(t.apply(create(9, "/cut", 1).substr(0, 40), c));
}

// A log file: header, entries {Adler-32, length, bytes, 'B'}, then zeros.
std::string log_file(const std::vector<std::string>& entries, size_t padding = 64) {
  std::string f;
  JuteWriter w(f);
  w.write_int(kLogMagic);
  w.write_int(2);
  w.write_long(0);
  for (const std::string& e : entries) {
    w.write_long(adler32(e));
    w.write_buffer(e);
    f.push_back('B');
  }
  f.append(padding, '\0');
  return f;
}

TEST(ZkData, LogsReadToTheLastCompleteEntryAndDamageIsNamed) {
  std::vector<std::string> entries = {create(1, "/a", 1), create(2, "/b", 2), create(3, "/c", 3)};
  std::string file = log_file(entries);
  std::vector<int64_t> seen;
  auto visit = [&](std::string_view, int64_t zxid, size_t) -> sdk::Status {
    seen.push_back(zxid);
    return {};
  };
  LogScan scan;
  ASSERT_TRUE(scan_log(file, "log.1", visit, scan));
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(scan.torn);

  // The last entry cut short by a crash: the ones before it, and where.
  std::string torn = log_file(entries, 0);
  torn.resize(torn.size() - 10);
  seen.clear();
  scan = {};
  ASSERT_TRUE(scan_log(torn, "log.1", visit, scan));
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(scan.torn);
  const size_t third = 16 + 2 * (8 + 4 + entries[0].size() + 1);
  EXPECT_EQ(scan.torn_at, third);

  // A bad checksum is damage, named with the file and offset.
  std::string bad = file;
  bad[third + 20] ^= 1;
  scan = {};
  sdk::Status st = scan_log(bad, "log.1", visit, scan);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("log.1 at byte " + std::to_string(third)), std::string::npos)
      << st.message();
  EXPECT_FALSE(scan_log("ZKSN and more bytes", "log.1", visit, scan));
}

}  // namespace
}  // namespace corral::zk
