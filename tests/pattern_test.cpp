#include "blip/analysis/pattern.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

namespace blip {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMidnight = 1'795'392'000'000;  // 2026-11-23T00:00:00Z

// Fully observed range (no blind time).
PatternInput observed(std::vector<int64_t> starts, int64_t from_ms, int64_t to_ms) {
  PatternInput input;
  input.start_ms = std::move(starts);
  input.range_start_ms = from_ms;
  input.range_end_ms = to_ms;
  input.observed_ms = to_ms - from_ms;
  return input;
}

// Distance between two phases on a circle of circumference `period_ms`.
double circular_distance(double a_ms, double b_ms, int64_t period_ms) {
  const auto period = static_cast<double>(period_ms);
  double difference = std::fmod(std::abs(a_ms - b_ms), period);
  return std::min(difference, period - difference);
}

// `count` starts every `period_ms` from `first_ms`, each moved by `jitter`.
template <typename Jitter>
std::vector<int64_t> regular_starts(int64_t first_ms, int64_t period_ms, int count, Jitter jitter) {
  std::vector<int64_t> starts;
  starts.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) starts.push_back(first_ms + i * period_ms + jitter());
  return starts;
}

std::vector<int64_t> uniform_starts(std::mt19937_64& random, int count, int64_t from_ms,
                                    int64_t to_ms) {
  std::uniform_int_distribution<int64_t> when(from_ms, to_ms - 1);
  std::vector<int64_t> starts;
  starts.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) starts.push_back(when(random));
  return starts;
}

// An upper bound for the observed rate of an event of probability `rate` in
// `trials` trials: three binomial standard deviations above it.
double binomial_bound(double rate, int trials) {
  return rate + 3.0 * std::sqrt(rate * (1 - rate) / trials);
}

TEST(Pattern, HourlyStartsAtTheTopOfTheHourOver12HoursArePeriod1hPhase0) {
  std::mt19937_64 random(1);
  std::uniform_int_distribution<int64_t> jitter(-30 * kSecond, 30 * kSecond);
  auto input = observed(regular_starts(kMidnight, kHour, 12, [&] { return jitter(random); }),
                        kMidnight - 30 * kMinute, kMidnight + 11 * kHour + 30 * kMinute);
  PatternResult result = find_period(input);
  ASSERT_EQ(result.outcome, PatternResult::Outcome::pattern) << result.verdict;
  ASSERT_TRUE(result.finding);
  EXPECT_EQ(result.finding->period_ms, kHour) << result.verdict;
  EXPECT_LT(circular_distance(result.finding->phase_ms, 0, kHour), 30 * kSecond);
  EXPECT_EQ(result.finding->outages, 12);
  // ±30 s uniform jitter has a standard deviation of 17 s: most, not
  // necessarily all, starts lie within two of them.
  EXPECT_GE(result.finding->share, 0.8);
  EXPECT_LT(result.finding->spread_ms, 30 * kSecond);
  // 2h, 3h and 4h were tested (3 or more cycles in 12 h) and cancelled out.
  for (const PeriodFinding& candidate : result.candidates) {
    if (candidate.period_ms > kHour) {
      EXPECT_FALSE(candidate.significant) << candidate.words;
    }
  }
  EXPECT_EQ(result.candidates.back().period_ms, 4 * kHour);
  EXPECT_NE(result.verdict.find("6h and longer need 3 cycles"), std::string::npos)
      << result.verdict;
}

TEST(Pattern, StartsEvery15MinutesArePeriod15mNot30mOr1h) {
  std::mt19937_64 random(2);
  std::uniform_int_distribution<int64_t> jitter(-30 * kSecond, 30 * kSecond);
  auto input = observed(regular_starts(kMidnight, 15 * kMinute, 24, [&] { return jitter(random); }),
                        kMidnight - 7 * kMinute, kMidnight + 6 * kHour - 7 * kMinute);
  PatternResult result = find_period(input);
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, 15 * kMinute) << result.verdict;
  EXPECT_LT(circular_distance(result.finding->phase_ms, 0, 15 * kMinute), 30 * kSecond);
  for (const PeriodFinding& candidate : result.candidates) {
    if (candidate.period_ms == 30 * kMinute || candidate.period_ms == kHour) {
      EXPECT_FALSE(candidate.significant) << candidate.words;
    }
  }
}

