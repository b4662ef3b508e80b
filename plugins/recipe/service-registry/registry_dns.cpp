// The service registry over DNS: SRV and A answers, bounded in size and
// rate-limited per source.
#include "service_registry.hpp"

namespace corral::registry {

Status ServiceRegistry::start_dns() {
  std::string host = dns_address_;
  size_t colon = host.rfind(':');
  if (colon == std::string::npos)
    return {sdk::Errc::invalid_argument, "recipe.service-registry.dns_address: host:port"};
  unsigned port = 0;
  std::string port_text = host.substr(colon + 1);
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || port > 65535)
    return {sdk::Errc::invalid_argument,
            "recipe.service-registry.dns_address: a port 0..65535 (0: any free one)"};
  host = host.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code err;
  auto addr = boost::asio::ip::make_address(host, err);
  if (err)
    return {sdk::Errc::invalid_argument,
            "recipe.service-registry.dns_address: not an IP address: " + host};
  dns_ = std::make_unique<boost::asio::ip::udp::socket>(host_->executor().io_context());
  boost::asio::ip::udp::endpoint ep(addr, static_cast<uint16_t>(port));
  dns_->open(ep.protocol(), err);
  if (!err) dns_->bind(ep, err);
  if (err) return {sdk::Errc::io_error, "DNS on " + dns_address_ + ": " + err.message()};
  receive_dns();
  return {};
}

void ServiceRegistry::receive_dns() {
  dns_->async_receive_from(
      boost::asio::buffer(dns_buf_), dns_peer_,
      [this, alive = alive_.ref()](const boost::system::error_code& ec, size_t n) {
        if (!alive || ec == boost::asio::error::operation_aborted) return;
        if (!ec) answer_dns(std::string(dns_buf_, n), dns_peer_);
        receive_dns();
      });
}

bool ServiceRegistry::dns_allowed(const boost::asio::ip::address& from) {
  if (dns_rate_per_source_ <= 0) return true;
  int64_t now = host_->clock().steady_ms();
  if (dns_buckets_.size() >= kMaxDnsBuckets) {
    // Forget sources that have been quiet long enough to have a full bucket.
    std::erase_if(dns_buckets_, [&](const auto& kv) { return now - kv.second.last_ms >= 2000; });
    if (dns_buckets_.size() >= kMaxDnsBuckets) return false;
  }
  auto [it, fresh] = dns_buckets_.try_emplace(from.to_string());
  DnsBucket& b = it->second;
  double burst = 2.0 * static_cast<double>(dns_rate_per_source_);
  if (fresh)
    b.tokens = burst;
  else
    b.tokens = std::min(
        burst, b.tokens + static_cast<double>(now - b.last_ms) * dns_rate_per_source_ / 1000.0);
  b.last_ms = now;
  if (b.tokens < 1.0) {
    m_dns_limited_->inc();
    return false;
  }
  b.tokens -= 1.0;
  return true;
}

void ServiceRegistry::answer_dns(std::string packet, boost::asio::ip::udp::endpoint peer) {
  auto q = parse_dns_query(packet);
  if (!q) return;  // not a query we can answer: drop, as servers do with garbage
  if (!dns_allowed(peer.address())) return;
  m_dns_->inc();
  auto send = [this, peer](std::string out) {
    auto buf = std::make_shared<std::string>(std::move(out));
    dns_->async_send_to(boost::asio::buffer(*buf), peer,
                        [buf](const boost::system::error_code&, size_t) {});
  };
  std::string suffix = ".service." + dns_domain_;
  const std::string& name = q->name;
  if (q->klass != 1 || name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return send(dns_response(*q, packet, 5 /* REFUSED: not our zone */, {}, {}));
  std::string head = name.substr(0, name.size() - suffix.size());
  std::string svc = head, only_id;
  if (size_t dot = head.rfind('.'); dot != std::string::npos) {
    // <id>.<service>: ids may hold dots, services too; try the longest service first.
    svc = head.substr(dot + 1);
    only_id = head.substr(0, dot);
  }
  if (!valid_dns_name(head) || !valid_name(svc)) return send(dns_response(*q, packet, 3, {}, {}));
  auto answer = [this, q = *q, packet, svc, only_id, send, name] {
    const View& v = views_[svc];
    if (!v.exists) return send(dns_response(q, packet, 3, {}, {}));
    std::vector<DnsRecord> answers, additional;
    bool found_id = only_id.empty();
    for (const Instance& in : v.instances) {
      if (!in.enabled) continue;
      if (!only_id.empty() && in.id != only_id) continue;
      found_id = true;
      auto ip = ipv4_bytes(in.address);
      std::string target = ip ? in.id + "." + svc + ".service." + dns_domain_ : in.address;
      bool want_srv = q.type == static_cast<uint16_t>(DnsType::srv) ||
                      q.type == static_cast<uint16_t>(DnsType::any);
      bool want_a = q.type == static_cast<uint16_t>(DnsType::a) ||
                    q.type == static_cast<uint16_t>(DnsType::any);
      if (want_srv && only_id.empty() && in.port > 0)
        answers.push_back({name, static_cast<uint16_t>(DnsType::srv),
                           static_cast<uint32_t>(dns_ttl_s_), "", 1, 1,
                           static_cast<uint16_t>(in.port), target});
      if (ip && want_a)
        answers.push_back(
            {name, static_cast<uint16_t>(DnsType::a), static_cast<uint32_t>(dns_ttl_s_), *ip});
      else if (ip && want_srv && only_id.empty())
        additional.push_back(
            {target, static_cast<uint16_t>(DnsType::a), static_cast<uint32_t>(dns_ttl_s_), *ip});
    }
    send(dns_response(q, packet, found_id ? 0 : 3, answers, additional));
  };
  // A service already watched answers from its view. Any other name is
  // looked up without a watch, and only a service that exists gets a view:
  // queries for names that do not exist leave nothing behind.
  auto known = views_.find(svc);
  if ((known != views_.end() && known->second.exists) || !reader_) return load(svc, answer);
  reader_->exists(
      service_path(svc), false,
      [this, alive = alive_.ref(), svc, answer, q = *q, packet, send](const sdk::TreeResult& r) {
        if (!alive) return;
        if (r.err == Err::no_node) return send(dns_response(q, packet, 3, {}, {}));
        load(svc, answer);
      });
}

}  // namespace corral::registry
