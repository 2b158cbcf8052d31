#pragma once
#include <memory>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/adapters/resolver.hpp"
#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"
#include "blip/probes/probe.hpp"

namespace blip {

// The loop and the probes built on it, torn down in the right order.
struct ProbeRuntime {
  explicit ProbeRuntime(const std::vector<ProbeConfig>& configs);
  // A probe added while running (a reload); `config` must outlive it. Null for a job.
  Probe* add(const ProbeConfig& config);
  EventLoop loop;
  CurlMultiUv curl{loop.get()};
  Resolver resolver{loop.get()};
  std::vector<std::unique_ptr<Probe>> probes;
};

}  // namespace blip
