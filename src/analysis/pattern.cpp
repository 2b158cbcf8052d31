#include "blip/analysis/pattern.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <complex>
#include <functional>
#include <numbers>
#include <numeric>
#include <random>
#include <string>

#include "blip/analysis/mersenne_twister.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;
// Phases closer than this count as one instant when the cluster is found: a
// probe's interval blurs a stall's start by up to that much anyway.
constexpr double kClusterResolutionMs = 1000.0;
// Above this many starts the cluster is searched over bins of the period
// rather than over every pair of starts, to bound the work.
constexpr int kClusterScanAllBelow = 2000;
constexpr int kClusterBins = 2048;

int64_t floor_mod(int64_t value, int64_t divisor) {
  int64_t remainder = value % divisor;
  return remainder < 0 ? remainder + divisor : remainder;
}

// Zar, Biostatistical Analysis (eq. 27.4): Rayleigh's tail with Greenwood and
// Durand's correction. Close to exact from n = 10 (measured: bench/
// pattern_false_discovery), conservative below, where it also never drops
// below exp(sqrt(1+4n) - (1+2n)) however tight the cluster.
double zar_p_value(int n, double resultant_length) {
  const double count = n;
  const double inside =
      1.0 + 4.0 * count + 4.0 * (count * count - resultant_length * resultant_length);
  return std::clamp(std::exp(std::sqrt(std::max(inside, 0.0)) - (1.0 + 2.0 * count)), 0.0, 1.0);
}

