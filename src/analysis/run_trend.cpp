#include "blip/analysis/run_trend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "blip/core/cron.hpp"

namespace blip {
namespace {

constexpr double kDayMs = 86'400'000.0;
// A crossing further off than this is no forecast worth a number: "never".
constexpr double kHorizonDays = 100 * 365.0;
// A line that moves less than this share of its level over the fitted runs "held".
constexpr double kFlatShare = 0.05;

double median(std::vector<double>& values) {
  const size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle),
                   values.end());
  const double upper = values[middle];
  if (values.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle));
  return (lower + upper) / 2;
}

// When the line `fitted(t) = intercept + slope·t` (t in days after
// `first_start_ms`) reaches `limit_ms`: the crossing itself while the line
// rises (no earlier than the first fitted start, when it already was above
// then); the first start when a flat or falling line is above the limit at the
// last run; nullopt when it never reaches it.
std::optional<int64_t> crossing(const RunTrend& trend, double intercept_ms, int64_t limit_ms) {
  if (limit_ms <= 0) return std::nullopt;
  const auto limit = static_cast<double>(limit_ms);
  if (trend.slope_ms_per_day <= 0) {
    if (trend.fitted_last_ms >= limit) return trend.first_start_ms;
    return std::nullopt;
  }
  const double days = (limit - intercept_ms) / trend.slope_ms_per_day;
  const double last_days = static_cast<double>(trend.last_start_ms - trend.first_start_ms) / kDayMs;
  if (days - last_days > kHorizonDays) return std::nullopt;
  if (days <= 0) return trend.first_start_ms;
  return trend.first_start_ms + std::llround(days * kDayMs);
}

// "45 s", "1 min 30 s", "41 min", "2 h 10 min", "3 h": rounded to what a
// person reads (whole minutes from 10 minutes up).
std::string duration_in_words(double ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return fmt::format("{} ms", std::llround(ms));
  const int64_t seconds = std::llround(ms / 1000);
  if (seconds < 60) return fmt::format("{} s", seconds);
  if (seconds < 600) {
    if (seconds % 60 == 0) return fmt::format("{} min", seconds / 60);
    return fmt::format("{} min {} s", seconds / 60, seconds % 60);
  }
  const int64_t minutes = std::llround(ms / 60'000);
  if (minutes < 60) return fmt::format("{} min", minutes);
  if (minutes % 60 == 0) return fmt::format("{} h", minutes / 60);
  return fmt::format("{} h {} min", minutes / 60, minutes % 60);
}

// "30 days", "1 day", or under a day "4 h 50 min".
std::string span_in_words(int64_t ms) {
  if (ms < static_cast<int64_t>(kDayMs)) return duration_in_words(static_cast<double>(ms));
  const int64_t days = std::llround(static_cast<double>(ms) / kDayMs);
  return days == 1 ? "1 day" : fmt::format("{} days", days);
}

// "in 12 days", "in 1 day" (anything under a day and a half), "now" (already past).
std::string when_in_words(int64_t at_ms, int64_t now_ms) {
  if (at_ms <= now_ms) return "now";
  const int64_t days =
      std::max<int64_t>(1, std::llround(static_cast<double>(at_ms - now_ms) / kDayMs));
  return days == 1 ? "in 1 day" : fmt::format("in {} days", days);
}

}  // namespace