TEST(Pattern, UniformlyRandomStartsHaveNoFinding) {
  std::mt19937_64 random(3);
  auto input = observed(uniform_starts(random, 30, kMidnight, kMidnight + 2 * kDay), kMidnight,
                        kMidnight + 2 * kDay);
  PatternResult result = find_period(input);
  EXPECT_EQ(result.outcome, PatternResult::Outcome::no_pattern);
  EXPECT_FALSE(result.finding) << result.verdict;
  EXPECT_EQ(result.verdict.rfind("no pattern: 30 outages in range", 0), 0U) << result.verdict;
  EXPECT_EQ(result.periods_tested, 14);  // 24h needs 3 days
}

TEST(Pattern, TwoOutagesAreNotEnoughData) {
  auto input = observed({kMidnight + kHour, kMidnight + 2 * kHour}, kMidnight, kMidnight + kDay);
  PatternResult result = find_period(input);
  EXPECT_EQ(result.outcome, PatternResult::Outcome::not_enough_data);
  EXPECT_FALSE(result.finding);
  EXPECT_TRUE(result.candidates.empty());
  EXPECT_EQ(result.verdict, "not enough data yet: 2 outages in range; a pattern needs at least 3");
}

TEST(Pattern, DailyAt0300Over5DaysIsPeriod24hAt0300) {
  std::mt19937_64 random(5);
  std::uniform_int_distribution<int64_t> jitter(-30 * kSecond, 30 * kSecond);
  auto input =
      observed(regular_starts(kMidnight + 3 * kHour, kDay, 5, [&] { return jitter(random); }),
               kMidnight, kMidnight + 5 * kDay);
  PatternResult result = find_period(input);
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kDay) << result.verdict;
  EXPECT_LT(circular_distance(result.finding->phase_ms, 3 * kHour, kDay), 30 * kSecond);
  EXPECT_EQ(result.finding->in_cluster, 5);
  EXPECT_TRUE(result.finding->phase_words.starts_with("+02:59:") ||
              result.finding->phase_words.starts_with("+03:00:"))
      << result.finding->phase_words;
  EXPECT_TRUE(result.finding->phase_words.ends_with(" after midnight UTC"))
      << result.finding->phase_words;
  // Five starts cannot pass with Zar's approximation alone (it bottoms out at
  // p = 0.0016 for n = 5, above 0.01 / 15); the arc bound carries them.
  EXPECT_LT(result.finding->p_value, result.per_period_threshold);
}

TEST(Pattern, ForcedPeriodReportsItsStatisticsEvenWhenNotSignificant) {
  std::mt19937_64 random(6);
  auto input = observed(uniform_starts(random, 20, kMidnight, kMidnight + kDay), kMidnight,
                        kMidnight + kDay);
  PatternResult result = find_period(input, kHour);
  EXPECT_TRUE(result.forced);
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kHour);
  EXPECT_FALSE(result.finding->significant);
  EXPECT_GE(result.finding->p_value, 0.01);
  EXPECT_EQ(result.outcome, PatternResult::Outcome::no_pattern);
  ASSERT_EQ(result.candidates.size(), 1U);
  EXPECT_DOUBLE_EQ(result.per_period_threshold, 0.01);  // one test: nothing to share
  EXPECT_NE(result.verdict.find("at the requested period 1h"), std::string::npos) << result.verdict;
  EXPECT_NE(result.verdict.find("not significant"), std::string::npos) << result.verdict;
}

TEST(Pattern, ForcedPeriodNeedsThreeCyclesToo) {
  auto input = observed({kMidnight + kHour, kMidnight + 2 * kHour, kMidnight + 3 * kHour},
                        kMidnight, kMidnight + 36 * kHour);
  PatternResult result = find_period(input, kDay);
  EXPECT_EQ(result.outcome, PatternResult::Outcome::not_enough_data);
  EXPECT_FALSE(result.finding);
  EXPECT_EQ(
      result.verdict,
      "not enough data yet: 1d12h of observed time; the requested period 24h needs 3 cycles (3d)");
}

