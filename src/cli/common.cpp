#include <curl/curl.h>

#include <ostream>

#include "blip/cli/probe_runtime.hpp"
#include "blip/scheduler/scheduler.hpp"

namespace blip {

std::optional<LoadedConfig> load_config_or_report(const std::string& config_dir, std::ostream& err) {
  LoadedConfig loaded = load_config_directory(config_dir);
  // Warnings show beside errors, but only errors stop the command.
  for (const ConfigError& error : loaded.errors) err << error.to_string() << '\n';
  for (ConfigError warning : loaded.warnings) {
    warning.message = "warning: " + warning.message;
    err << warning.to_string() << '\n';
  }
  if (!loaded.ok()) return std::nullopt;
  return loaded;
}

ProbeRuntime::ProbeRuntime(const std::vector<ProbeConfig>& configs) {
  for (const ProbeConfig& config : configs) add(config);
}

Probe* ProbeRuntime::add(const ProbeConfig& config) {
  ProbeContext context{loop.get(), &curl, &resolver};
  probes.push_back(make_probe(config, context));
  return probes.back().get();
}

std::vector<Sample> run_each_probe_once(const std::vector<ProbeConfig>& configs) {
  std::vector<Sample> samples(configs.size());
  ProbeRuntime runtime(configs);
  Scheduler scheduler(runtime.loop.get(), configs, runtime.probes,
                      [&](size_t index, const Sample& sample) { samples[index] = sample; }, true);
  scheduler.start();
  scheduler.stop([&] { runtime.loop.stop(); });
  runtime.loop.run();
  return samples;
}

}  // namespace blip