std::optional<RunTrend> fit_run_trend(std::vector<RunPoint> runs, int64_t max_run_ms,
                                      int64_t period_ms) {
  if (runs.size() < kMinTrendRuns) return std::nullopt;
  std::sort(runs.begin(), runs.end(),
            [](const RunPoint& a, const RunPoint& b) { return a.start_ms < b.start_ms; });
  if (runs.size() > kTrendRuns)
    runs.erase(runs.begin(), runs.end() - static_cast<std::ptrdiff_t>(kTrendRuns));

  RunTrend trend;
  trend.runs = runs.size();
  trend.first_start_ms = runs.front().start_ms;
  trend.last_start_ms = runs.back().start_ms;
  auto days_after_first = [&](const RunPoint& run) {
    return static_cast<double>(run.start_ms - trend.first_start_ms) / kDayMs;
  };

  std::vector<double> slopes;
  slopes.reserve(runs.size() * (runs.size() - 1) / 2);
  for (size_t i = 0; i < runs.size(); ++i) {
    for (size_t j = i + 1; j < runs.size(); ++j) {
      if (runs[j].start_ms == runs[i].start_ms) continue;  // no slope between runs started together
      slopes.push_back(static_cast<double>(runs[j].duration_ms - runs[i].duration_ms) /
                       (days_after_first(runs[j]) - days_after_first(runs[i])));
    }
  }
  trend.slope_ms_per_day = slopes.empty() ? 0.0 : median(slopes);

  std::vector<double> residuals;
  residuals.reserve(runs.size());
  for (const RunPoint& run : runs) {
    residuals.push_back(static_cast<double>(run.duration_ms) -
                        trend.slope_ms_per_day * days_after_first(run));
  }
  const double intercept_ms = median(residuals);
  trend.fitted_first_ms = intercept_ms;
  trend.fitted_last_ms = intercept_ms + trend.slope_ms_per_day * days_after_first(runs.back());
  trend.exceeds_max_run_ms = crossing(trend, intercept_ms, max_run_ms);
  trend.overlaps_next_start_ms = crossing(trend, intercept_ms, period_ms);
  return trend;
}

std::string describe_run_trend(const RunTrend& trend, int64_t max_run_ms, int64_t period_ms,
                               int64_t now_ms) {
  const int64_t span_ms = trend.last_start_ms - trend.first_start_ms;
  const std::string span =
      span_ms < 1000 ? fmt::format("{} runs", trend.runs) : span_in_words(span_ms);
  const double level = std::max(std::abs(trend.fitted_first_ms), std::abs(trend.fitted_last_ms));
  const bool flat =
      std::abs(trend.fitted_last_ms - trend.fitted_first_ms) <= kFlatShare * level ||
      duration_in_words(trend.fitted_first_ms) == duration_in_words(trend.fitted_last_ms);
  std::string text;
  if (flat) {
    text = fmt::format("runs held at about {} over {}",
                       duration_in_words((trend.fitted_first_ms + trend.fitted_last_ms) / 2), span);
  } else {
    text = fmt::format("runs {} from {} to {} over {}",
                       trend.fitted_last_ms > trend.fitted_first_ms ? "grew" : "shrank",
                       duration_in_words(trend.fitted_first_ms),
                       duration_in_words(trend.fitted_last_ms), span);
  }

  // A held line's far-off crossing is no forecast; one it is already past still says so.
  struct Clause {
    std::string what;
    int64_t at_ms;
  };
  std::vector<Clause> clauses;
  auto add = [&](const std::optional<int64_t>& at, std::string what) {
    if (!at || (flat && *at > now_ms)) return;
    clauses.push_back({std::move(what), *at});
  };
  if (max_run_ms > 0) {
    add(trend.exceeds_max_run_ms,
        fmt::format("exceeds max_run {}", duration_in_words(static_cast<double>(max_run_ms))));
  }
  if (period_ms > 0) add(trend.overlaps_next_start_ms, "overlaps its next start");
  if (clauses.empty()) return text;
  const bool any_future = std::any_of(clauses.begin(), clauses.end(),
                                      [&](const Clause& c) { return c.at_ms > now_ms; });
  text += any_future ? "; at this rate a run " : "; a run ";
  for (size_t i = 0; i < clauses.size(); ++i) {
    if (i > 0) text += ", and ";
    text += fmt::format("{} {}", clauses[i].what, when_in_words(clauses[i].at_ms, now_ms));
  }
  return text;
}

int64_t job_period_ms(const JobSettings& settings, int64_t around_ms) {
  if (settings.period_ms > 0) return settings.period_ms;
  std::string problem;
  const auto schedule = CronSchedule::parse(settings.schedule, settings.time_zone, &problem);
  if (!schedule) return 0;
  const auto first = schedule->next_after(around_ms);
  const auto second = first ? schedule->next_after(*first) : std::nullopt;
  return second ? *second - *first : 0;
}

}  // namespace blip
