#include "plugin/loader.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <boost/system/error_code.hpp>
#include <filesystem>
#include <set>
#include <vector>  // boost/dll/library_info.hpp misses it in Boost 1.74

namespace corral::kernel {

namespace fs = std::filesystem;
using sdk::Errc;
using sdk::Status;

namespace {

constexpr const char* kPrefix = "corral_";
constexpr const char* kSuffix = ".so";
constexpr const char* kEntry = "corral_plugin";

using EntryFn = const sdk::PluginDescriptor*();

// Opens a module and reads its descriptor; the library must stay loaded while
// the descriptor is used.
sdk::Result<const sdk::PluginDescriptor*> open_module(const std::string& path,
                                                      boost::dll::shared_library& lib) {
  std::error_code ec;
  lib.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* why = dlerror();
    return Status{Errc::invalid_argument,
                  path + ": cannot load: " + (why ? std::string(why) : ec.message())};
  }
  if (!lib.has(kEntry))
    return Status{Errc::incompatible, path + ": not a Corral plugin (no '" + kEntry +
                                          "' entry point; declare it with CORRAL_PLUGIN)"};
  const sdk::PluginDescriptor* d = lib.get_alias<EntryFn>(kEntry)();
  if (!d) return Status{Errc::incompatible, path + ": its entry point returned no descriptor"};
  // The layout leads the descriptor in every version; nothing after it is read
  // until it matches.
  if (d->layout != sdk::kDescriptorLayout || d->magic != sdk::kDescriptorMagic) {
    std::string found =
        d->layout < sdk::kDescriptorLayout
            ? "plugin ABI " + std::to_string(d->layout) + "." + std::to_string(d->magic) +
                  " (a module from before plugins carried an ABI identity)"
            : "a descriptor of layout " + std::to_string(d->layout) + " this kernel cannot read";
    return Status{Errc::incompatible, path + ": " + found + ", expected plugin ABI " +
                                          sdk::kAbiIdentity +
                                          "; rebuild the plugin against this SDK"};
  }
  return d;
}

}  // namespace

PluginLoader::PluginLoader(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

std::vector<std::string> PluginLoader::default_dirs(const std::string& exe_path) {
  fs::path bin = fs::path(exe_path).parent_path();
  return {(bin / ".." / "plugins").lexically_normal().string(), CORRAL_INSTALLED_PLUGIN_DIR};
}

std::string PluginLoader::describe(sdk::PluginKind kind, const std::string& name) {
  return std::string(sdk::plugin_kind_name(kind)) + " '" + name + "'";
}

std::vector<std::string> PluginLoader::find_files(const std::string& file_name) const {
  std::vector<std::string> out;
  for (const std::string& dir : dirs_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(
             dir, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::string fname = it->path().filename().string();
      bool wanted = file_name.empty() ? fname.rfind(kPrefix, 0) == 0 && fname.size() > 3 &&
                                            fname.compare(fname.size() - 3, 3, kSuffix) == 0
                                      : fname == file_name;
      if (wanted && it->is_regular_file(ec)) out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> PluginLoader::names_of_kind(sdk::PluginKind kind) const {
  std::string prefix = std::string(kPrefix) + sdk::plugin_kind_name(kind) + "_";
  std::set<std::string> names;
  for (const std::string& path : find_files("")) {
    std::string f = fs::path(path).filename().string();
    if (f.rfind(prefix, 0) == 0)
      names.insert(f.substr(prefix.size(), f.size() - prefix.size() - 3));
  }
  return {names.begin(), names.end()};
}

std::vector<ModuleInfo> PluginLoader::scan() const {
  std::vector<ModuleInfo> out;
  for (const std::string& path : find_files("")) {
    ModuleInfo info;
    info.path = path;
    boost::dll::shared_library lib;
    auto d = open_module(path, lib);
    if (!d) {
      info.error = d.status().message();
    } else {
      const sdk::PluginDescriptor* desc = d.value();
      info.kind = desc->kind ? desc->kind : "";
      info.name = desc->name ? desc->name : "";
      info.summary = desc->summary ? desc->summary : "";
      info.build_id = desc->build_id ? desc->build_id : "";
      info.abi = desc->abi ? desc->abi : "";
    }
    out.push_back(std::move(info));
  }
  return out;
}

sdk::Result<std::shared_ptr<sdk::Plugin>> PluginLoader::create_plugin(
    sdk::PluginKind kind, const std::string& name) const {
  const char* kind_name = sdk::plugin_kind_name(kind);
  std::string file = std::string(kPrefix) + kind_name + "_" + name + kSuffix;
  std::vector<std::string> paths = find_files(file);
  if (paths.empty()) {
    std::string dirs, avail;
    for (const auto& d : dirs_) dirs += (dirs.empty() ? "" : ", ") + d;
    for (const auto& n : names_of_kind(kind)) avail += (avail.empty() ? "" : ", ") + n;
    return Status{Errc::not_found, std::string("no ") + kind_name + " plugin named '" + name +
                                       "' in " + (dirs.empty() ? "(no plugin directory)" : dirs) +
                                       "; available " + kind_name +
                                       " plugins: " + (avail.empty() ? "none" : avail)};
  }
  const std::string& path = paths.front();
  auto lib = std::make_shared<boost::dll::shared_library>();
  auto opened = open_module(path, *lib);
  if (!opened) return opened.status();
  const sdk::PluginDescriptor* d = opened.value();
  if (std::string_view(d->abi ? d->abi : "") != sdk::kAbiIdentity) {
    return Status{Errc::incompatible,
                  path + ": plugin ABI " + (d->abi ? d->abi : "?") +
                      " found, expected plugin ABI " + sdk::kAbiIdentity +
                      " (the contract headers differ); rebuild the plugin against this SDK"};
  }
  if (std::string_view(d->build_id ? d->build_id : "") != sdk::build_id()) {
    return Status{Errc::incompatible, path + ": built with " + (d->build_id ? d->build_id : "?") +
                                          ", expected " + sdk::build_id() +
                                          "; rebuild the plugin with the kernel's toolchain"};
  }
  if (std::string_view(d->kind ? d->kind : "") != kind_name) {
    return Status{Errc::incompatible, path + ": is a " + (d->kind ? d->kind : "?") +
                                          " plugin, expected a " + kind_name + " plugin"};
  }
  if (std::string_view(d->name ? d->name : "") != name) {
    return Status{Errc::incompatible, path + ": declares the name '" + (d->name ? d->name : "?") +
                                          "', expected '" + name + "'"};
  }
  sdk::Plugin* raw = d->create ? d->create() : nullptr;
  if (!raw) return Status{Errc::internal, path + ": create() failed"};
  // The deleter holds the library so that the module outlives its object.
  return std::shared_ptr<sdk::Plugin>(raw, [lib](sdk::Plugin* p) { delete p; });
}

}  // namespace corral::kernel
