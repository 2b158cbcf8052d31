#pragma once
#include <iosfwd>
#include <memory>
#include <optional>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/adapters/resolver.hpp"
#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"
#include "blip/probes/probe.hpp"

namespace blip {

// Loads and validates the configuration directory; prints every error to
// `err` as file:line:col: message and returns nullopt when there are any.
std::optional<LoadedConfig> load_config_or_report(const std::string& config_dir, std::ostream& err);

// The loop and the probes built on it, torn down in the right order.
struct ProbeRuntime {
  explicit ProbeRuntime(const std::vector<ProbeConfig>& configs);
  // A probe added while running (a reload); `config` must outlive it.
  Probe* add(const ProbeConfig& config);
  EventLoop loop;
  CurlMultiUv curl{loop.get()};
  Resolver resolver{loop.get()};
  std::vector<std::unique_ptr<Probe>> probes;
};

// Runs one attempt of every probe at once and returns the samples, in order.
std::vector<Sample> run_each_probe_once(const std::vector<ProbeConfig>& configs);

}  // namespace blip
