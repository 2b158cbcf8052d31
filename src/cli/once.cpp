#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/scheduler/scheduler.hpp"

namespace blip {
namespace {

std::string millis(int64_t us) {
  return us > 0 ? fmt::format("{:.1f}ms", static_cast<double>(us) / 1000.0) : "-";
}

}  // namespace

int run_once(const OnceOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = load_config_or_report(options.config_dir, err);
  if (!loaded) return kExitUsage;
  std::vector<ProbeConfig>* configs = &loaded->probes;  // jobs report in: nothing to run once
  if (!options.probe.empty()) {
    std::erase_if(*configs, [&](const ProbeConfig& probe) { return probe.name != options.probe; });
    if (configs->empty()) {
      err << fmt::format("{}: no probe named \"{}\"\n", options.config_dir, options.probe);
      return kExitUsage;
    }
  }
  const std::vector<Sample> results = run_each_probe_once(*configs);
  size_t name_width = 5;
  size_t target_width = 6;
  for (const ProbeConfig& probe : *configs) {
    name_width = std::max(name_width, probe.name.size());
    target_width = std::max(target_width, probe.target_display.size());
  }
  out << fmt::format(
      "{:<{}}  {:<4}  {:<{}}  {:<8}  {:>9}  {:>8}  {:>8}  {:>8}  {:>10}  {:<13}  {}\n", "PROBE",
      name_width, "TYPE", "TARGET", target_width, "RESULT", "LATENCY", "DNS", "CONNECT", "TLS",
      "FIRST-BYTE", "ERROR", "DETAIL");
  bool any_down = false;
  for (size_t i = 0; i < configs->size(); ++i) {
    const ProbeConfig& probe = (*configs)[i];
    const Sample& sample = results[i];
    any_down = any_down || sample.status == Status::down;
    out << fmt::format(
        "{:<{}}  {:<4}  {:<{}}  {:<8}  {:>9}  {:>8}  {:>8}  {:>8}  {:>10}  {:<13}  {}\n",
        probe.name, name_width, probe.type, probe.target_display, target_width,
        to_string(sample.status), millis(sample.latency_us), millis(sample.phases.dns_us),
        millis(sample.phases.connect_us), millis(sample.phases.tls_us),
        millis(sample.phases.first_byte_us),
        sample.error == ErrorClass::none ? "-" : to_string(sample.error),
        sample.detail.empty() ? "-" : sample.detail);
  }
  return any_down ? kExitDown : kExitOk;
}

}  // namespace blip
