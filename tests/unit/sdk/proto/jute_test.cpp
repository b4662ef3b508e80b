#include "corral/proto/jute.hpp"

#include <gtest/gtest.h>

#include "corral/proto/records.hpp"

using namespace corral::proto;

namespace {

template <class T>
std::string encode(const T& v) {
  std::string out;
  JuteWriter w(out);
  write(w, v);
  return out;
}

}  // namespace

TEST(Jute, IntegersAreBigEndian) {
  std::string out;
  JuteWriter w(out);
  w.write_int(0x01020304);
  w.write_long(-2);
  ASSERT_EQ(out.size(), 12u);
  EXPECT_EQ(out.substr(0, 4), std::string("\x01\x02\x03\x04", 4));
  JuteReader r(out);
  EXPECT_EQ(r.read_int(), 0x01020304);
  EXPECT_EQ(r.read_long(), -2);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

TEST(Jute, NullBufferReadsAsEmptyAndIsReported) {
  std::string out;
  JuteWriter w(out);
  w.write_null_buffer();
  JuteReader r(out);
  bool was_null = false;
  EXPECT_EQ(r.read_buffer(&was_null), "");
  EXPECT_TRUE(was_null);
  EXPECT_TRUE(r.ok());
}

TEST(Jute, NegativeOrOversizedLengthsFail) {
  for (int32_t len : {-2, -100, 5, 1 << 30}) {
    std::string out;
    JuteWriter w(out);
    w.write_int(len);
    out += "abc";
    JuteReader r(out);
    r.read_buffer();
    EXPECT_FALSE(r.ok()) << len;
  }
}

TEST(Jute, VectorCountLargerThanInputFails) {
  std::string out;
  JuteWriter w(out);
  w.write_int(1000000);
  JuteReader r(out);
  std::vector<std::string> v;
  EXPECT_FALSE(read(r, v));
}

TEST(Jute, StatRoundTripsIn68Bytes) {
  Stat s{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::string b = encode(s);
  EXPECT_EQ(b.size(), kStatSize);
  JuteReader r(b);
  Stat back;
  ASSERT_TRUE(read(r, back));
  EXPECT_EQ(back, s);
}

TEST(Jute, ConnectRequestWithAndWithoutReadOnly) {
  ConnectRequest req;
  req.timeout_ms = 30000;
  req.password.assign(16, 'p');
  std::string old_client = encode(req);
  EXPECT_EQ(old_client.size(), 44u);
  req.has_read_only = true;
  req.read_only = true;
  std::string new_client = encode(req);
  EXPECT_EQ(new_client.size(), 45u);

  ConnectRequest a, b;
  JuteReader ra(old_client), rb(new_client);
  ASSERT_TRUE(read(ra, a));
  ASSERT_TRUE(read(rb, b));
  EXPECT_FALSE(a.has_read_only);
  EXPECT_TRUE(b.has_read_only);
  EXPECT_TRUE(b.read_only);
  EXPECT_EQ(a.timeout_ms, 30000);
}

TEST(Jute, EveryTruncationOfACreateRequestFails) {
  CreateRequest req{"/a/b", "data", open_acl_unsafe(), 1, 0};
  std::string full = encode(req);
  for (size_t n = 0; n < full.size(); ++n) {
    JuteReader r(std::string_view(full).substr(0, n));
    CreateRequest back;
    EXPECT_FALSE(read(r, back)) << "accepted a request cut at byte " << n;
  }
  JuteReader r(full);
  CreateRequest back;
  ASSERT_TRUE(read(r, back));
  EXPECT_EQ(back.path, "/a/b");
  EXPECT_EQ(back.acl, open_acl_unsafe());
  EXPECT_EQ(back.flags, 1);
}

TEST(Jute, FramesCarryTheirLength) {
  std::string out;
  JuteWriter w(out);
  size_t at = w.begin_frame();
  write(w, ReplyHeader{7, 9, -101});
  w.finish_frame(at);
  JuteReader r(out);
  EXPECT_EQ(r.read_int(), 16);
  ReplyHeader h;
  ASSERT_TRUE(read(r, h));
  EXPECT_EQ(h.xid, 7);
  EXPECT_EQ(h.err, -101);
}

// ZooKeeper's PathUtils.validatePath, case by case.
TEST(Paths, ValidationMatchesZooKeeper) {
  EXPECT_EQ(path_error("/"), nullptr);
  EXPECT_EQ(path_error("/a/b-c_d.e"), nullptr);
  EXPECT_EQ(path_error("/a/..b"), nullptr);
  EXPECT_EQ(path_error("/a/.b"), nullptr);
  EXPECT_EQ(path_error("/\xc3\xa9t\xc3\xa9"), nullptr);  // UTF-8 is fine
  EXPECT_NE(path_error(""), nullptr);
  EXPECT_NE(path_error("a"), nullptr);
  EXPECT_NE(path_error("/a/"), nullptr);
  EXPECT_EQ(path_error("/a/", /*sequential=*/true), nullptr);
  EXPECT_NE(path_error("//a"), nullptr);
  EXPECT_NE(path_error("/a//b"), nullptr);
  EXPECT_NE(path_error("/a/."), nullptr);
  EXPECT_NE(path_error("/a/.."), nullptr);
  EXPECT_NE(path_error("/a/./b"), nullptr);
  EXPECT_NE(path_error("/a/../b"), nullptr);
  EXPECT_NE(path_error(std::string_view("/a\0b", 4)), nullptr);
  EXPECT_NE(path_error("/a\x01"), nullptr);
  EXPECT_NE(path_error("/a\x7f"), nullptr);
  EXPECT_NE(path_error("/a\xc2\x85"), nullptr);          // U+0085
  EXPECT_NE(path_error("/a\xef\xbf\xbf"), nullptr);      // U+FFFF
  EXPECT_NE(path_error("/a\xf0\x9f\x98\x80"), nullptr);  // outside the BMP
  EXPECT_NE(path_error("/a\xff"), nullptr);              // not UTF-8
}

TEST(Paths, ParentAndBaseName) {
  EXPECT_EQ(parent_path("/a/b"), "/a");
  EXPECT_EQ(parent_path("/a"), "/");
  EXPECT_EQ(base_name("/a/b"), "b");
}