TEST(Pattern, ForcedDivisorOfTheTruePeriodIsReportedAsAsked) {
  auto input = observed(regular_starts(kMidnight, kHour, 12, [] { return int64_t{0}; }),
                        kMidnight - kMinute, kMidnight + 12 * kHour - kMinute);
  PatternResult result = find_period(input, 15 * kMinute);
  ASSERT_TRUE(result.finding);
  EXPECT_EQ(result.finding->period_ms, 15 * kMinute);
  EXPECT_TRUE(result.finding->significant);
}

TEST(Pattern, PhaseWrapsAroundTheTopOfTheHour) {
  // Half the starts at :59:50, half at :00:10: the mean is :00:00, not :30:00.
  std::vector<int64_t> starts;
  starts.reserve(12);
  for (int hour = 0; hour < 12; ++hour) {
    starts.push_back(kMidnight + hour * kHour + (hour % 2 == 0 ? 10 * kSecond : -10 * kSecond));
  }
  auto input = observed(starts, kMidnight - 30 * kMinute, kMidnight + 11 * kHour + 30 * kMinute);
  PatternResult result = find_period(input);
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kHour);
  EXPECT_LT(circular_distance(result.finding->phase_ms, 0, kHour), kSecond);
  EXPECT_EQ(result.finding->in_cluster, 12);
  EXPECT_NEAR(result.finding->spread_ms, 10 * kSecond, kSecond);
}

TEST(Pattern, PhaseWords) {
  struct Case {
    const char* name;
    int64_t period_ms;
    int64_t offset_ms;
    const char* phase_words;
  };
  const auto cases = std::to_array<Case>({
      {"minute", kMinute, 20 * kSecond, "+20s into each minute"},
      {"5 minutes", 5 * kMinute, 70 * kSecond, "+1m10s into each 5m"},
      {"quarter hour", 15 * kMinute, 4 * kMinute + 10 * kSecond,
       "+4m10s into each 15m (:04:10, :19:10, :34:10, :49:10 past each hour)"},
      {"hour", kHour, 12 * kMinute + 5 * kSecond, "+00:12:05 past the hour"},
      {"just before the hour", kHour, -10 * kSecond, "00:00:10 before the hour"},
      {"2 hours", 2 * kHour, 30 * kMinute, "+00:30:00 into each 2h from 00:00 UTC"},
      {"6 hours", 6 * kHour, kHour,
       "+01:00:00 into each 6h (at 01:00:00, 07:00:00, 13:00:00, 19:00:00 UTC)"},
      {"day", kDay, 3 * kHour + 5 * kSecond, "+03:00:05 after midnight UTC"},
      {"day, late", kDay, 23 * kHour, "01:00:00 before midnight UTC"},
      {"just before each minute", kMinute, -2 * kSecond, "2s before each minute"},
      {"just before each quarter", 15 * kMinute, -5 * kSecond,
       "5s before each 15m (:14:55, :29:55, :44:55, :59:55 past each hour)"},
      {"45 minutes", 45 * kMinute, 10 * kMinute, "+10m00s into each 45m from 00:00 UTC"},
      {"not on the clock", 7 * kHour, kHour,
       "centred on 2026-11-23T01:00:00.000Z and every 7h from there"},
  });
  for (const Case& c : cases) {
    auto input = observed(regular_starts(kMidnight + c.period_ms + c.offset_ms, c.period_ms, 8,
                                         [] { return int64_t{0}; }),
                          kMidnight, kMidnight + 10 * c.period_ms);
    PatternResult result = find_period(input, c.period_ms);
    ASSERT_TRUE(result.finding) << c.name << ": " << result.verdict;
    EXPECT_EQ(result.finding->phase_words, c.phase_words) << c.name;
  }
}

TEST(Pattern, FindingInWords) {
  auto input =
      observed(regular_starts(kMidnight + 12 * kSecond, kHour, 10, [] { return int64_t{0}; }),
               kMidnight - 30 * kMinute, kMidnight + 9 * kHour + 30 * kMinute);
  PatternResult result = find_period(input);
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->words,
            "every 1h: 10 of 10 outages began within 10.0s of +00:00:12 past the hour (spread "
            "0.00s, p < 0.0001)");
  EXPECT_EQ(result.verdict.rfind("outages recur every 1h: 10 of 10", 0), 0U) << result.verdict;
  EXPECT_NE(result.verdict.find("Bonferroni"), std::string::npos) << result.verdict;
}

