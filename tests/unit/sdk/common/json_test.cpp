#include "corral/common/json.hpp"

#include <gtest/gtest.h>

using corral::common::JsonValue;

TEST(Json, ParsesWhatDockerAndCuratorWrite) {
  auto v = JsonValue::parse(
      R"( {"Id":"4f2a","Labels":{"corral.server-id":"2"},"Ports":[{"PrivatePort":2181}],
      "payload":null,"port":2181,"ratio":-1.5e3,"ok":true,"name":"caf\u00e9 \ud83d\ude00","esc":"a\"b\\c\/d\n"} )");
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(v->get_string("Id"), "4f2a");
  EXPECT_EQ(v->get("Labels")->get_string("corral.server-id"), "2");
  EXPECT_EQ(v->get("Ports")->as_array()->at(0).get("PrivatePort")->as_int(), 2181);
  EXPECT_TRUE(v->get("payload")->is_null());
  EXPECT_EQ(v->get("ratio")->as_double(), -1500.0);
  EXPECT_FALSE(v->get("ratio")->as_int());
  EXPECT_EQ(v->get("ok")->as_bool(), true);
  EXPECT_EQ(v->get_string("name"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(v->get_string("esc"), "a\"b\\c/d\n");
  EXPECT_EQ(v->get("missing"), nullptr);
  EXPECT_EQ(v->get_string("missing", "dflt"), "dflt");
}

TEST(Json, WritesBackWhatItRead) {
  std::string text = R"({"b":[1,2.50,{"c":"x"}],"a":{"z":null,"y":false},"n":12345678901234567})";
  auto v = JsonValue::parse(text);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dump(), text);  // member order and number spelling kept
  EXPECT_EQ(v->get("n")->as_int(), 12345678901234567);
  JsonValue built = JsonValue::object();
  built.set("name", JsonValue::string("api")).set("port", JsonValue::integer(8080));
  built.set("name", JsonValue::string("web"));
  EXPECT_EQ(built.dump(), R"({"name":"web","port":8080})");
}

TEST(Json, MalformedTextIsRefusedWithItsOffset) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"", "byte 0"},
      {"{\"a\":1,}", "byte 7"},
      {"[1 2]", "byte 3"},
      {"{\"a\" 1}", "expected ':'"},
      {"\"open", "missing closing quote"},
      {"01", "expected end of input"},
      {"tru", "invalid literal"},
      {"\"\\x\"", "forbidden character after backslash"},
      {"\"\\ud800\"", "must be followed by U+DC00..U+DFFF"},
      {"\"a\tb\"", "control character"},
      {"1.", "expected digit after '.'"},
      {"{} {}", "expected end of input"},
      {"\"\xff\"", "ill-formed UTF-8"},
  };
  for (const auto& c : cases) {
    auto v = JsonValue::parse(c.text);
    ASSERT_FALSE(v) << c.text;
    EXPECT_NE(v.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << v.status().message();
  }
  // Deep nesting is refused, not a stack overflow.
  std::string deep(100000, '[');
  auto v = JsonValue::parse(deep);
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("nested deeper"), std::string::npos);
}
