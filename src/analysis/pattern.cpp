#include "blip/analysis/pattern.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;

int64_t floor_mod(int64_t value, int64_t divisor) {
  int64_t remainder = value % divisor;
  return remainder < 0 ? remainder + divisor : remainder;
}

// Zar, Biostatistical Analysis (eq. 27.4). Checked by simulation: close to
// exact from n = 5 (a little liberal for n = 3-4 near p = 0.1), but it never
// drops below exp(sqrt(1+4n) - (1+2n)) however tight the cluster: 0.0016 for
// n = 5, 0.034 for n = 3, so a handful of starts could never be significant.
double zar_p_value(int n, double resultant_length) {
  const double count = n;
  const double inside =
      1.0 + 4.0 * count + 4.0 * (count * count - resultant_length * resultant_length);
  return std::exp(std::sqrt(std::max(inside, 0.0)) - (1.0 + 2.0 * count));
}

// An exact upper bound on the Rayleigh p-value for tight clusters. Measured
// from the mean direction, n - R = sum(1 - cos θi), so R >= n - δ puts every
// start within ±acos(1 - δ) of the mean: inside one arc of width 2·acos(1 - δ).
// For uniform phases, all n fall inside some arc of a fraction w <= 1/2 of
// the circle with probability n·w^(n-1) (Stevens 1939).
double arc_bound_p_value(int n, double resultant_length) {
  const double slack = std::max(0.0, n - resultant_length);
  if (slack > 1.0) return 1.0;  // the arc would exceed half the circle
  const double half_arc = std::acos(1.0 - slack);
  return n * std::pow(half_arc / std::numbers::pi, n - 1);
}

// The starts in range, sorted, with each burst (starts less than `within`
// after the previous start) reduced to its first start.
std::vector<int64_t> independent_starts(const PatternInput& input, int& in_range) {
  std::vector<int64_t> starts;
  for (int64_t start : input.start_ms) {
    if (start >= input.range_start_ms && start < input.range_end_ms) starts.push_back(start);
  }
  std::sort(starts.begin(), starts.end());
  in_range = static_cast<int>(starts.size());
  std::vector<int64_t> kept;
  for (size_t i = 0; i < starts.size(); ++i) {
    if (i == 0 || starts[i] - starts[i - 1] >= input.coalesce_within_ms) kept.push_back(starts[i]);
  }
  return kept;
}

// "20s", "4m10s" (whole seconds).
std::string minutes_seconds(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
}

