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

std::unique_ptr<Probe> make_probe(const ProbeConfig& config, ProbeContext& context) {
  auto factory = kProbeTypes.find(config.type);
  if (factory == kProbeTypes.end()) throw std::invalid_argument("unknown probe type " + config.type);
  return factory->second(config, context);
}

}  // namespace blip
