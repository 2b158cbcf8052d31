#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blip/config/config.hpp"

namespace blip {

// One finished run of a job.
struct RunPoint {
  int64_t start_ms = 0;
  int64_t duration_ms = 0;
};

// The trend of a job's run durations: a Theil–Sen line (the median of the
// pairwise slopes, the intercept the median of the residuals) over at most
// the last 30 runs, robust to a few odd runs.
struct RunTrend {
  size_t runs = 0;             // fitted
  int64_t first_start_ms = 0;  // of the first fitted run
  int64_t last_start_ms = 0;
  double slope_ms_per_day = 0;  // growth of a run's duration per day of calendar time
  double fitted_first_ms = 0;   // the line's duration at the first and last fitted start
  double fitted_last_ms = 0;
  // When the line crosses max_run, and the period between starts (a run then
  // overlaps its next start); nullopt when it never does (flat or shrinking),
  // or the limit is 0; the time itself when it already has.
  std::optional<int64_t> exceeds_max_run_ms;
  std::optional<int64_t> overlaps_next_start_ms;
};

inline constexpr size_t kTrendRuns = 30;
inline constexpr size_t kMinTrendRuns = 5;

// Nullopt with fewer than kMinTrendRuns runs. `runs` in any order; the last
// kTrendRuns by start are used. `max_run_ms`/`period_ms` of 0: no such limit.
std::optional<RunTrend> fit_run_trend(std::vector<RunPoint> runs, int64_t max_run_ms,
                                      int64_t period_ms);

// In words, from `now_ms`: "runs grew from 41 min to 2 h 10 min over 30 days;
// at this rate a run exceeds max_run 3 h in 12 days, and overlaps its next
// start in 19 days", or "runs held at about 41 min over 30 days".
std::string describe_run_trend(const RunTrend& trend, int64_t max_run_ms, int64_t period_ms,
                               int64_t now_ms);

// The gap between a job's expected starts (its period, or its schedule's after `around_ms`); 0 when
// unknown.
int64_t job_period_ms(const JobSettings& settings, int64_t around_ms);

}  // namespace blip
