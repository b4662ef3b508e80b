// The kernel reads msgpack with the SDK's allocation-free reader.
#pragma once

#include "corral/common/msgpack.hpp"

namespace corral::kernel {
using MsgpackReader = common::MsgpackReader;
}  // namespace corral::kernel