TEST(Pattern, TooLittleObservedTimeIsNotEnoughData) {
  auto input = observed({kMidnight, kMidnight + 40 * kSecond, kMidnight + 80 * kSecond}, kMidnight,
                        kMidnight + 2 * kMinute);
  PatternResult result = find_period(input);
  EXPECT_EQ(result.outcome, PatternResult::Outcome::not_enough_data);
  EXPECT_EQ(
      result.verdict,
      "not enough data yet: 2m00s of observed time; the shortest period, 1m, needs 3 cycles (3m)");
}

TEST(Pattern, BlindTimeDoesNotCountAsObserved) {
  // 4 days of range, but blip saw only 2 of them: 24h cannot be tested.
  auto input = observed(regular_starts(kMidnight + 3 * kHour, kDay, 4, [] { return int64_t{0}; }),
                        kMidnight, kMidnight + 4 * kDay);
  input.observed_ms = 2 * kDay;
  PatternResult result = find_period(input);
  for (const PeriodFinding& candidate : result.candidates) {
    EXPECT_LT(candidate.period_ms, kDay);
  }
  EXPECT_NE(result.verdict.find("24h and longer need 3 cycles of observed time (3d), have 2d00h"),
            std::string::npos)
      << result.verdict;
}

TEST(Pattern, StartsThatComeTogetherCountOnce) {
  // Ten incidents at random times, each taking down five probes within a few
  // seconds. Counted as 50 independent starts, any chance clustering of the
  // ten would weigh five times.
  std::mt19937_64 random(7);
  const int64_t slot = 2 * kDay / 10;  // one incident in each, so no two run together
  std::uniform_int_distribution<int64_t> within_slot(0, slot - kMinute);
  int with_coalescing = 0;
  int without_coalescing = 0;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int64_t> starts;
    for (int incident = 0; incident < 10; ++incident) {
      const int64_t first = kMidnight + int64_t{incident} * slot + within_slot(random);
      for (int probe = 0; probe < 5; ++probe) starts.push_back(first + 2 * kSecond * probe);
    }
    auto input = observed(starts, kMidnight, kMidnight + 2 * kDay);
    PatternResult result = find_period(input);
    EXPECT_EQ(result.outages_in_range, 50);
    EXPECT_EQ(result.independent_starts, 10);
    if (result.finding) ++with_coalescing;
    input.coalesce_within_ms = 0;
    if (find_period(input).finding) ++without_coalescing;
  }
  EXPECT_LE(with_coalescing, 1);
  EXPECT_GE(without_coalescing, 10);  // why coalescing is on by default
}

TEST(Pattern, PartialCyclesDoNotMakeADailyPattern) {
  // 3.5 days: half of each day is observed 4 times, half 3 times. Folding
  // all starts would lean to the first half; only whole cycles are folded.
  std::mt19937_64 random(8);
  const int64_t end = kMidnight + 3 * kDay + 12 * kHour;
  auto input = observed(uniform_starts(random, 3000, kMidnight, end), kMidnight, end);
  input.coalesce_within_ms = 0;
  PatternResult result = find_period(input);
  EXPECT_FALSE(result.finding) << result.verdict;
  const PeriodFinding& day = result.candidates.back();
  ASSERT_EQ(day.period_ms, kDay);
  EXPECT_NEAR(day.outages, 3000.0 * 6 / 7, 150);  // the first half day is not folded
}

TEST(Pattern, RayleighPValue) {
  EXPECT_DOUBLE_EQ(rayleigh_p_value(10, 0), 1.0);
  EXPECT_DOUBLE_EQ(rayleigh_p_value(0, 0), 1.0);
  // Large n: close to exp(-Z).
  const double z = 5.0;
  EXPECT_NEAR(rayleigh_p_value(1000, std::sqrt(z * 1000)), std::exp(-z), 0.001);
  // Five starts at one instant: Zar's approximation alone says 0.0016.
  EXPECT_LT(rayleigh_p_value(5, 5.0), 1e-9);
  EXPECT_GT(rayleigh_p_value(5, 4.0), 0.01);
}

