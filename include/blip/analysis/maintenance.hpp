#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/core/cron.hpp"

namespace blip {

// One window in time.
struct MaintenanceWindow {
  std::string name;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  Selector selector;  // the probes and jobs it covers
};

// The `[[maintenance]]` tables as windows in time: a cron start repeats, a
// single time happens once.
class MaintenanceCalendar {
 public:
  // The configurations must already be valid (`blip check` validates them with
  // `validate_maintenance`).
  explicit MaintenanceCalendar(const std::vector<MaintenanceConfig>& windows);
  // The window covering `probe` (a probe or a job) at `wall_ms` (start <= wall_ms < end), if any;
  // of several (overlapping repeats, several tables), the one that ends last.
  std::optional<MaintenanceWindow> active(const ComponentConfig& probe, int64_t wall_ms) const;
  // Windows (any probe) that are active at or begin within [from_ms, to_ms), by
  // start; at most kMaxWindowsPerTable from each table.
  std::vector<MaintenanceWindow> between(int64_t from_ms, int64_t to_ms) const;
  // The configurations as given (a window's `name` indexes nothing: match by name).
  const std::vector<MaintenanceConfig>& configs() const { return configs_; }

  static constexpr size_t kMaxWindowsPerTable = 10'000;

 private:
  // Each configuration's start, parsed once: a cron schedule, or one instant.
  struct Start {
    std::optional<CronSchedule> cron;
    std::optional<int64_t> once_ms;  // neither set: the configuration was invalid
  };
  // The latest start of `config`'s windows still running at `wall_ms`.
  std::optional<int64_t> running_start(size_t index, int64_t wall_ms) const;

  std::vector<MaintenanceConfig> configs_;
  std::vector<Start> starts_;
};

}  // namespace blip
