// The plugin contract: a base class, the descriptor every module exports, and
// the macro that declares it.
//
// A module is one shared object named `corral_<kind>_<name>.so` anywhere under
// a plugin directory. It exports one entry point (a Boost.DLL alias named
// "corral_plugin" in section "corral") that returns its descriptor. The loader
// checks the descriptor's ABI, build id, kind and name against what the
// configuration asked for before it calls `create`.
#pragma once

#include <cstdint>
#include <string_view>

#include "corral/sdk/abi_identity.hpp"
#include "corral/sdk/host.hpp"
#include "corral/sdk/status.hpp"

namespace corral::sdk {

// The contract's identity: a hash of its headers (corral/sdk/*.hpp and
// corral/proto/*.hpp) computed when the SDK is built. Any change to a
// declaration in them gives a new identity, and the build refuses it until
// sdk/ABI records the new one; the loader refuses a module whose identity
// differs from the kernel's.
inline constexpr const char* kAbiIdentity = CORRAL_ABI_IDENTITY;

// The descriptor's own layout, which leads it so that any module's can be
// read. Modules built before the identity existed carried their ABI major
// number (5 or lower) in this place.
inline constexpr uint32_t kDescriptorLayout = 6;
inline constexpr uint32_t kDescriptorMagic = 0x43524C50;  // "CRLP"

enum class PluginKind { transport, consensus, election, storage, discovery, recipe };
const char* plugin_kind_name(PluginKind kind) noexcept;
// Parses "storage" etc.; false if `text` names no kind.
bool parse_plugin_kind(std::string_view text, PluginKind& out) noexcept;

// Base of every plugin object. The kernel creates it through the descriptor,
// calls init() once, then uses it through its kind's interface, and destroys it
// before unloading the module.
class Plugin {
 public:
  virtual ~Plugin();
  // Reads config, registers metrics. Must not block or start I/O; the kind's
  // own start call does that. `host` outlives the plugin.
  virtual Status init(PluginHost& host) = 0;
};

// What a module tells the loader about itself. Plain C layout so that it can be
// read before anything else of the module is trusted.
struct PluginDescriptor {
  uint32_t layout;       // kDescriptorLayout
  uint32_t magic;        // kDescriptorMagic
  const char* abi;       // kAbiIdentity of the SDK the module was built against
  const char* build_id;  // compiler, standard library and Boost versions
  const char* kind;      // plugin_kind_name(...)
  const char* name;      // "tcp", "wal", "server-info"
  const char* summary;   // one line for `corrald --list-plugins`
  Plugin* (*create)();   // a new object, owned by the caller; nullptr on failure
};

// The build id a module compiled now would carry. Kernel and modules must
// agree exactly: they share C++ objects and Boost types across the boundary.
const char* build_id() noexcept;

}  // namespace corral::sdk

#define CORRAL_SDK_STRINGIFY2(x) #x
#define CORRAL_SDK_STRINGIFY(x) CORRAL_SDK_STRINGIFY2(x)

// The build id, computed in the module's own translation unit so that a module
// compiled by another toolchain reports what *it* was built with.
#define CORRAL_BUILD_ID                                           \
  "gcc-" CORRAL_SDK_STRINGIFY(__GNUC__) "." CORRAL_SDK_STRINGIFY( \
      __GNUC_MINOR__) "/cxx-" CORRAL_SDK_STRINGIFY(__cplusplus) "/boost-" CORRAL_SDK_STRINGIFY(BOOST_VERSION)

// Declares the plugin a module provides. Use once, in one .cpp file, at global
// scope:
//
//   CORRAL_PLUGIN(recipe, "server-info", ServerInfoRecipe,
//                 "publishes this server's details under a znode")
//
// KIND is one of: transport consensus election storage discovery recipe.
// CLASS must derive from the kind's interface and be default-constructible.
#define CORRAL_PLUGIN(KIND, NAME, CLASS, SUMMARY)                                          \
  namespace {                                                                              \
  ::corral::sdk::Plugin* corral_plugin_create_() noexcept {                                \
    try {                                                                                  \
      return new CLASS();                                                                  \
    } catch (...) {                                                                        \
      return nullptr;                                                                      \
    }                                                                                      \
  }                                                                                        \
  const ::corral::sdk::PluginDescriptor corral_plugin_descriptor_ = {                      \
      ::corral::sdk::kDescriptorLayout,                                                    \
      ::corral::sdk::kDescriptorMagic,                                                     \
      CORRAL_ABI_IDENTITY,                                                                 \
      CORRAL_BUILD_ID,                                                                     \
      #KIND,                                                                               \
      NAME,                                                                                \
      SUMMARY,                                                                             \
      &corral_plugin_create_};                                                             \
  }                                                                                        \
  extern "C" __attribute__((visibility("default"))) const ::corral::sdk::PluginDescriptor* \
  corral_plugin_entry() {                                                                  \
    return &corral_plugin_descriptor_;                                                     \
  }                                                                                        \
  CORRAL_PLUGIN_EXPORT_ENTRY_()

// The alias the loader looks up; see plugin_export.hpp.
#include "corral/sdk/plugin_export.hpp"
