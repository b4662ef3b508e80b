// The parts of the Docker Engine API the `docker` discovery plugin uses,
// as pure functions over text so that they are tested without an engine:
// HTTP responses (plain or chunked), container lists and inspections, and
// the ensemble's members derived from containers' labels.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "corral/sdk/peers.hpp"
#include "corral/sdk/status.hpp"

namespace corral::docker {

// Labels a container carries to join an ensemble.
inline constexpr const char* kEnsembleLabel = "corral.ensemble";   // the ensemble's name
inline constexpr const char* kIdLabel = "corral.server-id";        // 1..255
inline constexpr const char* kSizeLabel = "corral.ensemble-size";  // how many members to wait for
inline constexpr const char* kQuorumPortLabel = "corral.quorum-port";      // default 2888
inline constexpr const char* kElectionPortLabel = "corral.election-port";  // default 3888
inline constexpr const char* kClientPortLabel = "corral.client-port";      // default 2181
inline constexpr const char* kPeerTypeLabel = "corral.peer-type";          // participant | observer

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
};
// A whole response as read until the connection closed.
sdk::Result<HttpResponse> parse_http_response(std::string_view raw);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string url_encode(std::string_view s);
// GET `path` as HTTP/1.0 (the engine then streams without chunking).
std::string http_get(std::string_view path);

struct Container {
  std::string id;    // full 64-hex id
  std::string name;  // without the leading '/'
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> networks;  // network name -> IPv4 address
};
// GET /containers/json
sdk::Result<std::vector<Container>> parse_container_list(std::string_view json);
// GET /containers/{id}/json
sdk::Result<Container> parse_container_inspect(std::string_view json);

// The members that running containers describe.
struct Discovered {
  std::vector<sdk::PeerSpec> members;  // by id
  std::vector<std::string> problems;   // containers skipped, and why
  std::string conflict;                // non-empty: two containers claim one id
};
// `networks`: prefer an address on one of these (the networks this server's
// own container is on); otherwise the container's first network.
Discovered members_from(const std::vector<Container>& containers,
                        const std::set<std::string>& networks);

// A positive server id 1..255 from label text.
std::optional<int64_t> parse_server_id(std::string_view text);

// This process's container id, from /proc/self/mountinfo text (the engine
// bind-mounts /etc/hostname from /var/lib/docker/containers/<id>/).
std::optional<std::string> container_id_from_mountinfo(std::string_view mountinfo);

}  // namespace corral::docker