std::string clock_text(int64_t seconds) {
  return fmt::format("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

// The phase in words, relative to a boundary people know: the minute, the
// hour, midnight UTC. Phases are folded on epoch time, so for any period
// that divides a day, phase 0 falls on midnight UTC and on every multiple of
// the period after it.
std::string describe_phase(int64_t period_ms, double phase_ms, int64_t range_start_ms) {
  if (period_ms % 1000 != 0 || kDayMs % period_ms != 0) {
    // Cycles that do not line up with the clock: name the first cluster centre in range.
    const int64_t first =
        range_start_ms + floor_mod(std::llround(phase_ms) - range_start_ms, period_ms);
    return fmt::format("centred on {} and every {} from there", format_iso8601_ms(first),
                       period_name(period_ms));
  }
  const int64_t period_s = period_ms / 1000;
  const int64_t phase_s =
      std::llround(phase_ms / 1000.0) % period_s;  // rounding may reach the next cycle
  // A phase in the last tenth of a cycle reads better as "before": 00:00:10
  // before the hour rather than +00:59:50 past it.
  const bool before = phase_s * 10 >= period_s * 9;
  const int64_t offset_s = before ? period_s - phase_s : phase_s;

  // Where the cluster falls on the clock, when that is a short list.
  std::vector<std::string> marks;
  if (period_ms < kHourMs && period_ms >= 10 * kMinuteMs && kHourMs % period_ms == 0) {
    for (int64_t s = phase_s; s < 3600; s += period_s) {
      marks.push_back(fmt::format(":{:02}:{:02}", s / 60, s % 60));
    }
  }
  if (period_ms > kHourMs && period_ms < kDayMs && kDayMs / period_ms <= 8) {
    for (int64_t s = phase_s; s < kDayMs / 1000; s += period_s) marks.push_back(clock_text(s));
  }

  if (period_ms == kHourMs) {
    return before ? clock_text(offset_s) + " before the hour"
                  : "+" + clock_text(offset_s) + " past the hour";
  }
  if (period_ms == kDayMs) {
    return before ? clock_text(offset_s) + " before midnight UTC"
                  : "+" + clock_text(offset_s) + " after midnight UTC";
  }
  const bool short_period = period_ms < kHourMs;
  const std::string offset = short_period ? minutes_seconds(offset_s) : clock_text(offset_s);
  const std::string cycle = period_ms == kMinuteMs ? "minute" : period_name(period_ms);
  std::string text = before ? fmt::format("{} before each {}", offset, cycle)
                            : fmt::format("+{} into each {}", offset, cycle);
  if (!marks.empty()) {
    text += short_period ? fmt::format(" ({} past each hour)", fmt::join(marks, ", "))
                         : fmt::format(" (at {} UTC)", fmt::join(marks, ", "));
  } else if (kHourMs % period_ms != 0) {
    text += " from 00:00 UTC";  // e.g. 2h, 45m: cycles counted from midnight
  }
  return text;
}

std::string p_text(double p_value) {
  if (p_value < 0.0001) return "p < 0.0001";
  return fmt::format("p = {:.2g}", p_value);
}

std::string outages_word(int count) { return count == 1 ? "outage" : "outages"; }

// The statistics at one period. Only starts in the last whole cycles of the
// range are folded: over a range of, say, 3.5 days the first half of the day
// is observed four times and the second half three, so uniformly random
// starts would lean towards the first half, and with hundreds of starts that
// lean alone would pass for a daily pattern.
PeriodFinding fold(const std::vector<int64_t>& starts, int64_t period_ms, const PatternInput& input,
                   double observed_ms) {
  PeriodFinding finding;
  finding.period_ms = period_ms;
  finding.cycles = observed_ms / static_cast<double>(period_ms);
  const int64_t whole_cycles = (input.range_end_ms - input.range_start_ms) / period_ms;
  const int64_t window_start = input.range_end_ms - whole_cycles * period_ms;
  const auto period = static_cast<double>(period_ms);

  std::vector<double> angles;
  double sum_cos = 0;
  double sum_sin = 0;
  for (int64_t start : starts) {
    if (start < window_start) continue;
    const double angle = kTwoPi * static_cast<double>(floor_mod(start, period_ms)) / period;
    angles.push_back(angle);
    sum_cos += std::cos(angle);
    sum_sin += std::sin(angle);
  }
  const int n = static_cast<int>(angles.size());
  finding.outages = n;
  if (n == 0) return finding;

  const double resultant_length = std::hypot(sum_cos, sum_sin);
  const double mean_length = std::min(1.0, resultant_length / n);
  double mean_angle = std::atan2(sum_sin, sum_cos);
  if (mean_angle < 0) mean_angle += kTwoPi;
  finding.phase_ms = std::fmod(mean_angle / kTwoPi * period, period);
  finding.mean_resultant_length = mean_length;
  finding.rayleigh_z = n * mean_length * mean_length;
  finding.p_value = rayleigh_p_value(n, resultant_length);

  // Circular standard deviation sqrt(-2 ln R̄), in ms. It grows without bound
  // as R̄ -> 0; past half a period it no longer says anything, so it stops there.
  const double spread_radians =
      mean_length > 0 ? std::sqrt(-2.0 * std::log(mean_length)) : std::numbers::pi;
  finding.spread_ms = std::min(spread_radians, std::numbers::pi) * period / kTwoPi;

  // About 95% of a tight cluster lies within two standard deviations; the
  // floor (1 s or a degree of the cycle) keeps an exactly regular schedule
  // from having a window of zero width, and the cap (half the cycle in all)
  // keeps a loose one from counting every start.
  finding.window_ms =
      std::min(period / 4.0, std::max(2.0 * finding.spread_ms, std::max(1000.0, period / 360.0)));
  const double window_radians = finding.window_ms / period * kTwoPi;
  for (double angle : angles) {
    const double distance = std::abs(std::remainder(angle - mean_angle, kTwoPi));
    if (distance <= window_radians) ++finding.in_cluster;
  }
  finding.share = static_cast<double>(finding.in_cluster) / n;
  finding.phase_words = describe_phase(period_ms, finding.phase_ms, input.range_start_ms);
  finding.words =
      fmt::format("every {}: {} of {} {} began within {} of {} (spread {}, {})",
                  period_name(period_ms), finding.in_cluster, n, outages_word(n),
                  format_duration_brief(std::llround(finding.window_ms)), finding.phase_words,
                  format_duration_brief(std::llround(finding.spread_ms)), p_text(finding.p_value));
  return finding;
}

std::string not_enough(const std::string& why) { return "not enough data yet: " + why; }

}  // namespace

double rayleigh_p_value(int n, double resultant_length) {
  if (n <= 0) return 1.0;
  // Zar's approximation is floored for small n, where the arc bound is the
  // tighter one. Both fall as R grows, so the minimum rejects above the lower
  // of their two critical values of R: its false-positive rate is the larger
  // of the two rates, and the bound's is at most the threshold by construction.
  const double p =
      std::min(zar_p_value(n, resultant_length), arc_bound_p_value(n, resultant_length));
  return std::clamp(p, 0.0, 1.0);
}

std::string period_name(int64_t period_ms) {
  // Whole hours up to a day read as hours ("24h", not "1d"), as in the list of candidates.
  if (period_ms > 0 && period_ms % kHourMs == 0 && period_ms <= kDayMs) {
    return fmt::format("{}h", period_ms / kHourMs);
  }
  return format_duration_ms(period_ms);
}

PatternResult find_period(const PatternInput& input, std::optional<int64_t> forced_period_ms,
                          double significance) {
  PatternResult result;
  result.forced = forced_period_ms.has_value();
  result.significance = significance;
  const std::vector<int64_t> starts = independent_starts(input, result.outages_in_range);
  result.independent_starts = static_cast<int>(starts.size());
  // Observed time cannot exceed the range it was observed in.
  const int64_t range_ms = std::max<int64_t>(0, input.range_end_ms - input.range_start_ms);
  const double observed_ms =
      static_cast<double>(std::clamp<int64_t>(input.observed_ms, 0, range_ms));
  const std::string observed_text = format_duration_brief(static_cast<int64_t>(observed_ms));

  std::string counted =
      fmt::format("{} {} in range", result.outages_in_range, outages_word(result.outages_in_range));
  if (result.independent_starts != result.outages_in_range) {
    counted +=
        fmt::format(" ({} separate starts: starts within {} of each other count once)",
                    result.independent_starts, format_duration_brief(input.coalesce_within_ms));
  }
  if (forced_period_ms && *forced_period_ms <= 0) {
    result.verdict = "no pattern computed: the period must be positive";
    return result;
  }
  if (result.independent_starts < kPatternMinOutages) {
    result.verdict =
        not_enough(fmt::format("{}; a pattern needs at least {}", counted, kPatternMinOutages));
    return result;
  }

  std::vector<int64_t> periods(kPatternPeriodsMs.begin(), kPatternPeriodsMs.end());
  if (forced_period_ms) periods = {*forced_period_ms};
  std::optional<int64_t> shortest_untested;
  for (int64_t period_ms : periods) {
    if (observed_ms < static_cast<double>(kPatternMinCycles) * static_cast<double>(period_ms)) {
      if (!shortest_untested) shortest_untested = period_ms;
      continue;
    }
    PeriodFinding candidate = fold(starts, period_ms, input, observed_ms);
    if (candidate.outages < kPatternMinOutages) continue;
    result.candidates.push_back(std::move(candidate));
  }
  result.periods_tested = static_cast<int>(result.candidates.size());
  if (result.candidates.empty()) {
    const int64_t shortest = periods.front();
    if (observed_ms < static_cast<double>(kPatternMinCycles) * static_cast<double>(shortest)) {
      const std::string which = forced_period_ms
                                    ? "the requested period " + period_name(shortest)
                                    : "the shortest period, " + period_name(shortest) + ",";
      result.verdict = not_enough(fmt::format("{} of observed time; {} needs {} cycles ({})",
                                              observed_text, which, kPatternMinCycles,
                                              format_duration_ms(kPatternMinCycles * shortest)));
    } else {
      result.verdict =
          not_enough(fmt::format("{}; fewer than {} fall in the whole cycles that can be tested",
                                 counted, kPatternMinOutages));
    }
    return result;
  }

  // Each period tested is another chance for noise to look like a schedule:
  // 15 tests at 1% each would report a pattern in random data about 14% of
  // the time. Bonferroni keeps the chance of any false finding below
  // `significance`. In random data the phases at different periods are
  // nearly independent, so it is barely conservative (Šidák's exact
  // threshold for 15 independent tests is 0.01 / 14.9).
  result.per_period_threshold = significance / result.periods_tested;
  for (PeriodFinding& candidate : result.candidates) {
    candidate.significant = candidate.p_value < result.per_period_threshold;
  }
  const std::string rule =
      result.periods_tested == 1
          ? fmt::format("needs p < {}", significance)
          : fmt::format("each needs p < {:.2g} = {} / {} periods, Bonferroni",
                        result.per_period_threshold, significance, result.periods_tested);

  if (forced_period_ms) {
    const PeriodFinding& candidate = result.candidates.front();
    result.finding = candidate;
    result.outcome = candidate.significant ? PatternResult::Outcome::pattern
                                           : PatternResult::Outcome::no_pattern;
    result.verdict = fmt::format("at the requested period {}: {}; {} ({})",
                                 period_name(candidate.period_ms), candidate.words,
                                 candidate.significant ? "significant" : "not significant", rule);
    return result;
  }

  // Folding by a divisor of the true period clusters too (hourly starts are
  // also at :00 of every 15 minutes), so the longest significant period is
  // the finding. Folding by a multiple splits the cluster into evenly spaced
  // clumps (hourly starts by 2h sit at 0 and at 1h) whose vectors cancel.
  auto longest = std::find_if(result.candidates.rbegin(), result.candidates.rend(),
                              [](const PeriodFinding& candidate) { return candidate.significant; });
  const int significant_count =
      static_cast<int>(std::count_if(result.candidates.begin(), result.candidates.end(),
                                     [](const PeriodFinding& c) { return c.significant; }));
  std::string untested;
  if (shortest_untested) {
    untested =
        fmt::format("; {} and longer need {} cycles of observed time ({}), have {}",
                    period_name(*shortest_untested), kPatternMinCycles,
                    format_duration_ms(kPatternMinCycles * *shortest_untested), observed_text);
  }
  if (longest != result.candidates.rend()) {
    result.finding = *longest;
    result.outcome = PatternResult::Outcome::pattern;
    result.verdict = fmt::format("outages recur {} (the longest of {} significant periods; {}){}",
                                 longest->words, significant_count, rule, untested);
    return result;
  }
  const PeriodFinding& closest = *std::min_element(
      result.candidates.begin(), result.candidates.end(),
      [](const PeriodFinding& a, const PeriodFinding& b) { return a.p_value < b.p_value; });
  result.outcome = PatternResult::Outcome::no_pattern;
  result.verdict = fmt::format(
      "no pattern: {} show no significant clustering at any period from {} to {} "
      "(closest: {}, {}; {}){}",
      counted, period_name(result.candidates.front().period_ms),
      period_name(result.candidates.back().period_ms), period_name(closest.period_ms),
      p_text(closest.p_value), rule, untested);
  return result;
}

void HourOfDayHistogram::add(int64_t wall_ms, int64_t weight) {
  bins[static_cast<size_t>(floor_mod(wall_ms, kDayMs) / kHourMs)] += weight;
}

int64_t HourOfDayHistogram::total() const {
  return std::accumulate(bins.begin(), bins.end(), int64_t{0});
}

}  // namespace blip
