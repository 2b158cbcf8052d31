#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/config/config.hpp"

namespace blip {

int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err) {
  const auto loaded_config = load_config_or_report(options.config_dir, err);
  if (!loaded_config) return kExitUsage;
  const LoadedConfig& loaded = *loaded_config;
  const auto jobs = static_cast<size_t>(std::count_if(loaded.probes.begin(), loaded.probes.end(),
                                                      [](const ProbeConfig& probe) { return probe.type == "job"; }));
  auto count = [](size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  out << fmt::format("{}: configuration ok, {}, {}, {}, {}\n", options.config_dir,
                     count(loaded.probes.size() - jobs, "probe", "probes"), count(jobs, "job", "jobs"),
                     count(loaded.alerts.size(), "alert", "alerts"),
                     count(loaded.maintenance.size(), "maintenance window", "maintenance windows"));
  return kExitOk;
}

}  // namespace blip
