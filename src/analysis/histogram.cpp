#include "blip/analysis/histogram.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace blip {

void MinuteOfHourHistogram::add(int64_t wall_ms, int64_t weight) {
  int64_t minute = (wall_ms / 60'000) % 60;
  if (minute < 0) minute += 60;
  bins[static_cast<size_t>(minute)] += weight;
}

int64_t MinuteOfHourHistogram::total() const {
  return std::accumulate(bins.begin(), bins.end(), int64_t{0});
}

std::string block_bars(std::span<const int64_t> counts) {
  static const char* kLevels[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const int64_t peak = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  std::string bars;
  for (int64_t count : counts) {
    const int64_t level = peak == 0 || count == 0 ? 0 : std::max<int64_t>(1, (count * 8 + peak - 1) / peak);
    bars += kLevels[level];
  }
  return bars;
}

std::string MinuteOfHourHistogram::render(const std::string& label) const {
  const int64_t peak = *std::max_element(bins.begin(), bins.end());
  auto peak_minute = std::max_element(bins.begin(), bins.end()) - bins.begin();
  std::string out = fmt::format("{}\n  |{}|\n  :00       :10       :20       :30       :40       :50      :59\n",
                                label, block_bars(bins));
  if (peak > 0) out += fmt::format("  peak {} at minute :{:02} of {} in all\n", peak, peak_minute, total());
  return out;
}

}  // namespace blip
