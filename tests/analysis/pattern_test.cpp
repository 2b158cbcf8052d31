#include "blip/analysis/pattern.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <random>
#include <string>

#include "blip/alerts/outage_phase.hpp"
#include "blip/analysis/mersenne_twister.hpp"
#include "blip/analysis/pattern_null.hpp"

namespace blip {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kMidnight = 1'795'392'000'000;  // 2026-11-23T00:00:00Z, a Monday

int64_t floor_mod_ms(int64_t value, int64_t divisor) {
  return ((value % divisor) + divisor) % divisor;
}

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
  EXPECT_NEAR(result.finding->window_ms, 20 * kSecond, 1.0);
  // Every member is 10 s from the median: the robust spread is 1.4826 × 10 s.
  EXPECT_NEAR(result.finding->spread_ms, 1.4826 * 10 * kSecond, 1.0);
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
      // kMidnight is a Monday: six days on is Sunday.
      {"week", kPatternWeekMs, 6 * kDay + 3 * kHour + 5 * kSecond, "Sunday 03:00:05 UTC"},
      {"week, Thursday", kPatternWeekMs, 3 * kDay + 30 * kMinute, "Thursday 00:30:00 UTC"},
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
            "every 1h: 10 of 10 outages began within 1s of +00:00:12 past the hour (p < 0.0001)");
  EXPECT_EQ(result.finding->window_ms, 0);
  EXPECT_EQ(result.finding->p_method, "arc_bound");
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
  // 3.5 days: half of each day is observed 4 times, half 3 times, so random
  // starts lean to the first half. Against evenly spread phases 3,000 starts
  // would make that lean a daily pattern (Rayleigh's Z about 21); against the
  // observed time it is what chance gives.
  std::mt19937_64 random(8);
  const int64_t end = kMidnight + 3 * kDay + 12 * kHour;
  auto input = observed(uniform_starts(random, 3000, kMidnight, end), kMidnight, end);
  input.coalesce_within_ms = 0;
  PatternResult result = find_period(input);
  EXPECT_FALSE(result.finding) << result.verdict;
  const PeriodFinding& day = result.candidates.back();
  ASSERT_EQ(day.period_ms, kDay);
  EXPECT_EQ(day.outages, 3000);                // every start is folded
  EXPECT_GT(day.mean_resultant_length, 0.05);  // the lean is there
  EXPECT_GT(day.p_value, 0.01) << day.words;
}

