// The service registry's pure parts, tested without a server: Curator's
// ServiceInstance documents, names, and the DNS messages of the responder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "corral/common/json.hpp"
#include "corral/sdk/status.hpp"

namespace corral::registry {

// A service or instance name: what fits in one znode name and one DNS label
// (letters, digits, '-', '_', '.' inside; 1..63 bytes).
bool valid_name(std::string_view name);

// What a client sends to register: {"address": ..., "port": ..., "sslPort":
// ..., "payload": ..., "uriSpec": ..., "enabled": ...}. Returns the
// ServiceInstance document Curator's JsonInstanceSerializer writes, with
// serviceType DYNAMIC (an ephemeral), or an error naming the field.
sdk::Result<common::JsonValue> instance_document(std::string_view service, std::string_view id,
                                                 std::string_view request_body, int64_t now_ms);

// A stored instance, as read back (Curator's or ours).
struct Instance {
  std::string id, address;
  int64_t port = 0;  // 0 when absent
  bool enabled = true;
  common::JsonValue document;  // the whole ServiceInstance
};
sdk::Result<Instance> parse_instance(std::string_view json);

// ---- DNS (RFC 1035), the subset a service lookup needs ----

enum class DnsType : uint16_t { a = 1, srv = 33, any = 255 };

struct DnsQuestion {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::string name;  // lower-case, without the trailing dot
  uint16_t type = 0, klass = 0;
  size_t question_end = 0;  // offset just past the question, for the answer
  bool edns = false;        // the query carried an EDNS0 OPT record...
  uint16_t udp_size = 512;  // ...and this is the answer size it allows (512..4096)
};
// The one question of a query (and its EDNS0 size, when it has an OPT
// record); nullopt for anything malformed or not a standard query with
// exactly one question.
std::optional<DnsQuestion> parse_dns_query(std::string_view packet);

struct DnsRecord {
  std::string name;
  uint16_t type = 1;
  uint32_t ttl = 0;
  // A: four address bytes; SRV: priority, weight, port and target.
  std::string a;
  uint16_t priority = 1, weight = 1, port = 0;
  std::string target;
};
// A response to `q` with `rcode` (0 ok, 3 NXDOMAIN, ...), its answers and
// additional records; names are written uncompressed. It never exceeds what
// the query allows (512 bytes, or its EDNS0 size): answers that do not fit
// are left out with the TC bit set, so the resolver asks again over TCP;
// additional records that do not fit are simply left out. A query with EDNS0
// gets an OPT record back.
std::string dns_response(const DnsQuestion& q, std::string_view query, int rcode,
                         const std::vector<DnsRecord>& answers,
                         const std::vector<DnsRecord>& additional);
// A name the responder could hold: labels of letters, digits, '-' and '_',
// each 1..63 bytes.
bool valid_dns_name(std::string_view name);
// "10.0.0.7" as four bytes; nullopt when not a dotted IPv4 address.
std::optional<std::string> ipv4_bytes(std::string_view address);

}  // namespace corral::registry
