// Election and Zab messages from a member gone bad, handed to the real
// election and Zab code of a simulated 3-server ensemble while it elects a
// leader and commits writes (tests/sim): whatever the bytes, no server may
// crash, throw, or read out of bounds. Input: SimOptions::hostile records;
// `corral-sim --capture` writes real traffic in that form (the seeds).
#include <cstdint>
#include <string>

#include "sim.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  corral::sim::SimOptions opt;
  opt.fault_ms = 1500;
  opt.heal_ms = 500;
  opt.crashes = opt.partitions = false;
  opt.loss = opt.duplicate = opt.reorder = 0;
  opt.hostile.assign(reinterpret_cast<const char*>(data), size);
  (void)corral::sim::run(1, opt);
  return 0;
}