TEST(Pattern, ABlindDayDoesNotMakeADailyPattern) {
  // Four days watched, the afternoon of one of them blind (12:00-24:00): the
  // mornings were watched four times, the afternoons three. 400 random
  // outages then lean to the morning; the test knows the afternoon was blind.
  std::mt19937_64 random(12);
  PatternInput input;
  input.range_start_ms = kMidnight;
  input.range_end_ms = kMidnight + 4 * kDay;
  input.blind_ms = {{kMidnight + kDay + 12 * kHour, kMidnight + 2 * kDay}};
  input.observed_ms = 4 * kDay - 12 * kHour;
  input.coalesce_within_ms = 0;
  int found = 0;
  int found_without_blind = 0;
  for (int trial = 0; trial < 20; ++trial) {
    input.start_ms.clear();
    for (int64_t start : uniform_starts(random, 1600, kMidnight, kMidnight + 4 * kDay)) {
      if (start < input.blind_ms[0].first || start >= input.blind_ms[0].second)
        input.start_ms.push_back(start);
    }
    found += find_period(input).finding ? 1 : 0;
    PatternInput unaware = input;
    unaware.blind_ms.clear();
    found_without_blind += find_period(unaware).finding ? 1 : 0;
  }
  EXPECT_LE(found, 1);
  EXPECT_GE(found_without_blind, 10);  // why the blind windows are passed in
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
      // The median of ~24 normal deviations (its standard error is 1.25 σ/√24): 4 of them.
      EXPECT_LT(circular_distance(result.finding->phase_ms, static_cast<double>(true_phase), kHour),
                5.0 * static_cast<double>(sigma) / std::sqrt(24.0) + kSecond)
          << "sigma " << sigma;
      // 1.4826 × the members' MAD: σ, give or take what 24 samples allow (its standard error is a
      // quarter of σ).
      EXPECT_NEAR(result.finding->spread_ms, static_cast<double>(sigma),
                  0.6 * static_cast<double>(sigma));
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

// One probe's outage starts as blip records them: it samples every
// `interval_ms` (from a random offset), an hourly stall keeps it down for 40 s
// from `stall_phase_ms` past the hour (moving `drift_ms_per_day` a day),
// random outages of 20-120 s come as a Poisson process, and down time that
// overlaps is one outage, which starts at its first down sample.
struct ProbeHistory {
  std::vector<int64_t> starts;
  std::vector<int64_t> stall_starts;  // the starts that are the stall's
  int random_starts = 0;
};

ProbeHistory simulate_probe(uint64_t seed, int days, int64_t stall_phase_ms,
                            int64_t drift_ms_per_day, double random_per_day,
                            int64_t interval_ms = kSecond) {
  std::mt19937_64 random(seed);
  struct Down {
    int64_t from;
    int64_t until;
    bool stall;
  };
  std::vector<Down> down;
  const int64_t from = kMidnight;
  const int64_t to = kMidnight + days * kDay;
  for (int64_t hour = from; hour < to; hour += kHour) {
    const int64_t at = hour + stall_phase_ms + drift_ms_per_day * ((hour - from) / kDay);
    down.push_back({at, at + 40 * kSecond, true});
  }
  if (random_per_day > 0) {
    std::exponential_distribution<double> gap(random_per_day / static_cast<double>(kDay));
    std::uniform_int_distribution<int64_t> length(20 * kSecond, 120 * kSecond);
    for (auto at = static_cast<double>(from) + gap(random); at < static_cast<double>(to);
         at += gap(random)) {
      const auto start = static_cast<int64_t>(at);
      down.push_back({start, start + length(random), false});
    }
  }
  std::sort(down.begin(), down.end(), [](const Down& a, const Down& b) { return a.from < b.from; });
  const int64_t sample_offset = std::uniform_int_distribution<int64_t>(0, interval_ms - 1)(random);
  auto first_sample_at = [&](int64_t at) {
    return at + floor_mod_ms(sample_offset - at, interval_ms);
  };
  ProbeHistory history;
  for (size_t i = 0; i < down.size();) {
    const Down& first = down[i];
    int64_t until = first.until;
    size_t next = i + 1;
    while (next < down.size() && down[next].from <= until)
      until = std::max(until, down[next++].until);
    const int64_t start = first_sample_at(first.from);
    history.starts.push_back(start);
    if (first.stall) {
      history.stall_starts.push_back(start);
    } else {
      ++history.random_starts;
    }
    i = next;
  }
  return history;
}

// How many starts fall in [low, high] of phase (ms past the hour), the arc taken the short way.
int starts_within(const std::vector<int64_t>& starts, double low, double high) {
  return static_cast<int>(std::count_if(starts.begin(), starts.end(), [&](int64_t start) {
    const double phase = static_cast<double>(((start % kHour) + kHour) % kHour);
    return phase >= low && phase <= high;
  }));
}

TEST(PatternExact, FindingsTakeThePhaseAndWindowFromTheClusterItself) {
  struct Case {
    const char* name;
    int days;
    int64_t stall_phase_ms;
    int64_t drift_ms_per_day;
    double random_per_day;
    double max_window_ms;
  };
  const auto cases = std::to_array<Case>({
      // bench/generate_history --probes 5 --rate 1 --days 14 --incident-probes 3: probes 0-2.
      {"14 days, stall at +5.0 s, random outages once a day", 14, 5'000, 0, 1.0, 2 * kSecond},
      {"14 days, stall at +5.8 s", 14, 5'800, 0, 1.0, 2 * kSecond},
      {"14 days, stall at +6.6 s", 14, 6'600, 0, 1.0, 2 * kSecond},
      {"clean: the stall alone", 7, 12 * kMinute, 0, 0.0, kSecond},
      // 336 stalls and ~145 random outages: 30% of all.
      {"30% random outages", 14, 20 * kMinute + 30 * kSecond, 0, 10.3, 2 * kSecond},
      // The stall moves a second a day: 14 seconds in all.
      {"drifting a second a day", 14, 5'000, 1'000, 1.0, 15 * kSecond},
  });
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ProbeHistory history =
        simulate_probe(++seed, c.days, c.stall_phase_ms, c.drift_ms_per_day, c.random_per_day);
    PatternInput input = observed(history.starts, kMidnight, kMidnight + c.days * kDay);
    const PatternResult result = find_period(input);
    ASSERT_EQ(result.outcome, PatternResult::Outcome::pattern) << result.verdict;
    const PeriodFinding& finding = *result.finding;
    EXPECT_EQ(finding.period_ms, kHour) << result.verdict;

    // The truth: the stall's starts, each at its first down sample.
    std::vector<double> truth;
    for (int64_t start : history.stall_starts) truth.push_back(static_cast<double>(start % kHour));
    std::sort(truth.begin(), truth.end());
    const double true_median = truth[truth.size() / 2];
    EXPECT_LE(std::abs(finding.phase_ms - true_median), kSecond) << result.verdict;
    EXPECT_LE(
        std::abs(finding.phase_ms -
                 static_cast<double>(c.stall_phase_ms + c.drift_ms_per_day * (c.days - 1) / 2)),
        kSecond)
        << result.verdict;
    EXPECT_LE(finding.window_ms, c.max_window_ms) << result.verdict;
    EXPECT_GE(finding.window_ms, truth.back() - truth.front()) << "every stall is in the window";
    // Exact: the stall's starts, and any random start that happened to fall among them.
    EXPECT_EQ(finding.in_cluster, starts_within(history.starts, truth.front(), truth.back()))
        << result.verdict;
    EXPECT_GE(finding.in_cluster, static_cast<int>(history.stall_starts.size()));
    EXPECT_LE(finding.in_cluster, static_cast<int>(history.stall_starts.size()) + 1);
    EXPECT_EQ(finding.outages, static_cast<int>(history.starts.size()));
    const int others = finding.outages - finding.in_cluster;
    const std::string expected_words = fmt::format(
        "every 1h: {} of {} outages began within {} of {}{}", finding.in_cluster, finding.outages,
        c.drift_ms_per_day ? "" : "1s", finding.phase_words,
        others ? fmt::format(", {} {} at other times", others, others == 1 ? "other" : "others")
               : "");
    if (c.drift_ms_per_day == 0) {
      EXPECT_TRUE(finding.words.starts_with(expected_words)) << finding.words << "\nnot\n"
                                                             << expected_words;
    }
    EXPECT_TRUE(finding.words.ends_with("(p < 0.0001)")) << finding.words;
  }
}

TEST(PatternExact, ThousandsOfStartsAreSearchedOverBins) {
  // 110 days of an hourly stall and random outages: over 2,000 starts the
  // cluster is searched over 2,048 bins of the hour (1.76 s each).
  const ProbeHistory history = simulate_probe(31, 110, 12 * kMinute, 0, 5.0);
  ASSERT_GT(history.starts.size(), 2'000U);
  const PatternResult result =
      find_period(observed(history.starts, kMidnight, kMidnight + 110 * kDay));
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kHour) << result.verdict;
  EXPECT_LE(std::abs(result.finding->phase_ms - static_cast<double>(12 * kMinute)), kSecond);
  EXPECT_LE(result.finding->window_ms, 2 * kSecond);
  const auto stalls = static_cast<int>(history.stall_starts.size());
  EXPECT_GE(result.finding->in_cluster, stalls);
  EXPECT_LE(result.finding->in_cluster, stalls + 2);  // a random start may share the stall's bins
  EXPECT_EQ(result.finding->in_cluster,
            starts_within(history.starts, result.finding->window_start_ms,
                          result.finding->window_start_ms + result.finding->window_ms));
}

TEST(PatternExact, TheFourteenDayHistoryReadsAsItHappened) {
  // The issue's example, probe 0 of the generated history: the words a person reads.
  const ProbeHistory history = simulate_probe(7, 14, 5'000, 0, 1.0);
  const PatternResult result =
      find_period(observed(history.starts, kMidnight, kMidnight + 14 * kDay));
  ASSERT_TRUE(result.finding) << result.verdict;
  const int others = static_cast<int>(history.starts.size() - history.stall_starts.size());
  EXPECT_EQ(
      result.finding->words,
      fmt::format(
          "every 1h: {} of {} outages began within 1s of {} past the hour, {} others at other "
          "times (p < 0.0001)",
          history.stall_starts.size(), history.starts.size(),
          result.finding->phase_ms < 5'500 ? "+00:00:05" : "+00:00:06", others));
  EXPECT_GE(others, 5);  // there is noise to resist
}

TEST(PatternExact, AWeeklyJobOverFourWeeksIsPeriod7d) {
  // A Sunday backup at 03:00 stalls the site for the first second or so of its run, four Sundays
  // running.
  std::mt19937_64 random(13);
  std::uniform_int_distribution<int64_t> jitter(0, 900);
  const int64_t first_sunday = kMidnight + 6 * kDay;
  std::vector<int64_t> starts;
  for (int week = 0; week < 4; ++week)
    starts.push_back(first_sunday + week * 7 * kDay + 3 * kHour + jitter(random));
  const PatternResult result = find_period(observed(starts, kMidnight, kMidnight + 28 * kDay));
  ASSERT_EQ(result.outcome, PatternResult::Outcome::pattern) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kPatternWeekMs) << result.verdict;
  EXPECT_EQ(result.finding->in_cluster, 4);
  EXPECT_LE(result.finding->window_ms, 900);
  EXPECT_EQ(result.finding->phase_words.rfind("Sunday 03:00:0", 0), 0U)
      << result.finding->phase_words;
  EXPECT_TRUE(result.finding->words.starts_with(
      "every 7d: 4 of 4 outages began within 1s of Sunday 03:00:0"))
      << result.finding->words;
  // Three weeks of observed time are needed: 20.5 days are not enough for 7d (it is not tested), so
  // 24h is found.
  const PatternResult short_run = find_period(
      observed({starts[0], starts[1], starts[2]}, kMidnight, kMidnight + 20 * kDay + 12 * kHour));
  ASSERT_TRUE(short_run.finding) << short_run.verdict;
  EXPECT_EQ(short_run.finding->period_ms, kDay);
  EXPECT_NE(short_run.verdict.find("7d and longer need 3 cycles of observed time (21d)"),
            std::string::npos)
      << short_run.verdict;
}

TEST(PatternExact, TheAlertUsesTheSameFinding) {
  // The "pattern found" alert and the phase in an outage's alert come from find_period's finding.
  OutagePhaseTracker tracker;
  const ProbeHistory history = simulate_probe(21, 1, 20 * kMinute, 0, 0.0, 250);
  OutagePhaseTracker::Observation last;
  int found = 0;
  for (size_t i = 0; i < history.starts.size(); ++i) {
    last = tracker.opened("web", history.starts[i], kMidnight);
    if (!last.newly_found) continue;
    // The first time a pattern holds, the alert says the report's verdict over the same starts.
    const std::vector<int64_t> so_far(history.starts.begin(),
                                      history.starts.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    EXPECT_EQ(*last.newly_found,
              "web: " + find_period(observed(so_far, kMidnight, history.starts[i] + 1)).verdict);
    ++found;
  }
  EXPECT_EQ(found, 1);
  const PatternResult result =
      find_period(observed(history.starts, kMidnight, history.starts.back() + 1));
  ASSERT_TRUE(result.finding) << result.verdict;
  EXPECT_EQ(result.finding->period_ms, kHour);
  EXPECT_EQ(last.phase_text, fmt::format("{}th outage at about {} (every 1h)",
                                         result.finding->in_cluster, result.finding->phase_words));
  EXPECT_EQ(result.finding->phase_words, "+00:20:00 past the hour");
  // An outage at another time is not called part of the pattern.
  EXPECT_EQ(tracker.opened("web", history.starts.back() + 30 * kMinute, kMidnight).phase_text,
            "outside the pattern: outages recur every 1h at about +00:20:00 past the hour");
}

// The false-discovery rate: random histories (Poisson outages, 5-500 of them,
// over 6 h to 35 days with blind windows) must get a period in at most 1% of
// cases at the claimed 1%, and each period no more often than Bonferroni's
// share allows. bench/pattern_false_discovery runs 100,000 of them.
TEST(PatternFalseDiscovery, RandomHistoriesGetAPeriodAtMostAtTheClaimedRate) {
  constexpr int64_t kHistories = 2000;
  const FalseDiscoveryTally tally = count_false_discoveries(kHistories, 2026, 0.01);
  EXPECT_EQ(tally.histories, kHistories);
  EXPECT_LE(tally.with_finding, kHistories / 100) << tally.with_finding << " of " << kHistories;
  double allowed = 0;
  int64_t significant = 0;
  for (const auto& [period, count] : tally.by_period) {
    allowed += count.allowed;
    significant += count.significant;
    // Each period within its share, with three Poisson deviations of room (a few expected each).
    EXPECT_LE(static_cast<double>(count.significant),
              count.allowed + 3 * std::sqrt(count.allowed) + 1)
        << period_name(period);
  }
  EXPECT_LE(static_cast<double>(significant), allowed);
  // Every outage count was tried, the exact and the asymptotic p-values both.
  for (int64_t histories : tally.band_histories) EXPECT_GT(histories, kHistories / 20);
  EXPECT_GT(tally.by_method.at("exact").tests, 1000);
  EXPECT_GT(tally.by_method.at("asymptotic").tests, 1000);
}

TEST(PatternFalseDiscovery, BlindWindowsAndManyOutagesDoNotMakeADailyPattern) {
  // The hard case for a test against evenly spread phases: hundreds of outages
  // over 3-10 days with hours-long blind windows, which leave some hours of
  // the day watched one day less than the rest.
  NullHistorySettings settings;
  settings.min_outages = 100;
  settings.min_range_ms = 3 * kDay;
  settings.max_range_ms = 10 * kDay;
  settings.min_blind_windows = 1;
  constexpr int64_t kHistories = 2000;
  const FalseDiscoveryTally tally = count_false_discoveries(kHistories, 7, 0.01, settings);
  EXPECT_LE(tally.with_finding, kHistories / 100) << tally.with_finding << " of " << kHistories;
  const FalseDiscoveryCount& day = tally.by_period.at(kDay);
  EXPECT_LE(static_cast<double>(day.significant), day.allowed + 3 * std::sqrt(day.allowed) + 1);
}

// find_period's answers pinned bit for bit: the p-value of every candidate (in hex), its method,
// and the verdict. The values were computed before the Monte Carlo loop was made faster (issue 22):
// it must make the same draws in the same order, so any change here is a change of answers.
uint64_t next_random(uint64_t& state) {  // splitmix64: the same on every library, unlike <random>
  uint64_t value = (state += 0x9e3779b97f4a7c15ULL);
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

int64_t random_below(uint64_t& state, int64_t bound) {
  return static_cast<int64_t>(next_random(state) % static_cast<uint64_t>(bound));
}

// A history of `outages` starts over `days` days from kMidnight: `clustered` of them every hour
// at +20 min within ±`spread_ms`, the rest anywhere; `blind` windows of up to 6 h.
PatternInput pinned_history(uint64_t seed, int outages, int clustered, int64_t spread_ms, int days,
                            int blind) {
  uint64_t state = seed;
  const int64_t end = kMidnight + days * kDay;
  PatternInput input = observed({}, kMidnight, end);
  for (int i = 0; i < outages; ++i) {
    if (i < clustered) {
      const int64_t hour = random_below(state, days * 24);
      input.start_ms.push_back(kMidnight + hour * kHour + 20 * kMinute - spread_ms +
                               random_below(state, 2 * spread_ms + 1));
    } else {
      input.start_ms.push_back(kMidnight + random_below(state, days * kDay));
    }
  }
  for (int i = 0; i < blind; ++i) {
    const int64_t from = kMidnight + random_below(state, days * kDay);
    const int64_t to = std::min(end, from + 1 + random_below(state, 6 * kHour));
    input.blind_ms.emplace_back(from, to);
    input.observed_ms -= to - from;  // overlaps are rare and harmless here
  }
  return input;
}

std::string pinned_answer(const PatternResult& result) {
  std::string text = result.verdict + "\n";
  for (const PeriodFinding& c : result.candidates) {
    text += fmt::format("{} {:a} {} {:a} {:a}\n", period_name(c.period_ms), c.p_value, c.p_method,
                        c.rayleigh_z, c.mean_resultant_length);
  }
  return text;
}

uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

TEST(PatternPinned, AnswersAreBitForBitThoseOfBefore) {
  struct Case {
    const char* name;
    uint64_t seed;
    int outages, clustered;
    int64_t spread_ms;
    int days, blind;
    std::optional<int64_t> forced;
    uint64_t expected_hash;
    const char* expected_verdict;
  };
  const auto cases = std::to_array<Case>({
      {"random, few",
       1,
       12,
       0,
       0,
       14,
       0,
       {},
       0x58beb53f0d62934eULL,
       "no pattern: 12 outages in range show no significant clustering at any period from 1m to "
       "24h (closest: 20m, p = 0.046; each needs p < 0.00067 = 0.01 / 15 periods, Bonferroni); 7d "
       "and longer need 3 cycles of observed time (21d), have 14d00h"},
      {"loose cluster",
       2,
       30,
       14,
       8 * kMinute,
       30,
       0,
       {},
       0x1e2411887cd4cd30ULL,
       "no pattern: 30 outages in range show no significant clustering at any period from 1m to 7d "
       "(closest: 30m, p = 0.01; each needs p < 0.00063 = 0.01 / 16 periods, Bonferroni)"},
      {"tight cluster: the arc bound",
       3,
       20,
       20,
       kSecond,
       30,
       0,
       {},
       0x31aa39332f1771f5ULL,
       "outages recur every 1h: 20 of 20 outages began within 1s of +00:20:00 past the hour (p < "
       "0.0001) (the longest of 8 significant periods; each needs p < 0.00063 = 0.01 / 16 periods, "
       "Bonferroni)"},
      {"one outlier",
       7,
       15,
       14,
       20 * kSecond,
       20,
       0,
       {},
       0x4cdf93f02c035384ULL,
       "outages recur every 1h: 14 of 15 outages began within 15s of +00:20:05 past the hour, 1 "
       "other at other times (p < 0.0001) (the longest of 7 significant periods; each needs p < "
       "0.00067 = 0.01 / 15 periods, Bonferroni); 7d and longer need 3 cycles of observed time "
       "(21d), have 20d00h"},
      {"blind windows",
       4,
       40,
       20,
       5 * kMinute,
       21,
       6,
       {},
       0x2a48d0a9c2667658ULL,
       "outages recur every 30m: 26 of 40 outages began within 4m25s of +18m24s into each 30m "
       "(:18:24, :48:24 past each hour), 14 others at other times (p < 0.0001) (the longest of 2 "
       "significant periods; each needs p < 0.00067 = 0.01 / 15 periods, Bonferroni); 7d and "
       "longer need 3 cycles of observed time (21d), have 19d23h"},
      {"many starts: asymptotic",
       5,
       400,
       60,
       30 * kSecond,
       30,
       2,
       {},
       0x98e7e62dda85dfa6ULL,
       "outages recur every 30m: 64 of 396 outages began within 31s of +20m04s into each 30m "
       "(:20:04, :50:04 past each hour), 332 others at other times (p = 0.00036) (the longest of 1 "
       "significant periods; each needs p < 0.00063 = 0.01 / 16 periods, Bonferroni)"},
      {"forced 1h", 6, 25, 10, 4 * kMinute, 10, 1, kHour, 0x4eb83d1c3bd74764ULL,
       "at the requested period 1h: every 1h: 2 of 25 outages began within 1s of +00:23:20 past "
       "the hour, 23 others at other times (p = 0.48); not significant (needs p < 0.01)"},
  });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const PatternResult result = find_period(
        pinned_history(c.seed, c.outages, c.clustered, c.spread_ms, c.days, c.blind), c.forced);
    const std::string answer = pinned_answer(result);
    EXPECT_EQ(result.verdict, c.expected_verdict);
    EXPECT_EQ(fnv1a(answer), c.expected_hash) << fmt::format("0x{:x}ULL", fnv1a(answer)) << "\n"
                                              << answer;
  }
}

TEST(PatternPinned, ManyHistoriesGiveTheAnswersOfBefore) {
  // 60 histories of every size below the exact test's limit, some clustered, some blind.
  std::string answers;
  uint64_t state = 2212;
  for (int history = 0; history < 60; ++history) {
    const int outages = 3 + static_cast<int>(random_below(state, kPatternExactBelow + 10));
    const int clustered = static_cast<int>(random_below(state, outages + 1)) / 2;
    const int64_t spread = 1 + random_below(state, 10 * kMinute);
    const int days = 1 + static_cast<int>(random_below(state, 30));
    const int blind = static_cast<int>(random_below(state, 4));
    answers += pinned_answer(
        find_period(pinned_history(next_random(state), outages, clustered, spread, days, blind)));
  }
  EXPECT_EQ(fnv1a(answers), 0x448f9b1e7bec725aULL)
      << fmt::format("0x{:x}ULL", fnv1a(answers)) << "\n"
      << answers;
}

TEST(PatternPinned, TheEngineDrawsWhatStdMt19937_64Draws) {
  for (uint64_t seed : {uint64_t{0}, uint64_t{5489}, uint64_t{0x9e3779b97f4a7c15ULL}}) {
    std::mt19937_64 reference(seed);
    MersenneTwister64 engine(seed);
    for (int i = 0; i < 100'000; ++i) ASSERT_EQ(engine(), reference()) << seed << " #" << i;
    // And through the distribution the simulation uses.
    std::uniform_int_distribution<int64_t> offset(0, 2'591'999'999);
    for (int i = 0; i < 10'000; ++i) ASSERT_EQ(offset(engine), offset(reference)) << seed;
  }
}

TEST(PatternMemo, AnEqualInputGivesTheKeptResultAndAnyChangeSearchesAgain) {
  PatternMemo memo;
  const PatternInput input = pinned_history(4, 40, 20, 5 * kMinute, 21, 6);
  const std::string searched = pinned_answer(find_period(input));
  EXPECT_EQ(pinned_answer(memo.find(input)), searched);
  EXPECT_EQ(pinned_answer(memo.find(input)), searched);
  EXPECT_EQ(memo.misses(), 1);
  EXPECT_EQ(memo.hits(), 1);
  // Each part of the input counts: a start, a blind window, the range, the observed time.
  std::vector<PatternInput> changed(5, input);
  changed[0].start_ms.push_back(kMidnight + 3 * kHour);
  changed[1].blind_ms.back().second += 1;
  changed[2].range_end_ms += 1;
  changed[3].observed_ms -= 1;
  changed[4].noun = "incident";
  for (const PatternInput& other : changed) {
    EXPECT_EQ(pinned_answer(memo.find(other)), pinned_answer(find_period(other)));
  }
  EXPECT_EQ(pinned_answer(memo.find(input, kHour)), pinned_answer(find_period(input, kHour)));
  EXPECT_EQ(memo.misses(), 7);
  // A round keeps what it was asked for; what the next round did not ask for is forgotten.
  memo.next_round();
  EXPECT_EQ(pinned_answer(memo.find(input)), searched);
  EXPECT_EQ(memo.hits(), 2);
  memo.next_round();
  memo.next_round();
  EXPECT_EQ(memo.size(), 0U);
  EXPECT_EQ(pinned_answer(memo.find(input)), searched);
  EXPECT_EQ(memo.misses(), 8);
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
