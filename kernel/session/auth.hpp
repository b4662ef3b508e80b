// ZooKeeper's access control: identities (scheme:id), the digest scheme's
// hashing, ip matching, ACL validation ("fixup") and the permission check.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "corral/proto/records.hpp"

namespace corral::kernel {

using Ids = std::vector<proto::Id>;

// The digest scheme's id for "user:password": "user:" followed by the base64
// of the SHA-1 of the whole string, as ZooKeeper computes it.
std::string digest_of(std::string_view user_password);

// Whether `spec` (an ip ACL id: "10.1.2.3", "10.0.0.0/8", "fe80::/10") is
// well formed, and whether the client address `ip` falls within it.
bool valid_ip_spec(std::string_view spec);
bool ip_matches(std::string_view spec, std::string_view ip);

// ZooKeeper's checkACL: true when `ids` grant `perm` (any of its bits) under
// `acl`. An empty ACL and the super identity grant everything.
bool permitted(const proto::AclList& acl, int32_t perm, const Ids& ids);

// ZooKeeper's fixupACL for create and setACL: refuses an empty list and any
// entry it cannot honour (INVALIDACL), drops duplicates, and expands the
// "auth" scheme into the caller's authenticated identities.
bool fixup_acl(const proto::AclList& in, const Ids& ids, proto::AclList& out);

// getACL for a caller without ADMIN: digest ids lose their hash ("user:x"),
// so that readers cannot take them offline (CVE-2019-0201).
proto::AclList masked_acl(const proto::AclList& acl);

}  // namespace corral::kernel
