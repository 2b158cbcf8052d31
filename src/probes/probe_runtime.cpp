#include "blip/probes/probe_runtime.hpp"

namespace blip {

ProbeRuntime::ProbeRuntime(const std::vector<ProbeConfig>& configs) {
  for (const ProbeConfig& config : configs) add(config);
}

Probe* ProbeRuntime::add(const ProbeConfig& config) {
  ProbeContext context{loop.get(), &curl, &resolver};
  probes.push_back(make_probe(config, context));
  return probes.back().get();
}

}  // namespace blip
