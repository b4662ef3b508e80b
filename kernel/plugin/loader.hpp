// Finds plugin modules by (kind, name) under the plugin directories, checks
// their descriptors and creates their objects.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "corral/sdk/plugin.hpp"

namespace corral::kernel {

// What `corrald --list-plugins` shows for one module file.
struct ModuleInfo {
  std::string path;
  std::string kind, name, summary, build_id;
  std::string abi;    // the contract identity it was built against
  std::string error;  // set when the file could not be read as a plugin
};

class PluginLoader {
 public:
  explicit PluginLoader(std::vector<std::string> dirs);

  // The default directories for a binary at `exe_path`: <bin>/../plugins
  // (a build tree) and the directory `meson install` puts plugins in.
  static std::vector<std::string> default_dirs(const std::string& exe_path);

  const std::vector<std::string>& dirs() const { return dirs_; }

  // Every corral_*.so under the directories, each loaded to read its
  // descriptor (and unloaded again).
  std::vector<ModuleInfo> scan() const;

  // Loads `corral_<kind>_<name>.so`, checks it and creates its plugin object,
  // which keeps the module loaded for as long as it lives. Refusals say what
  // was expected, what was found, and which plugins of the kind exist.
  template <class Interface>
  sdk::Result<std::shared_ptr<Interface>> create(sdk::PluginKind kind,
                                                 const std::string& name) const {
    auto made = create_plugin(kind, name);
    if (!made) return made.status();
    std::shared_ptr<sdk::Plugin> plugin = std::move(made.value());
    auto* typed = dynamic_cast<Interface*>(plugin.get());
    if (!typed)
      return sdk::Status{sdk::Errc::incompatible, "plugin " + describe(kind, name) +
                                                      " does not implement the " +
                                                      sdk::plugin_kind_name(kind) + " interface"};
    return std::shared_ptr<Interface>(plugin, typed);
  }

  sdk::Result<std::shared_ptr<sdk::Plugin>> create_plugin(sdk::PluginKind kind,
                                                          const std::string& name) const;

 private:
  static std::string describe(sdk::PluginKind kind, const std::string& name);
  std::vector<std::string> find_files(const std::string& file_name) const;
  std::vector<std::string> names_of_kind(sdk::PluginKind kind) const;

  std::vector<std::string> dirs_;
};

}  // namespace corral::kernel
