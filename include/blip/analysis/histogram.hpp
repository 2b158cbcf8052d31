#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace blip {

// One block character a count, scaled to the largest; any non-zero count
// shows at least the lowest block, so a single event stays visible.
std::string block_bars(std::span<const int64_t> counts);

// Counts per minute of the hour (UTC), e.g. of outage starts.
struct MinuteOfHourHistogram {
  std::array<int64_t, 60> bins{};
  void add(int64_t wall_ms, int64_t weight = 1);
  int64_t total() const;
  // Three lines for an 80-column terminal: bars of block characters, the
  // minute axis, and the peak.
  std::string render(const std::string& label) const;
};

}  // namespace blip
