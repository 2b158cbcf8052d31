#include <fmt/format.h>

#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/probe_runtime.hpp"

namespace blip {

int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = load_config_or_report(options.config_dir, err);
  if (!loaded) return kExitUsage;
  out << fmt::format("{}: configuration ok, {} probe{}\n", options.config_dir, loaded->probes.size(),
                     loaded->probes.size() == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace blip