TEST(PatternProperty, FalsePositiveRateStaysUnderTheSignificance) {
  constexpr double kSignificance = 0.01;
  constexpr int kTrials = 200;
  std::mt19937_64 random(9);
  std::uniform_int_distribution<int> count(5, 40);
  std::uniform_int_distribution<int64_t> observed_time(24 * kHour, 72 * kHour);
  std::uniform_int_distribution<int64_t> offset(0, kDay);
  int findings = 0;
  int tests = 0;
  int below_tenth = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t from = kMidnight + offset(random);
    const int64_t to = from + observed_time(random);
    PatternResult result = find_period(
        observed(uniform_starts(random, count(random), from, to), from, to), {}, kSignificance);
    if (result.finding) ++findings;
    for (const PeriodFinding& candidate : result.candidates) {
      ++tests;
      if (candidate.p_value < 0.1) ++below_tenth;
    }
  }
  EXPECT_LE(findings, binomial_bound(kSignificance, kTrials) * kTrials);
  // The p-values themselves are calibrated, not only the rare tail.
  EXPECT_LE(below_tenth, binomial_bound(0.1, tests) * tests) << below_tenth << " of " << tests;
}

TEST(PatternProperty, HourlyStartsWithRandomPhaseAndNoiseAreFoundAtTheirPhase) {
  std::mt19937_64 random(10);
  std::uniform_int_distribution<int64_t> phase(0, kHour - 1);
  for (int64_t sigma : {30 * kSecond, 2 * kMinute, 5 * kMinute}) {
    for (int trial = 0; trial < 30; ++trial) {
      const int64_t true_phase = phase(random);
      std::normal_distribution<double> noise(0, static_cast<double>(sigma));
      auto input = observed(regular_starts(kMidnight + true_phase, kHour, 24,
                                           [&] { return static_cast<int64_t>(noise(random)); }),
                            kMidnight, kMidnight + kDay);
      PatternResult result = find_period(input);
      ASSERT_TRUE(result.finding) << "sigma " << sigma << ": " << result.verdict;
      EXPECT_EQ(result.finding->period_ms, kHour) << result.verdict;
      // The mean of ~24 normal deviations: 4 standard errors.
      EXPECT_LT(circular_distance(result.finding->phase_ms, static_cast<double>(true_phase), kHour),
                4.0 * static_cast<double>(sigma) / std::sqrt(24.0) + kSecond)
          << "sigma " << sigma;
      EXPECT_NEAR(result.finding->spread_ms, static_cast<double>(sigma),
                  0.5 * static_cast<double>(sigma));
    }
  }
}

TEST(PatternProperty, HeavyNoiseFindsNothingFalse) {
  // σ = 20 min blurs an hourly schedule almost flat: at most a weak 1h finding,
  // never a period the data does not have.
  std::mt19937_64 random(11);
  std::normal_distribution<double> noise(0, static_cast<double>(20 * kMinute));
  int hourly = 0;
  for (int trial = 0; trial < 30; ++trial) {
    auto input = observed(
        regular_starts(kMidnight, kHour, 24, [&] { return static_cast<int64_t>(noise(random)); }),
        kMidnight - 30 * kMinute, kMidnight + kDay - 30 * kMinute);
    PatternResult result = find_period(input);
    if (!result.finding) continue;
    EXPECT_EQ(result.finding->period_ms, kHour) << result.verdict;
    ++hourly;
  }
  EXPECT_LE(hourly, 15);
}

TEST(HourOfDayHistogram, CountsUtcHours) {
  HourOfDayHistogram histogram;
  histogram.add(kMidnight + 3 * kHour + 5 * kMinute);
  histogram.add(kMidnight + kDay + 3 * kHour, 2);
  histogram.add(-kHour);  // 23:00 on 1969-12-31
  EXPECT_EQ(histogram.bins[3], 3);
  EXPECT_EQ(histogram.bins[23], 1);
  EXPECT_EQ(histogram.total(), 4);
}

}  // namespace
}  // namespace blip
