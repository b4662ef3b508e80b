#include "registry_core.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace corral::registry {

using common::JsonValue;
using sdk::Errc;
using sdk::Status;

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name == "." || name == "..") return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return name.front() != '.' && name.back() != '.';
}

namespace {

Status bad(const std::string& why) { return {Errc::invalid_argument, why}; }

bool valid_port(const JsonValue& v) {
  auto p = v.as_int();
  return p && *p >= 1 && *p <= 65535;
}

}  // namespace

sdk::Result<JsonValue> instance_document(std::string_view service, std::string_view id,
                                         std::string_view request_body, int64_t now_ms) {
  auto req = JsonValue::parse(request_body.empty() ? "{}" : request_body);
  if (!req) return bad("the body is not JSON: " + req.status().message());
  if (!req->is_object()) return bad("the body must be a JSON object");
  static const char* kKnown[] = {"address", "port",    "sslPort", "payload",
                                 "uriSpec", "enabled", "name",    "id"};
  for (const auto& [key, v] : *req->as_object()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known)
      return bad("unknown field \"" + key +
                 "\" (known: address, port, sslPort, payload, uriSpec, enabled)");
  }
  if (const JsonValue* n = req->get("name"); n && (!n->as_string() || *n->as_string() != service))
    return bad("\"name\" must match the service in the path (" + std::string(service) + ")");
  if (const JsonValue* i = req->get("id"); i && (!i->as_string() || *i->as_string() != id))
    return bad("\"id\" must match the instance in the path (" + std::string(id) + ")");
  const JsonValue* address = req->get("address");
  if (!address || !address->as_string() || address->as_string()->empty() ||
      address->as_string()->size() > 253)
    return bad("\"address\" is required: the host or IP address clients connect to");
  const JsonValue* port = req->get("port");
  const JsonValue* ssl = req->get("sslPort");
  if (port && !port->is_null() && !valid_port(*port))
    return bad("\"port\" must be an integer from 1 to 65535");
  if (ssl && !ssl->is_null() && !valid_port(*ssl))
    return bad("\"sslPort\" must be an integer from 1 to 65535");
  if ((!port || port->is_null()) && (!ssl || ssl->is_null()))
    return bad("\"port\" or \"sslPort\" is required");
  const JsonValue* enabled = req->get("enabled");
  if (enabled && !enabled->is_bool()) return bad("\"enabled\" must be true or false");
  const JsonValue* uri = req->get("uriSpec");
  if (uri && !uri->is_null() && !uri->is_object())
    return bad("\"uriSpec\" must be Curator's {\"parts\": [...]}");

  // Field order as Curator's serializer writes them.
  JsonValue doc = JsonValue::object();
  doc.set("name", JsonValue::string(std::string(service)));
  doc.set("id", JsonValue::string(std::string(id)));
  doc.set("address", *address);
  doc.set("port", port ? *port : JsonValue());
  doc.set("sslPort", ssl ? *ssl : JsonValue());
  doc.set("payload", req->get("payload") ? *req->get("payload") : JsonValue());
  doc.set("registrationTimeUTC", JsonValue::integer(now_ms));
  doc.set("serviceType", JsonValue::string("DYNAMIC"));
  doc.set("uriSpec", uri ? *uri : JsonValue());
  doc.set("enabled", JsonValue::boolean(enabled ? *enabled->as_bool() : true));
  return doc;
}

sdk::Result<Instance> parse_instance(std::string_view json) {
  auto doc = JsonValue::parse(json);
  if (!doc) return doc.status();
  if (!doc->is_object()) return bad("an instance is a JSON object");
  Instance in;
  in.id = doc->get_string("id");
  in.address = doc->get_string("address");
  const JsonValue* port = doc->get("port");
  if (port && port->as_int()) in.port = *port->as_int();
  if (!in.port)
    if (const JsonValue* ssl = doc->get("sslPort"); ssl && ssl->as_int()) in.port = *ssl->as_int();
  if (const JsonValue* e = doc->get("enabled"); e && e->as_bool()) in.enabled = *e->as_bool();
  in.document = std::move(doc.value());
  return in;
}

// ---- DNS ----

namespace {

uint16_t u16(std::string_view p, size_t at) {
  return static_cast<uint16_t>((static_cast<unsigned char>(p[at]) << 8) |
                               static_cast<unsigned char>(p[at + 1]));
}

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}

void put_name(std::string& out, std::string_view name) {
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    out += static_cast<char>(label.size());
    out.append(label);
    if (dot == std::string_view::npos) break;
    name = name.substr(dot + 1);
  }
  out += '\0';
}

}  // namespace

