// Decoding the body of a reply as a client sees it. Shared by the C++ client
// and the kernel's in-process sessions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "corral/proto/codes.hpp"
#include "corral/proto/records.hpp"

namespace corral::proto {

// The outcome of one operation; which fields are set depends on the opcode.
struct Response {
  Err err = Err::ok;
  std::string path;                   // create/create2: the name created; sync: the path
  std::string data;                   // getData
  Stat stat;                          // exists, getData, setData, create2, getChildren2, getACL
  std::vector<std::string> children;  // getChildren, getChildren2
  AclList acl;                        // getACL
  std::vector<Response> results;      // multi: one per operation
  std::vector<Id> identities;         // whoAmI: (scheme, user) of each authenticated identity
  int32_t type = 0;                   // multi results: the op's type, or -1 for an error
};

// Fills `out` from a reply body to a request of `type` whose header carried
// `err`. False if the body is malformed.
bool decode_response(int32_t type, Err err, std::string_view body, Response& out);

}  // namespace corral::proto
