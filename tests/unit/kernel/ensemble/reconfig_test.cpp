// The reconfig policy and the dynamic config format, as tables.
#include "ensemble/reconfig.hpp"

#include <gtest/gtest.h>

#include "ensemble/dynamic_config.hpp"

using namespace corral;
using corral::kernel::plan_reconfig;
using corral::kernel::ReconfigState;
using proto::Err;

namespace {

std::vector<sdk::PeerSpec> members(const std::string& text) {
  std::vector<sdk::PeerSpec> out;
  sdk::Zxid v = 0;
  std::string why;
  EXPECT_TRUE(kernel::parse_dynamic_config(text, out, v, why)) << why;
  return out;
}

// Three participants, server 1 leading with 2 and 3 synced.
ReconfigState three() {
  ReconfigState s;
  s.enabled = true;
  s.version = 0x100000000;
  s.members =
      members("server.1=h1:2888:3888;2181\nserver.2=h2:2888:3888;2181\nserver.3=h3:2888:3888;2181");
  s.self = 1;
  s.synced_learners = {2, 3};
  s.may_write_config = true;
  return s;
}

proto::ReconfigRequest incremental(const char* joining, const char* leaving) {
  proto::ReconfigRequest r;
  r.joining_null = joining == nullptr;
  r.leaving_null = leaving == nullptr;
  r.new_members_null = true;
  if (joining) r.joining = joining;
  if (leaving) r.leaving = leaving;
  r.cur_config_id = -1;
  return r;
}

std::string ids(const std::vector<sdk::PeerSpec>& ms) {
  std::string s;
  for (const auto& m : ms) s += std::to_string(m.id) + (m.observer ? "o" : "") + " ";
  return s;
}

}  // namespace

TEST(DynamicConfig, FormatsAndReadsBack) {
  auto ms = members("server.2=h2:2888:3888:observer;2181\nserver.1=h1:2888:3888;127.0.0.1:2181");
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].id, 1) << "sorted by id";
  std::string text = kernel::format_dynamic_config(ms, 0x200000003);
  EXPECT_EQ(text,
            "server.1=h1:2888:3888:participant;127.0.0.1:2181\n"
            "server.2=h2:2888:3888:observer;0.0.0.0:2181\n"
            "version=200000003");
  std::vector<sdk::PeerSpec> back;
  sdk::Zxid v = 0;
  std::string why;
  ASSERT_TRUE(kernel::parse_dynamic_config(text, back, v, why)) << why;
  EXPECT_EQ(v, 0x200000003);
  EXPECT_EQ(kernel::format_dynamic_config(back, v), text);
}

TEST(DynamicConfig, RefusesMalformedText) {
  struct Row {
    const char* text;
    const char* why;
  } rows[] = {
      {"server.1", "is not key=value"},
      {"version=xyz", "hexadecimal"},
      {"port=1", "unknown key"},
      {"server.0=h:1:2", "positive server id"},
      {"server.1=h:1:2\nserver.1=h:3:4", "listed twice"},
      {"server.1=h", "server.1: expected"},
  };
  for (const auto& r : rows) {
    std::vector<sdk::PeerSpec> ms;
    sdk::Zxid v = 0;
    std::string why;
    EXPECT_FALSE(kernel::parse_dynamic_config(r.text, ms, v, why)) << r.text;
    EXPECT_NE(why.find(r.why), std::string::npos) << r.text << ": " << why;
  }
}

