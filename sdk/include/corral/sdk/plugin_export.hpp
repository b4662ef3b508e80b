// The Boost.DLL half of CORRAL_PLUGIN, kept apart so that code that only
// describes plugins does not pull in Boost.DLL's headers.
#pragma once

#include <boost/dll/alias.hpp>
#include <boost/version.hpp>

#define CORRAL_PLUGIN_EXPORT_ENTRY_() \
  BOOST_DLL_ALIAS_SECTIONED(corral_plugin_entry, corral_plugin, corral)
