#include <algorithm>
#include <variant>

#include "blip/probes/probe.hpp"

namespace blip {
namespace {

// Each alternative of ProbeSettings, which config's table of types reads, to
// the factory of its probe: an alternative without one here does not compile.
ProbeFactory factory_for(const HttpSettings&) { return make_http_probe; }
ProbeFactory factory_for(const TcpSettings&) { return make_tcp_probe; }
ProbeFactory factory_for(const PostgresSettings&) { return make_postgres_probe; }
ProbeFactory factory_for(const RedisSettings&) { return make_redis_probe; }

}  // namespace

int64_t worst_case_sockets(const std::vector<ProbeConfig>& configs) {
  constexpr int64_t kConnectionsPerProbe = 3;
  int64_t sockets = 0;
  for (const ProbeConfig& config : configs) {
    sockets += std::holds_alternative<HttpSettings>(config.settings)
                   ? config.attempts_in_flight()
                   : std::min(config.attempts_in_flight(), kConnectionsPerProbe);
  }
  return sockets;
}

std::unique_ptr<Probe> make_probe(const ProbeConfig& config, ProbeContext& context) {
  const ProbeFactory factory =
      std::visit([](const auto& settings) { return factory_for(settings); }, config.settings);
  return factory(config, context);
}

}  // namespace blip
