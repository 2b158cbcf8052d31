#include <algorithm>
#include <map>
#include <stdexcept>
#include <string_view>

#include "blip/probes/probe.hpp"

namespace blip {
namespace {
const std::map<std::string_view, ProbeFactory> kProbeTypes{
    {"http", make_http_probe},
    {"postgres", make_postgres_probe},
    {"redis", make_redis_probe},
    {"tcp", make_tcp_probe},
};
}  // namespace

int64_t worst_case_sockets(const std::vector<ProbeConfig>& configs) {
  constexpr int64_t kConnectionsPerProbe = 3;
  int64_t sockets = 0;
  for (const ProbeConfig& config : configs) {
    if (config.type == "job") continue;
    sockets += config.type == "http" ? config.attempts_in_flight()
                                     : std::min(config.attempts_in_flight(), kConnectionsPerProbe);
  }
  return sockets;
}

std::unique_ptr<Probe> make_probe(const ProbeConfig& config, ProbeContext& context) {
  if (config.type == "job") return nullptr;  // jobs report in; nothing probes them
  auto factory = kProbeTypes.find(config.type);
  if (factory == kProbeTypes.end()) throw std::invalid_argument("unknown probe type " + config.type);
  return factory->second(config, context);
}

}  // namespace blip