std::optional<DnsQuestion> parse_dns_query(std::string_view p) {
  if (p.size() < 12) return std::nullopt;
  DnsQuestion q;
  q.id = u16(p, 0);
  q.flags = u16(p, 2);
  bool is_response = q.flags & 0x8000;
  int opcode = (q.flags >> 11) & 0xf;
  if (is_response || opcode != 0 || u16(p, 4) != 1) return std::nullopt;
  size_t at = 12;
  for (;;) {
    if (at >= p.size()) return std::nullopt;
    auto len = static_cast<unsigned char>(p[at]);
    if (len == 0) {
      ++at;
      break;
    }
    if (len > 63 || at + 1 + len > p.size()) return std::nullopt;  // no compression in a question
    if (!q.name.empty()) q.name += '.';
    for (size_t i = 0; i < len; ++i)
      q.name += static_cast<char>(std::tolower(static_cast<unsigned char>(p[at + 1 + i])));
    at += 1 + len;
    if (q.name.size() > 253) return std::nullopt;
  }
  if (at + 4 > p.size()) return std::nullopt;
  q.type = u16(p, at);
  q.klass = u16(p, at + 2);
  q.question_end = at + 4;
  // EDNS0 (RFC 6891): an OPT record among the additional ones names the
  // UDP size the asker accepts. Only the root-named OPT is looked for.
  at = q.question_end;
  if (u16(p, 6) == 0 && u16(p, 8) == 0 && u16(p, 10) >= 1 && at + 11 <= p.size() && p[at] == '\0' &&
      u16(p, at + 1) == 41) {
    q.edns = true;
    q.udp_size = std::clamp<uint16_t>(u16(p, at + 3), 512, 4096);
  }
  return q;
}

bool valid_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

namespace {

void put_record(std::string& out, const DnsRecord& r) {
  put_name(out, r.name);
  put16(out, r.type);
  put16(out, 1);  // IN
  put32(out, r.ttl);
  if (r.type == static_cast<uint16_t>(DnsType::a)) {
    put16(out, 4);
    out.append(r.a);
  } else {
    std::string rdata;
    put16(rdata, r.priority);
    put16(rdata, r.weight);
    put16(rdata, r.port);
    put_name(rdata, r.target);
    put16(out, static_cast<uint16_t>(rdata.size()));
    out += rdata;
  }
}

void set16(std::string& out, size_t at, uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v & 0xff);
}

constexpr size_t kOptRecordBytes = 11;
constexpr uint16_t kOurUdpSize = 1232;  // what we accept, the common EDNS0 choice

}  // namespace

std::string dns_response(const DnsQuestion& q, std::string_view query, int rcode,
                         const std::vector<DnsRecord>& answers,
                         const std::vector<DnsRecord>& additional) {
  const size_t limit = (q.edns ? q.udp_size : 512) - (q.edns ? kOptRecordBytes : 0);
  std::string out;
  put16(out, q.id);
  // QR, the query's opcode and RD, AA; RA off (not a recursive resolver).
  uint16_t flags = static_cast<uint16_t>(0x8000 | 0x0400 | (q.flags & 0x0100) | (rcode & 0xf));
  put16(out, flags);
  put16(out, 1);
  put16(out, 0);  // answers, additional: counted below
  put16(out, 0);
  put16(out, 0);
  out.append(query.substr(12, q.question_end - 12));
  uint16_t an = 0, ar = 0;
  bool truncated = false;
  std::string record;
  for (const DnsRecord& r : answers) {
    record.clear();
    put_record(record, r);
    if (out.size() + record.size() > limit) {
      truncated = true;
      break;
    }
    out += record;
    ++an;
  }
  for (const DnsRecord& r : additional) {
    if (truncated) break;
    record.clear();
    put_record(record, r);
    if (out.size() + record.size() > limit) break;
    out += record;
    ++ar;
  }
  if (q.edns) {
    out += '\0';     // the root
    put16(out, 41);  // OPT
    put16(out, kOurUdpSize);
    put32(out, 0);  // extended rcode, version 0, no flags
    put16(out, 0);  // no options
    ++ar;
  }
  if (truncated) flags |= 0x0200;  // TC
  set16(out, 2, flags);
  set16(out, 6, an);
  set16(out, 10, ar);
  return out;
}

std::optional<std::string> ipv4_bytes(std::string_view address) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    size_t dot = address.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;
    std::string_view part = address.substr(0, dot);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || p != part.data() + part.size() || part.empty() || v > 255)
      return std::nullopt;
    out += static_cast<char>(v);
    if (dot != std::string_view::npos) address = address.substr(dot + 1);
  }
  return out;
}

}  // namespace corral::registry
