#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blip/config/config.hpp"

namespace blip {

// One window in time.
struct MaintenanceWindow {
  std::string name;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// The `[[maintenance]]` tables as windows in time: a cron start repeats, a
// single time happens once.
class MaintenanceCalendar {
 public:
  // The configurations must already be valid (`blip check` validates them with
  // `validate_maintenance`).
  explicit MaintenanceCalendar(const std::vector<MaintenanceConfig>& windows);
  // The window covering `probe` at `wall_ms`, if any.
  std::optional<MaintenanceWindow> active(const ProbeConfig& probe, int64_t wall_ms) const;
  // Windows (any probe) that are active at or begin within [from_ms, to_ms), by start.
  std::vector<MaintenanceWindow> between(int64_t from_ms, int64_t to_ms) const;
  // Whether the configured window covers `probe` at all.
  const std::vector<MaintenanceConfig>& configs() const { return configs_; }

 private:
  std::vector<MaintenanceConfig> configs_;
};

// Nullopt when `start` is a valid cron expression or time in `time_zone`; else the problem.
std::optional<std::string> validate_maintenance_start(const std::string& start, const std::string& time_zone);

}  // namespace blip
