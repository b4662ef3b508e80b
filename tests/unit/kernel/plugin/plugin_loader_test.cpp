#include <gtest/gtest.h>

#include "corral/sdk/storage.hpp"
#include "corral/sdk/transport.hpp"
#include "plugin/loader.hpp"

using namespace corral;
using corral::kernel::PluginLoader;

namespace {
PluginLoader loader() { return PluginLoader({CORRAL_TEST_FIXTURE_DIR, CORRAL_TEST_PLUGIN_DIR}); }
}  // namespace

TEST(PluginLoader, CreatesAPluginOfTheAskedKind) {
  auto t = loader().create<sdk::Transport>(sdk::PluginKind::transport, "tcp");
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_NE(t.value().get(), nullptr);
}

TEST(PluginLoader, UnknownNameListsWhatExists) {
  auto s = loader().create<sdk::Storage>(sdk::PluginKind::storage, "nosuch");
  ASSERT_FALSE(s);
  std::string m = s.status().message();
  EXPECT_NE(m.find("no storage plugin named 'nosuch'"), std::string::npos) << m;
  EXPECT_NE(m.find("available storage plugins:"), std::string::npos) << m;
  EXPECT_NE(m.find("memory"), std::string::npos) << m;
}

TEST(PluginLoader, RefusesAnAbiMismatchSayingExpectedAndFound) {
  auto s = loader().create<sdk::Storage>(sdk::PluginKind::storage, "badabi");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), sdk::Errc::incompatible);
  std::string m = s.status().message();
  EXPECT_NE(m.find("plugin ABI 0123456789abcdef found, expected plugin ABI " +
                   std::string(sdk::kAbiIdentity)),
            std::string::npos)
      << m;
}

TEST(PluginLoader, RefusesAModuleFromBeforeTheIdentityNamingBoth) {
  auto s = loader().create<sdk::Storage>(sdk::PluginKind::storage, "oldabi");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), sdk::Errc::incompatible);
  std::string m = s.status().message();
  EXPECT_NE(m.find("plugin ABI 5.0 (a module from before plugins carried an ABI identity), "
                   "expected plugin ABI " +
                   std::string(sdk::kAbiIdentity)),
            std::string::npos)
      << m;
}

TEST(PluginLoader, TheIdentityIsSixteenHexDigits) {
  std::string id = sdk::kAbiIdentity;
  ASSERT_EQ(id.size(), 16u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
}

TEST(PluginLoader, RefusesAModuleOfTheWrongKind) {
  auto s = loader().create<sdk::Storage>(sdk::PluginKind::storage, "wrongkind");
  ASSERT_FALSE(s);
  std::string m = s.status().message();
  EXPECT_NE(m.find("is a transport plugin, expected a storage plugin"), std::string::npos) << m;
}

TEST(PluginLoader, RefusesASharedObjectThatIsNoPlugin) {
  auto s = loader().create<sdk::Storage>(sdk::PluginKind::storage, "noentry");
  ASSERT_FALSE(s);
  EXPECT_NE(s.status().message().find("not a Corral plugin"), std::string::npos)
      << s.status().message();
}

TEST(PluginLoader, ScanDescribesEveryModule) {
  auto mods = loader().scan();
  bool saw_tcp = false, saw_bad = false;
  for (const auto& m : mods) {
    if (m.kind == "transport" && m.name == "tcp") saw_tcp = true;
    if (m.path.find("corral_storage_noentry") != std::string::npos) saw_bad = !m.error.empty();
  }
  EXPECT_TRUE(saw_tcp);
  EXPECT_TRUE(saw_bad);
}
