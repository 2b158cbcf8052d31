#include "blip/analysis/maintenance.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace blip {

MaintenanceCalendar::MaintenanceCalendar(const std::vector<MaintenanceConfig>& windows)
    : configs_(windows) {
  starts_.reserve(configs_.size());
  for (const MaintenanceConfig& config : configs_) {
    Start start;
    if (looks_like_single_time(config.start)) {
      start.once_ms = parse_maintenance_time(config.start, config.time_zone);
    } else {
      start.cron = CronSchedule::parse(config.start, config.time_zone, nullptr);
    }
    starts_.push_back(std::move(start));
  }
}

std::optional<int64_t> MaintenanceCalendar::running_start(size_t index, int64_t wall_ms) const {
  const int64_t duration_ms = configs_[index].duration_ms;
  const Start& start = starts_[index];
  if (duration_ms <= 0) return std::nullopt;
  if (start.once_ms) {
    if (*start.once_ms <= wall_ms && wall_ms < *start.once_ms + duration_ms) return start.once_ms;
    return std::nullopt;
  }
  if (!start.cron) return std::nullopt;
  // A firing after wall_ms - duration is still running at wall_ms.
  const std::optional<int64_t> first = start.cron->next_after(wall_ms - duration_ms);
  if (!first || *first > wall_ms) return std::nullopt;
  const std::optional<int64_t> second = start.cron->next_after(*first);
  if (!second || *second > wall_ms) return first;
  // Repeats overlap (every 5 minutes for an hour): bisect for the latest firing
  // at or before wall_ms instead of stepping through every one. Invariant: the
  // firing after `low` is at or before wall_ms, the one after `high` is not.
  int64_t low = *second - 1;
  int64_t high = wall_ms;
  while (high - low > 1) {
    const int64_t middle = low + (high - low) / 2;
    const std::optional<int64_t> next = start.cron->next_after(middle);
    if (next && *next <= wall_ms) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return start.cron->next_after(low);
}

std::optional<MaintenanceWindow> MaintenanceCalendar::active(const ComponentConfig& probe,
                                                             int64_t wall_ms) const {
  std::optional<MaintenanceWindow> found;
  for (size_t i = 0; i < configs_.size(); ++i) {
    if (!configs_[i].selector.matches(probe)) continue;
    const std::optional<int64_t> start = running_start(i, wall_ms);
    if (!start) continue;
    const int64_t end = *start + configs_[i].duration_ms;
    if (!found || end > found->end_ms)
      found = MaintenanceWindow{configs_[i].name, *start, end, configs_[i].selector};
  }
  return found;
}

std::vector<MaintenanceWindow> MaintenanceCalendar::between(int64_t from_ms, int64_t to_ms) const {
  std::vector<MaintenanceWindow> windows;
  for (size_t i = 0; i < configs_.size(); ++i) {
    const MaintenanceConfig& config = configs_[i];
    const Start& start = starts_[i];
    // Active at from_ms (began after from_ms - duration) or beginning at or after it.
    const int64_t after_ms = from_ms - std::max<int64_t>(config.duration_ms, 1);
    if (start.once_ms) {
      if (*start.once_ms > after_ms && *start.once_ms < to_ms) {
        windows.push_back(
            {config.name, *start.once_ms, *start.once_ms + config.duration_ms, config.selector});
      }
      continue;
    }
    if (!start.cron) continue;
    std::optional<int64_t> firing = start.cron->next_after(after_ms);
    for (size_t count = 0; firing && *firing < to_ms && count < kMaxWindowsPerTable; ++count) {
      windows.push_back({config.name, *firing, *firing + config.duration_ms, config.selector});
      firing = start.cron->next_after(*firing);
    }
  }
  std::stable_sort(windows.begin(), windows.end(),
                   [](const MaintenanceWindow& a, const MaintenanceWindow& b) {
                     return a.start_ms < b.start_ms;
                   });
  return windows;
}

}  // namespace blip