// An exact upper bound on P(R >= resultant_length) for tight clusters. Measured
// from the mean direction, n - R = sum(1 - cos θi), so R >= n - δ puts every
// start within ±acos(1 - δ) of the mean: inside one arc of width 2·acos(1 - δ).
// That all n starts fall in some arc holding a share w of the observed time
// has probability at most n·w^(n-1) (Stevens 1939, by a union over which
// start opens the arc); `peak_ratio` is how much more than average the most
// watched phase was watched, so that no arc of that width holds more.
double arc_bound_p_value(int n, double resultant_length, double peak_ratio) {
  const double slack = std::max(0.0, n - resultant_length);
  if (slack > 1.0) return 1.0;  // the arc would exceed half the circle
  const double share = std::min(1.0, peak_ratio * std::acos(1.0 - slack) / std::numbers::pi);
  return std::min(1.0, n * std::pow(share, n - 1));
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

// The range less the blind spans: where a random outage could have started.
class ObservedTime {
 public:
  explicit ObservedTime(const PatternInput& input) {
    std::vector<std::pair<int64_t, int64_t>> blind;
    for (auto [start, end] : input.blind_ms) {
      start = std::max(start, input.range_start_ms);
      end = std::min(end, input.range_end_ms);
      if (start < end) blind.emplace_back(start, end);
    }
    std::sort(blind.begin(), blind.end());
    int64_t cursor = input.range_start_ms;
    for (const auto& [start, end] : blind) {
      if (start > cursor) add(cursor, start);
      cursor = std::max(cursor, end);
    }
    if (cursor < input.range_end_ms) add(cursor, input.range_end_ms);
  }
  int64_t total_ms() const { return total_ms_; }
  const std::vector<std::pair<int64_t, int64_t>>& spans() const { return spans_; }
  // The instant `offset_ms` into the observed time, offset in [0, total).
  int64_t at(int64_t offset_ms) const {
    const auto span = std::upper_bound(ends_.begin(), ends_.end(), offset_ms) - ends_.begin();
    const int64_t before = span == 0 ? 0 : ends_[static_cast<size_t>(span) - 1];
    return spans_[static_cast<size_t>(span)].first + (offset_ms - before);
  }

 private:
  void add(int64_t start, int64_t end) {
    spans_.emplace_back(start, end);
    total_ms_ += end - start;
    ends_.push_back(total_ms_);
  }
  std::vector<std::pair<int64_t, int64_t>> spans_;
  std::vector<int64_t> ends_;  // observed time up to the end of each span
  int64_t total_ms_ = 0;
};

// The observed time folded by one period: the mean of e^{iθ} and e^{2iθ} over
// an instant drawn at random from it (both 0 when every phase was watched
// equally), and how much more than average the most watched phase was.
struct FoldedObservedTime {
  std::complex<double> first_moment;
  std::complex<double> second_moment;
  double peak_ratio = 1;
};

FoldedObservedTime fold_observed_time(const ObservedTime& observed, int64_t period_ms) {
  FoldedObservedTime folded;
  const auto period = static_cast<double>(period_ms);
  int64_t whole_cycles = 0;
  std::vector<std::pair<int64_t, int>>
      edges;  // (phase, +1 where a part cycle begins, -1 where it ends)
  const std::complex<double> i(0, 1);
  for (const auto& [start, end] : observed.spans()) {
    whole_cycles += (end - start) / period_ms;  // whole cycles add to every phase alike
    const int64_t rest = (end - start) % period_ms;
    if (rest == 0) continue;
    const int64_t from = floor_mod(start, period_ms);
    const double a = kTwoPi * static_cast<double>(from) / period;
    const double b = kTwoPi * static_cast<double>(from + rest) / period;
    folded.first_moment += (std::polar(1.0, b) - std::polar(1.0, a)) / i;
    folded.second_moment += (std::polar(1.0, 2 * b) - std::polar(1.0, 2 * a)) / (2.0 * i);
    if (from + rest <= period_ms) {
      edges.emplace_back(from, 1);
      edges.emplace_back(from + rest, -1);
    } else {
      edges.emplace_back(from, 1);
      edges.emplace_back(period_ms, -1);
      edges.emplace_back(0, 1);
      edges.emplace_back(from + rest - period_ms, -1);
    }
  }
  // From ∫e^{ikθ}dθ over the part cycles to the mean over observed time.
  const double scale = period / (kTwoPi * static_cast<double>(observed.total_ms()));
  folded.first_moment *= scale;
  folded.second_moment *= scale;
  std::sort(edges.begin(), edges.end());  // at one phase, an end (-1) before a start
  int covering = 0;
  int most = 0;
  for (const auto& [phase, change] : edges) {
    covering += change;
    most = std::max(most, covering);
  }
  const double mean_cover = static_cast<double>(observed.total_ms()) / period;
  folded.peak_ratio = static_cast<double>(whole_cycles + most) / mean_cover;
  return folded;
}

// Rayleigh's Z against the observed time: the resultant's distance from what
// random starts would give, in units of its spread (a χ² with 2 degrees of
// freedom, halved). With every phase watched equally it is n R̄².
double rayleigh_z_observed(int n, double sum_cos, double sum_sin,
                           const FoldedObservedTime& folded) {
  const double a1 = folded.first_moment.real();
  const double b1 = folded.first_moment.imag();
  const double a2 = folded.second_moment.real();
  const double b2 = folded.second_moment.imag();
  const double var_cos = (1 + a2) / 2 - a1 * a1;
  const double var_sin = (1 - a2) / 2 - b1 * b1;
  const double covariance = b2 / 2 - a1 * b1;
  const double determinant = var_cos * var_sin - covariance * covariance;
  if (determinant <= 1e-9) return 0;  // watched at (nearly) one phase only: nothing to compare
  const double dx = sum_cos - n * a1;
  const double dy = sum_sin - n * b1;
  const double t =
      (var_sin * dx * dx - 2 * covariance * dx * dy + var_cos * dy * dy) / determinant / n;
  return t / 2;
}

struct PValue {
  double p = 1;
  const char* method = "asymptotic";
};

// cos and sin at 2^16 points around the circle, for the simulation's many
// draws: rounding a phase to 1/65536 of the cycle moves R by less than the
// draws' own noise.
constexpr int kCircleSteps = 1 << 16;
const std::array<std::pair<double, double>, kCircleSteps>& circle_table() {
  static const auto table = [] {
    std::array<std::pair<double, double>, kCircleSteps> points{};
    for (int step = 0; step < kCircleSteps; ++step) {
      const double angle = kTwoPi * step / kCircleSteps;
      points[static_cast<size_t>(step)] = {std::cos(angle), std::sin(angle)};
    }
    return points;
  }();
  return table;
}

// Where a draw of the simulation lands on the circle table: the step that
// circle[floor_mod(observed.at(offset), period) * kCircleSteps / period] reads,
// found without a search or a division per draw (the draws are the same; only
// their mapping is cheaper). An instant less `base` (a multiple of the
// period at or before every observed instant) is y >= 0, and
// floor(y * 2^16 / period) = cycles * 2^16 + step, so the step is its low 16
// bits; the quotient comes from a multiplication by 1 / period, corrected to
// the exact one.
class CircleSteps {
 public:
  CircleSteps(const ObservedTime& observed, int64_t period_ms) : period_ms_(period_ms) {
    const auto& spans = observed.spans();
    const int64_t first = spans.front().first;
    const int64_t base = first - floor_mod(first, period_ms);
    // y * 2^16 must stay exact in 64 bits with room for the correction.
    usable_ = spans.back().second - base < (int64_t{1} << 46);
    inverse_ = 1.0 / static_cast<double>(period_ms);
    int64_t before = 0;
    for (const auto& [start, end] : spans) {
      shifts_.push_back(start - base - before);
      before += end - start;
      ends_.push_back(before);
    }
    if (spans.size() > 1) {
      // A few buckets a span keep the walk short; more would cost more to fill (this is built
      // for each period tested) than the few dozen draws of an unremarkable period use.
      const int64_t buckets =
          std::clamp<int64_t>(4 * static_cast<int64_t>(spans.size()), 16, kBuckets);
      while (((observed.total_ms() - 1) >> bucket_shift_) >= buckets) ++bucket_shift_;
      for (int64_t bucket = 0; (bucket << bucket_shift_) < observed.total_ms(); ++bucket) {
        first_span_.push_back(static_cast<uint32_t>(
            std::upper_bound(ends_.begin(), ends_.end(), bucket << bucket_shift_) - ends_.begin()));
      }
    }
  }
  // False for ranges of thousands of years: then the caller maps each draw the plain way.
  bool usable() const { return usable_; }
  size_t step(int64_t offset_ms) const {
    size_t span = 0;
    if (!first_span_.empty()) {
      span = first_span_[static_cast<size_t>(offset_ms >> bucket_shift_)];
      while (ends_[span] <= offset_ms) ++span;
    }
    const auto scaled = static_cast<uint64_t>(offset_ms + shifts_[span]) << kStepBits;
    auto quotient = static_cast<uint64_t>(static_cast<double>(scaled) * inverse_);
    auto rest = static_cast<int64_t>(scaled - quotient * static_cast<uint64_t>(period_ms_));
    while (rest < 0) {
      --quotient;
      rest += period_ms_;
    }
    while (rest >= period_ms_) {
      ++quotient;
      rest -= period_ms_;
    }
    return static_cast<size_t>(quotient & (kCircleSteps - 1));
  }

 private:
  static constexpr int kStepBits = 16;
  static constexpr int64_t kBuckets = 4096;  // at most
  int64_t period_ms_;
  double inverse_ = 0;
  bool usable_ = true;
  std::vector<int64_t> shifts_;  // per span: its instant - base - the observed time before it
  std::vector<int64_t> ends_;    // observed time up to the end of each span
  int bucket_shift_ = 0;
  std::vector<uint32_t> first_span_;  // per bucket of offsets: the span holding its first
};

uint64_t mix(uint64_t value) {  // splitmix64's finaliser
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

// The exact p-value of R for few starts: how often n starts drawn at random
// from the observed time give a resultant at least as long. Sequential
// (Besag and Clifford 1991): it stops after 10 draws as extreme, which for an
// unremarkable period is after a few dozen draws, and otherwise draws enough
// to tell p from `threshold` (10 / threshold). Seeded from the data, so the
// same data give the same answer.
PValue exact_p_value(int n, double resultant_length, const ObservedTime& observed,
                     int64_t period_ms, double peak_ratio, double threshold) {
  const double bound = arc_bound_p_value(n, resultant_length, peak_ratio);
  if (bound < threshold) return {bound, "arc_bound"};
  constexpr int kExtremeDraws = 10;
  const auto draws = static_cast<int64_t>(std::ceil(kExtremeDraws / threshold));
  MersenneTwister64 random(
      mix(mix(static_cast<uint64_t>(n) * 1'000'003 + static_cast<uint64_t>(period_ms)) ^
          static_cast<uint64_t>(std::llround(resultant_length * 1e6))));
  std::uniform_int_distribution<int64_t> offset(0, observed.total_ms() - 1);
  const auto& circle = circle_table();
  const CircleSteps steps(observed, period_ms);
  // The step of the draw's instant on the circle; the plain way where CircleSteps cannot.
  auto step_of = [&](int64_t offset_ms) {
    if (steps.usable()) return steps.step(offset_ms);
    // phase × 2^16 fits in 64 bits for any period under 4,000 years.
    const int64_t phase = floor_mod(observed.at(offset_ms), period_ms);
    return static_cast<size_t>(phase * kCircleSteps / period_ms);
  };
  const double target = resultant_length * resultant_length * (1 - 1e-6);
  int extreme = 0;
  // The table is 1 MiB, more than the core's cache: the next draw's steps are found and their
  // table lines asked for before this draw's are summed, so the lines have arrived by then. The
  // numbers are drawn in the same order; the sums add in the same order.
  std::array<std::array<size_t, kPatternExactBelow>, 2> draw_steps{};
  auto find_steps = [&](std::array<size_t, kPatternExactBelow>& steps_of_draw) {
    for (int start = 0; start < n; ++start) {
      const size_t step = step_of(offset(random));
      steps_of_draw[static_cast<size_t>(start)] = step;
      __builtin_prefetch(&circle[step]);
    }
  };
  find_steps(draw_steps[1]);
  for (int64_t draw = 1; draw <= draws; ++draw) {
    const auto& steps_of_draw = draw_steps[static_cast<size_t>(draw & 1)];
    if (draw < draws) find_steps(draw_steps[static_cast<size_t>((draw + 1) & 1)]);
    double sum_cos = 0;
    double sum_sin = 0;
    for (int start = 0; start < n; ++start) {
      const auto& [cos_value, sin_value] = circle[steps_of_draw[static_cast<size_t>(start)]];
      sum_cos += cos_value;
      sum_sin += sin_value;
    }
    if (sum_cos * sum_cos + sum_sin * sum_sin >= target && ++extreme == kExtremeDraws) {
      return {kExtremeDraws / static_cast<double>(draw), "monte_carlo"};
    }
  }
  return {(extreme + 1.0) / (static_cast<double>(draws) + 1.0), "monte_carlo"};
}

// "20s", "4m10s" (whole seconds).
std::string minutes_seconds(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
}

std::string clock_text(int64_t seconds) {
  return fmt::format("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

// A distance in words, rounded up so that "within" stays true: "1s", "4m10s", "1h05m".
std::string within_text(double ms) {
  const auto seconds = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(ms / 1000.0 - 1e-9)));
  if (seconds < 3600) return minutes_seconds(seconds);
  const int64_t minutes = (seconds + 59) / 60;
  return fmt::format("{}h{:02}m", minutes / 60, minutes % 60);
}

// The phase in words, relative to a boundary people know: the minute, the
// hour, midnight UTC, the week's days. Phases are folded on epoch time, so for
// any period that divides a day, phase 0 falls on midnight UTC and on every
// multiple of the period after it; for a week, on Thursday 00:00 UTC (1 January 1970).
std::string describe_phase(int64_t period_ms, double phase_ms, int64_t range_start_ms) {
  if (period_ms == kPatternWeekMs) {
    static constexpr const char* kDays[] = {"Thursday", "Friday",  "Saturday", "Sunday",
                                            "Monday",   "Tuesday", "Wednesday"};
    const int64_t phase_s = std::llround(phase_ms / 1000.0) % (kPatternWeekMs / 1000);
    return fmt::format("{} {} UTC", kDays[phase_s / 86'400], clock_text(phase_s % 86'400));
  }
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

std::string plural(const std::string& noun, int count) { return count == 1 ? noun : noun + "s"; }

// The members of a cluster: `count` starts from `first` in the circular order of phases.
struct Arc {
  int first = 0;
  int count = 0;
};

// Scan log-likelihood ratio (Kulldorff 1997) of k of n starts in an arc
// holding a share q of the cycle, against the same starts spread evenly;
// `k_log_k[k]` is k ln k.
double scan_ratio(const std::vector<double>& k_log_k, int n, int k, double q) {
  const double outside = n - k > 0 ? static_cast<double>(n - k) * std::log1p(-q) : 0.0;
  return k_log_k[static_cast<size_t>(k)] + k_log_k[static_cast<size_t>(n - k)] -
         k_log_k[static_cast<size_t>(n)] - k * std::log(q) - outside;
}

// The cluster: of all arcs up to a quarter cycle wide that begin and end at a
// start, the one that stands out most from an even background. Arcs narrower
// than kClusterResolutionMs count as that wide, so a tight cluster is not
// split into coincidences, and the ratio grows with the count at a given
// density, so a cluster is taken whole while the sparse background around it
// stays out.
Arc densest_arc(const std::vector<double>& sorted, int64_t period_ms) {
  const int n = static_cast<int>(sorted.size());
  const auto period = static_cast<double>(period_ms);
  const double widest = period / 4;
  const double resolution = std::min(kClusterResolutionMs, widest);
  std::vector<double> k_log_k(static_cast<size_t>(n) + 1, 0.0);
  for (int k = 1; k <= n; ++k)
    k_log_k[static_cast<size_t>(k)] = k * std::log(static_cast<double>(k));
  auto phase_at = [&](int index) {
    return index < n ? sorted[static_cast<size_t>(index)]
                     : sorted[static_cast<size_t>(index - n)] + period;
  };
  Arc best{0, 1};
  double best_ratio = 0;
  if (n < kClusterScanAllBelow) {
    // The ratio grows with the count and falls with the width, so no arc
    // opening at a start beats the count within a quarter cycle after it at
    // the narrowest width: openings are tried best bound first, until the
    // bound falls below the best arc found (in a tight cluster, at once).
    std::vector<std::pair<double, int>> openings;  // (bound, first)
    openings.reserve(static_cast<size_t>(n));
    int reach = 0;  // one past the last start within a quarter cycle of `first`
    for (int first = 0; first < n; ++first) {
      reach = std::max(reach, first + 1);
      while (reach < first + n && phase_at(reach) - sorted[static_cast<size_t>(first)] <= widest)
        ++reach;
      const int most = reach - first;
      const double q = resolution / period;
      if (most > n * q) openings.emplace_back(scan_ratio(k_log_k, n, most, q), first);
    }
    std::sort(openings.begin(), openings.end(), std::greater<>());
    for (const auto& [bound, first] : openings) {
      if (bound <= best_ratio) break;
      for (int last = first; last < first + n; ++last) {
        const double width = phase_at(last) - sorted[static_cast<size_t>(first)];
        if (width > widest) break;
        const int k = last - first + 1;
        const double q = std::max(width, resolution) / period;
        if (k <= n * q) continue;  // no more than the background would put there
        const double ratio = scan_ratio(k_log_k, n, k, q);
        if (ratio > best_ratio) {
          best_ratio = ratio;
          best = {first, k};
        }
      }
    }
    return best;
  }
  // Many starts: the same search over bins, anchored at bins that hold starts.
  std::vector<int> bin_of(static_cast<size_t>(n));
  std::vector<int> counts(kClusterBins, 0);
  for (int index = 0; index < n; ++index) {
    const int bin = std::min(kClusterBins - 1, static_cast<int>(sorted[static_cast<size_t>(index)] /
                                                                period * kClusterBins));
    bin_of[static_cast<size_t>(index)] = bin;
    ++counts[static_cast<size_t>(bin)];
  }
  std::vector<int> before(2 * kClusterBins + 1, 0);  // starts in bins [0, b) of the doubled circle
  for (int b = 0; b < 2 * kClusterBins; ++b)
    before[static_cast<size_t>(b) + 1] =
        before[static_cast<size_t>(b)] + counts[static_cast<size_t>(b % kClusterBins)];
  int best_bin = 0;
  for (int first = 0; first < kClusterBins; ++first) {
    if (counts[static_cast<size_t>(first)] == 0) continue;
    for (int last = first; last < first + kClusterBins / 4; ++last) {
      if (counts[static_cast<size_t>(last % kClusterBins)] == 0) continue;
      const int k = before[static_cast<size_t>(last) + 1] - before[static_cast<size_t>(first)];
      const double q = static_cast<double>(last - first + 1) / kClusterBins;
      if (k <= n * q) continue;
      const double ratio = scan_ratio(k_log_k, n, k, q);
      if (ratio > best_ratio) {
        best_ratio = ratio;
        best_bin = first;
        best.count = k;
      }
    }
  }
  best.first =
      static_cast<int>(std::lower_bound(bin_of.begin(), bin_of.end(), best_bin) - bin_of.begin());
  return best;
}

// Phase, window and spread from the cluster's members alone.
void describe_cluster(PeriodFinding& finding, const std::vector<double>& sorted, const Arc& arc) {
  const int n = static_cast<int>(sorted.size());
  const auto period = static_cast<double>(finding.period_ms);
  std::vector<double> members;  // ascending, unwrapped past the end of the cycle
  members.reserve(static_cast<size_t>(arc.count));
  for (int m = 0; m < arc.count; ++m) {
    const int index = arc.first + m;
    members.push_back(index < n ? sorted[static_cast<size_t>(index)]
                                : sorted[static_cast<size_t>(index - n)] + period);
  }
  const size_t middle = members.size() / 2;
  const double median =
      members.size() % 2 ? members[middle] : (members[middle - 1] + members[middle]) / 2;
  finding.phase_ms = std::fmod(median, period);
  finding.window_start_ms = members.front();
  finding.window_ms = members.back() - members.front();
  finding.within_ms = std::max(median - members.front(), members.back() - median);
  std::vector<double> deviations;
  deviations.reserve(members.size());
  for (double member : members) deviations.push_back(std::abs(member - median));
  std::nth_element(deviations.begin(), deviations.begin() + static_cast<std::ptrdiff_t>(middle),
                   deviations.end());
  finding.spread_ms = 1.4826 * deviations[middle];
  finding.in_cluster = arc.count;
  finding.share = static_cast<double>(arc.count) / n;
}

// The statistics at one period: is it significant?
PeriodFinding analyse_period(const std::vector<int64_t>& starts, int64_t period_ms,
                             const ObservedTime& observed, double observed_ms, double threshold) {
  PeriodFinding finding;
  finding.period_ms = period_ms;
  finding.cycles = observed_ms / static_cast<double>(period_ms);
  const auto period = static_cast<double>(period_ms);
  double sum_cos = 0;
  double sum_sin = 0;
  for (int64_t start : starts) {
    const double angle = kTwoPi * static_cast<double>(floor_mod(start, period_ms)) / period;
    sum_cos += std::cos(angle);
    sum_sin += std::sin(angle);
  }
  const int n = static_cast<int>(starts.size());
  finding.outages = n;
  const double resultant_length = std::hypot(sum_cos, sum_sin);
  finding.mean_resultant_length = std::min(1.0, resultant_length / n);
  const FoldedObservedTime folded = fold_observed_time(observed, period_ms);
  finding.rayleigh_z = rayleigh_z_observed(n, sum_cos, sum_sin, folded);
  PValue p;
  if (n < kPatternExactBelow) {
    p = exact_p_value(n, resultant_length, observed, period_ms, folded.peak_ratio, threshold);
  } else {
    p = {zar_p_value(n, std::sqrt(n * finding.rayleigh_z)), "asymptotic"};
  }
  finding.p_value = p.p;
  finding.p_method = p.method;
  finding.significant = finding.p_value < threshold;

  finding.words = fmt::format("every {}: {} ({})", period_name(period_ms),
                              finding.significant ? "clustered" : "no clustering beyond chance",
                              p_text(finding.p_value));
  return finding;
}

// The finding's cluster and its words: the phases folded again, the densest arc, its members' phase
// and window.
void find_cluster(PeriodFinding& finding, const std::vector<int64_t>& starts,
                  const PatternInput& input) {
  const int64_t period_ms = finding.period_ms;
  const auto period = static_cast<double>(period_ms);
  std::vector<double> phases;
  phases.reserve(starts.size());
  for (int64_t start : starts) phases.push_back(static_cast<double>(floor_mod(start, period_ms)));
  std::sort(phases.begin(), phases.end());
  const int n = static_cast<int>(phases.size());
  const std::string name = period_name(period_ms);
  describe_cluster(finding, phases, densest_arc(phases, period_ms));
  finding.phase_words = describe_phase(period_ms, finding.phase_ms, input.range_start_ms);
  // "within" as the words round it: from the phase to the whole second, to the farthest member.
  const double median = finding.window_start_ms +
                        std::fmod(finding.phase_ms - finding.window_start_ms + period, period);
  const double shown_phase = std::round(median / 1000.0) * 1000.0;
  const double shown_within = std::max(shown_phase - finding.window_start_ms,
                                       finding.window_start_ms + finding.window_ms - shown_phase);
  const int others = n - finding.in_cluster;
  finding.words = fmt::format(
      "every {}: {} of {} {} began within {} of {}{} ({})", name, finding.in_cluster, n,
      plural(input.noun, n), within_text(shown_within), finding.phase_words,
      others > 0 ? fmt::format(", {} {} at other times", others, others == 1 ? "other" : "others")
                 : "",
      p_text(finding.p_value));
}

std::string not_enough(const std::string& why) { return "not enough data yet: " + why; }

}  // namespace

double rayleigh_p_value(int n, double resultant_length) {
  if (n <= 0) return 1.0;
  // Both fall as R grows, so the minimum rejects above the lower of their two
  // critical values of R: its false-positive rate is the larger of the two
  // rates, and the bound's is at most the threshold by construction.
  const double p =
      std::min(zar_p_value(n, resultant_length), arc_bound_p_value(n, resultant_length, 1.0));
  return std::clamp(p, 0.0, 1.0);
}

std::string period_name(int64_t period_ms) {
  // Whole hours up to a day read as hours ("24h", not "1d"), as in the list of candidates.
  if (period_ms > 0 && period_ms % kHourMs == 0 && period_ms <= kDayMs) {
    return fmt::format("{}h", period_ms / kHourMs);
  }
  return format_duration_ms(period_ms);
}

bool in_cluster_window(const PeriodFinding& finding, int64_t start_ms) {
  if (finding.in_cluster == 0 || finding.period_ms <= 0) return false;
  const auto period = static_cast<double>(finding.period_ms);
  const double phase = static_cast<double>(floor_mod(start_ms, finding.period_ms));
  return std::fmod(phase - finding.window_start_ms + 2 * period, period) <= finding.window_ms;
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
  const ObservedTime observed(input);

  std::string counted = fmt::format("{} {} in range", result.outages_in_range,
                                    plural(input.noun, result.outages_in_range));
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
  std::vector<int64_t> testable;
  for (int64_t period_ms : periods) {
    if (observed_ms < static_cast<double>(kPatternMinCycles) * static_cast<double>(period_ms) ||
        observed.total_ms() <= 0) {
      if (!shortest_untested) shortest_untested = period_ms;
      continue;
    }
    testable.push_back(period_ms);
  }
  result.periods_tested = static_cast<int>(testable.size());
  if (testable.empty()) {
    const int64_t shortest = periods.front();
    const std::string which = forced_period_ms
                                  ? "the requested period " + period_name(shortest)
                                  : "the shortest period, " + period_name(shortest) + ",";
    result.verdict = not_enough(fmt::format("{} of observed time; {} needs {} cycles ({})",
                                            observed_text, which, kPatternMinCycles,
                                            format_duration_ms(kPatternMinCycles * shortest)));
    return result;
  }

  // Each period tested is another chance for noise to look like a schedule:
  // 16 tests at 1% each would report a pattern in random data about 15% of
  // the time. Bonferroni keeps the chance of any false finding below
  // `significance`. In random data the phases at different periods are
  // nearly independent, so it is barely conservative (measured in
  // bench/pattern_false_discovery: docs/benchmarks.md).
  result.per_period_threshold = significance / result.periods_tested;
  for (int64_t period_ms : testable) {
    result.candidates.push_back(
        analyse_period(starts, period_ms, observed, observed_ms, result.per_period_threshold));
  }
  const std::string rule =
      result.periods_tested == 1
          ? fmt::format("needs p < {}", significance)
          : fmt::format("each needs p < {:.2g} = {} / {} periods, Bonferroni",
                        result.per_period_threshold, significance, result.periods_tested);

  if (forced_period_ms) {
    PeriodFinding& candidate = result.candidates.front();
    find_cluster(candidate, starts, input);
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
    find_cluster(*longest, starts, input);
    result.finding = *longest;
    result.outcome = PatternResult::Outcome::pattern;
    result.verdict =
        fmt::format("{} recur {} (the longest of {} significant periods; {}){}",
                    plural(input.noun, 2), longest->words, significant_count, rule, untested);
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

namespace {

uint64_t input_key(const PatternInput& input, std::optional<int64_t> forced_period_ms,
                   double significance) {
  uint64_t key = 0xcbf29ce484222325ULL;
  auto add = [&](uint64_t value) { key = mix(key ^ value); };
  for (int64_t start : input.start_ms) add(static_cast<uint64_t>(start));
  for (auto [from, to] : input.blind_ms)
    add(static_cast<uint64_t>(from) * 31 + static_cast<uint64_t>(to));
  add(static_cast<uint64_t>(input.observed_ms));
  add(static_cast<uint64_t>(input.range_start_ms));
  add(static_cast<uint64_t>(input.range_end_ms));
  add(static_cast<uint64_t>(input.coalesce_within_ms));
  add(std::hash<std::string>{}(input.noun));
  add(forced_period_ms ? static_cast<uint64_t>(*forced_period_ms) : ~uint64_t{0});
  add(std::bit_cast<uint64_t>(significance));
  return key;
}

bool same_input(const PatternInput& a, const PatternInput& b) {
  return a.start_ms == b.start_ms && a.blind_ms == b.blind_ms && a.observed_ms == b.observed_ms &&
         a.range_start_ms == b.range_start_ms && a.range_end_ms == b.range_end_ms &&
         a.coalesce_within_ms == b.coalesce_within_ms && a.noun == b.noun;
}

}  // namespace

PatternResult PatternMemo::find(const PatternInput& input, std::optional<int64_t> forced_period_ms,
                                double significance) {
  const uint64_t key = input_key(input, forced_period_ms, significance);
  auto matching = [&](Entries& entries) {
    auto [from, to] = entries.equal_range(key);
    const auto found = std::find_if(from, to, [&](const auto& keyed) {
      const Entry& entry = keyed.second;
      return entry.forced_period_ms == forced_period_ms &&
             std::bit_cast<uint64_t>(entry.significance) == std::bit_cast<uint64_t>(significance) &&
             same_input(entry.input, input);
    });
    return found == to ? entries.end() : found;
  };
  if (auto found = matching(current_); found != current_.end()) {
    ++hits_;
    return found->second.result;
  }
  if (auto found = matching(previous_); found != previous_.end()) {
    ++hits_;
    return current_.insert(previous_.extract(found))->second.result;
  }
  ++misses_;
  return current_
      .emplace(key, Entry{input, forced_period_ms, significance,
                          find_period(input, forced_period_ms, significance)})
      ->second.result;
}

void PatternMemo::next_round() {
  previous_ = std::move(current_);
  current_.clear();
}

void HourOfDayHistogram::add(int64_t wall_ms, int64_t weight) {
  bins[static_cast<size_t>(floor_mod(wall_ms, kDayMs) / kHourMs)] += weight;
}

int64_t HourOfDayHistogram::total() const {
  return std::accumulate(bins.begin(), bins.end(), int64_t{0});
}

}  // namespace blip
