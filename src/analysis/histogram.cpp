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
  return block_bars(counts, counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end()));
}

std::string block_bars(std::span<const int64_t> counts, int64_t peak) {
  static const char* kLevels[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string bars;
  for (int64_t count : counts) {
    const int64_t level =
        peak <= 0 || count <= 0 ? 0 : std::clamp<int64_t>((count * 8 + peak - 1) / peak, 1, 8);
    bars += kLevels[level];
  }
  return bars;
}

std::string MinuteOfHourHistogram::render(const std::string& label) const {
  const int64_t peak = *std::max_element(bins.begin(), bins.end());
  auto peak_minute = std::max_element(bins.begin(), bins.end()) - bins.begin();
  std::string out =
      fmt::format("{}\n  |{}|\n  :00       :10       :20       :30       :40       :50      :59\n",
                  label, block_bars(bins));
  if (peak > 0)
    out += fmt::format("  peak {} at minute :{:02} of {} in all\n", peak, peak_minute, total());
  return out;
}

void DayOfWeekHourHistogram::add(int64_t wall_ms, int64_t weight) {
  constexpr int64_t kDayMs = 86'400'000;
  int64_t day = wall_ms / kDayMs;
  if (wall_ms % kDayMs < 0) --day;
  const int64_t hour = (wall_ms - day * kDayMs) / 3'600'000;
  // 1970-01-01 was a Thursday: day 0 is row 3 when Monday is row 0.
  const int64_t weekday = ((day + 3) % 7 + 7) % 7;
  bins[static_cast<size_t>(weekday)][static_cast<size_t>(hour)] += weight;
}

int64_t DayOfWeekHourHistogram::total() const {
  int64_t sum = 0;
  for (const auto& row : bins) sum += std::accumulate(row.begin(), row.end(), int64_t{0});
  return sum;
}

std::string DayOfWeekHourHistogram::render(const std::string& label) const {
  int64_t peak = 0;
  size_t peak_day = 0;
  size_t peak_hour = 0;
  for (size_t day = 0; day < bins.size(); ++day) {
    for (size_t hour = 0; hour < 24; ++hour) {
      if (bins[day][hour] > peak) {
        peak = bins[day][hour];
        peak_day = day;
        peak_hour = hour;
      }
    }
  }
  std::string out = label + "\n";
  for (size_t day = 0; day < bins.size(); ++day) {
    out += fmt::format("  {} |{}|\n", kDayNames[day], block_bars(bins[day], peak));
  }
  std::array<int64_t, 24> hours{};
  for (const auto& row : bins) {
    for (size_t hour = 0; hour < 24; ++hour) hours[hour] += row[hour];
  }
  out += fmt::format("  all |{}|\n", block_bars(hours));  // the hour of the day, on its own scale
  out += "      00    06    12    18   23\n";
  if (peak > 0) {
    out += fmt::format("  peak {} on {} {:02}:00-{:02}:00 of {} in all\n", peak,
                       kDayNames[peak_day], peak_hour, peak_hour + 1, total());
  }
  return out;
}

}  // namespace blip
