// Client requests as the server reads them: a connect request, a request
// header, and a write's payload checked for shape (well_formed_write); a
// write that passes is applied to a small tree as a logged txn, so that
// the apply path meets whatever the shape check lets through.
//
// Input: [int32 opcode][payload...]
#include <cstdint>
#include <memory>
#include <string_view>

#include "corral/proto/jute.hpp"
#include "corral/proto/records.hpp"
#include "tree/data_tree.hpp"
#include "tree/state_machine.hpp"
#include "tree/txn.hpp"

using namespace corral;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  {
    proto::JuteReader r(in);
    proto::ConnectRequest c;
    (void)proto::read(r, c);
  }
  {
    proto::JuteReader r(in);
    proto::RequestHeader h;
    (void)proto::read(r, h);
  }
  if (size < 4) return 0;
  int32_t type = static_cast<int32_t>((uint32_t{data[0]} << 24) | (uint32_t{data[1]} << 16) |
                                      (uint32_t{data[2]} << 8) | data[3]);
  std::string_view payload = in.substr(4);
  if (!kernel::well_formed_write(type, payload)) return 0;
  struct World {
    kernel::DataTree tree;
    kernel::StateMachine sm{tree};
    sdk::Zxid zxid = 0;
  };
  static std::unique_ptr<World> w;
  // Keep the tree small: start again now and then.
  if (!w || w->tree.node_count() > 5000) {
    w = std::make_unique<World>();
    w->sm.set_extended_types(true);
  }
  ++w->zxid;
  sdk::LogEntry e{w->zxid, 1000 + static_cast<int64_t>(w->zxid),
                  kernel::encode_txn(type, 0x100000001, 1, payload, {{"digest", "fuzz:x"}})};
  (void)w->sm.apply(e);
  return 0;
}
