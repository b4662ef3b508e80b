// A DNS query to the registry's responder, answered from a fixed set of
// instances within the size the query allows.
#include <cstdint>
#include <vector>

#include "registry_core.hpp"

using namespace corral::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto q = parse_dns_query(packet);
  if (!q) return 0;
  (void)valid_dns_name(q->name);
  std::vector<DnsRecord> answers, additional;
  for (int i = 0; i < 40; ++i) {
    std::string target = "i-" + std::to_string(i) + "." + q->name;
    DnsRecord srv;
    srv.name = q->name;
    srv.type = static_cast<uint16_t>(DnsType::srv);
    srv.ttl = 5;
    srv.port = static_cast<uint16_t>(1000 + i);
    srv.target = target;
    answers.push_back(srv);
    DnsRecord a;
    a.name = target;
    a.type = static_cast<uint16_t>(DnsType::a);
    a.ttl = 5;
    a.a = *ipv4_bytes("10.0.0." + std::to_string(i));
    additional.push_back(a);
  }
  std::string r = dns_response(*q, packet, 0, answers, additional);
  size_t limit = q->edns ? q->udp_size : 512;
  if (r.size() > limit) __builtin_trap();
  return 0;
}