TEST(Reconfig, Plans) {
  struct Row {
    const char* what;
    std::function<void(ReconfigState&, proto::ReconfigRequest&)> setup;
    Err err;
    const char* next;  // member ids when ok
  } rows[] = {
      {"add a server",
       [](auto&, auto& r) { r = incremental("server.4=h4:2888:3888;2181", nullptr); }, Err::ok,
       "1 2 3 4 "},
      {"add an observer",
       [](auto&, auto& r) { r = incremental("server.4=h4:2888:3888:observer;2181", nullptr); },
       Err::ok, "1 2 3 4o "},
      {"remove one", [](auto&, auto& r) { r = incremental(nullptr, "3"); }, Err::ok, "1 2 "},
      {"turn a participant into an observer",
       [](auto&, auto& r) { r = incremental("server.3=h3:2888:3888:observer;2181", nullptr); },
       Err::ok, "1 2 3o "},
      {"a whole new membership",
       [](auto&, auto& r) {
         r = incremental(nullptr, nullptr);
         r.new_members_null = false;
         r.new_members = "server.1=h1:2888:3888;2181,server.2=h2:2888:3888;2181";
       },
       Err::ok, "1 2 "},
      {"disabled", [](auto& s, auto& r) { s.enabled = false, r = incremental(nullptr, "3"); },
       Err::reconfig_disabled, ""},
      {"the session expired",
       [](auto& s, auto& r) { s.session_alive = false, r = incremental(nullptr, "3"); },
       Err::session_expired, ""},
      {"one in progress", [](auto& s, auto& r) { s.pending = true, r = incremental(nullptr, "3"); },
       Err::reconfig_in_progress, ""},
      {"from another version",
       [](auto&, auto& r) {
         r = incremental(nullptr, "3");
         r.cur_config_id = 0x5;
       },
       Err::bad_version, ""},
      {"from this version",
       [](auto&, auto& r) {
         r = incremental(nullptr, "3");
         r.cur_config_id = 0x100000000;
       },
       Err::ok, "1 2 "},
      {"a leaving id that is no number", [](auto&, auto& r) { r = incremental(nullptr, "x"); },
       Err::bad_arguments, ""},
      {"a joiner without a client port",
       [](auto&, auto& r) { r = incremental("server.4=h4:2888:3888", nullptr); },
       Err::bad_arguments, ""},
      {"a joiner on another's ports",
       [](auto&, auto& r) { r = incremental("server.4=h3:2888:3999;2181", nullptr); },
       Err::bad_arguments, ""},
      {"a joiner without an id",
       [](auto&, auto& r) { r = incremental("server.x=h4:1:2;3", nullptr); }, Err::bad_arguments,
       ""},
      {"down to one participant", [](auto&, auto& r) { r = incremental(nullptr, "2,3"); }, Err::ok,
       "1 "},
      {"no participant left",
       [](auto&, auto& r) { r = incremental("server.1=h1:2888:3888:observer;2181", "2,3"); },
       Err::bad_arguments, ""},
      {"an observer the change makes a voter counts toward its quorum",
       [](auto& s, auto& r) {
         s.members.push_back(members("server.4=h4:2888:3888:observer;2181").at(0));
         s.synced_learners = {4};
         r = incremental("server.4=h4:2888:3888;2181", "2,3");
       },
       Err::ok, "1 4 "},
      {"an observer that is not synced does not count",
       [](auto& s, auto& r) {
         s.members.push_back(members("server.4=h4:2888:3888:observer;2181").at(0));
         s.synced_learners = {};
         r = incremental("server.4=h4:2888:3888;2181", "2,3");
       },
       Err::new_config_no_quorum, ""},
      {"new voters that do not follow this leader",
       [](auto&, auto& r) {
         r = incremental("server.4=h4:2888:3888;2181,server.5=h5:2888:3888;2181", "2,3");
       },
       Err::new_config_no_quorum, ""},
      {"a quorum of the new voters follows",
       [](auto& s, auto& r) {
         s.synced_learners = {2};
         r = incremental(nullptr, "3");
       },
       Err::ok, "1 2 "},
      {"no permission",
       [](auto& s, auto& r) { s.may_write_config = false, r = incremental(nullptr, "3"); },
       Err::no_auth, ""},
      {"disabled comes before everything",
       [](auto& s, auto& r) {
         s.enabled = false;
         s.pending = true;
         s.may_write_config = false;
         r = incremental(nullptr, "x");
       },
       Err::reconfig_disabled, ""},
  };
  for (const auto& row : rows) {
    ReconfigState s = three();
    proto::ReconfigRequest r;
    row.setup(s, r);
    auto plan = plan_reconfig(r, s);
    EXPECT_EQ(plan.err, row.err) << row.what << ": " << plan.why;
    if (row.err == Err::ok)
      EXPECT_EQ(ids(plan.next), row.next) << row.what;
    else
      EXPECT_FALSE(plan.why.empty()) << row.what;
  }
}
