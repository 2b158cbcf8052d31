#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace blip {

// One block character a count, scaled to the largest; any non-zero count
// shows at least the lowest block, so a single event stays visible.
std::string block_bars(std::span<const int64_t> counts);
// The same against a given peak, so that several rows share one scale.
std::string block_bars(std::span<const int64_t> counts, int64_t peak);

// Counts per minute of the hour (UTC), e.g. of outage starts.
struct MinuteOfHourHistogram {
  std::array<int64_t, 60> bins{};
  void add(int64_t wall_ms, int64_t weight = 1);
  int64_t total() const;
  // Three lines for an 80-column terminal: bars of block characters, the
  // minute axis, and the peak.
  std::string render(const std::string& label) const;
};

// Counts per hour of each day of the week (UTC), e.g. of outage starts: a
// weekly job (a Sunday backup) shows as one hot cell, an hourly one as a
// column. Rows run Monday to Sunday.
struct DayOfWeekHourHistogram {
  static constexpr std::array<const char*, 7> kDayNames{"Mon", "Tue", "Wed", "Thu",
                                                        "Fri", "Sat", "Sun"};
  std::array<std::array<int64_t, 24>, 7> bins{};
  void add(int64_t wall_ms, int64_t weight = 1);
  int64_t total() const;
  // Ten lines: a row of block characters per day, all on one scale, the
  // hours of all days together on their own, the hour axis, and the peak.
  std::string render(const std::string& label) const;
};

}  // namespace blip
