// The kernel reads msgpack with the SDK's allocation-free reader.
#pragma once

#include "corral/sdk/msgpack.hpp"

namespace corral::kernel {
using MsgpackReader = sdk::MsgpackReader;
}  // namespace corral::kernel
