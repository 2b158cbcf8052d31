#include "blip/analysis/run_trend.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace blip {
namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kNightlyStart = 1'793'412'000'000;  // 2026-10-31T02:00:00Z

// `count` runs a day apart, the i-th lasting duration(i).
template <typename Duration>
std::vector<RunPoint> nightly(int count, Duration duration) {
  std::vector<RunPoint> runs;
  for (int i = 0; i < count; ++i) runs.push_back({kNightlyStart + i * kDay, duration(i)});
  return runs;
}

TEST(RunTrendTest, ExactSlopeOnAStraightLine) {
  auto trend =
      fit_run_trend(nightly(10, [](int i) { return 10 * kMinute + i * 30 * kSecond; }), 0, 0);
  ASSERT_TRUE(trend);
  EXPECT_EQ(trend->runs, 10u);
  EXPECT_DOUBLE_EQ(trend->slope_ms_per_day, 30'000.0);
  EXPECT_DOUBLE_EQ(trend->fitted_first_ms, 10.0 * kMinute);
  EXPECT_DOUBLE_EQ(trend->fitted_last_ms, 10.0 * kMinute + 9 * 30'000.0);
  EXPECT_EQ(trend->first_start_ms, kNightlyStart);
  EXPECT_EQ(trend->last_start_ms, kNightlyStart + 9 * kDay);
  EXPECT_FALSE(trend->exceeds_max_run_ms);  // no limits given
  EXPECT_FALSE(trend->overlaps_next_start_ms);
}

TEST(RunTrendTest, TwoWildRunsAmongThirtyBarelyMoveTheSlope) {
  auto runs = nightly(30, [](int i) { return 20 * kMinute + i * 10 * kSecond; });
  runs[7].duration_ms = 6 * kHour;     // a stuck run
  runs[22].duration_ms = 2 * kSecond;  // one that failed at once
  auto trend = fit_run_trend(runs, 0, 0);
  ASSERT_TRUE(trend);
  EXPECT_NEAR(trend->slope_ms_per_day, 10'000.0, 10'000.0 * 0.05);
  EXPECT_NEAR(trend->fitted_first_ms, 20.0 * kMinute, 30.0 * kSecond);
}

TEST(RunTrendTest, NeedsFiveRuns) {
  auto line = [](int i) { return kMinute + i * kSecond; };
  EXPECT_FALSE(fit_run_trend({}, 0, 0));
  EXPECT_FALSE(fit_run_trend(nightly(4, line), 3 * kHour, kDay));
  EXPECT_TRUE(fit_run_trend(nightly(5, line), 3 * kHour, kDay));
}

TEST(RunTrendTest, UsesTheLastThirtyRunsInAnyOrder) {
  // Forty runs, the oldest ten wild; shuffled.
  auto runs =
      nightly(40, [](int i) { return i < 10 ? 9 * kHour : 30 * kMinute + (i - 10) * kMinute; });
  std::mt19937 random(7);
  std::shuffle(runs.begin(), runs.end(), random);
  auto trend = fit_run_trend(runs, 0, 0);
  ASSERT_TRUE(trend);
  EXPECT_EQ(trend->runs, kTrendRuns);
  EXPECT_EQ(trend->first_start_ms, kNightlyStart + 10 * kDay);
  EXPECT_EQ(trend->last_start_ms, kNightlyStart + 39 * kDay);
  EXPECT_DOUBLE_EQ(trend->slope_ms_per_day, static_cast<double>(kMinute));
  EXPECT_DOUBLE_EQ(trend->fitted_first_ms, 30.0 * kMinute);
}

// 30 nightly runs growing evenly from 41 min to 2 h 10 min (89 min over 29 days).
std::vector<RunPoint> growing_history() {
  return nightly(30, [](int i) { return 41 * kMinute + std::llround(i * 89.0 * kMinute / 29); });
}

TEST(RunTrendTest, GrowingRunsCrossMaxRunOnTheDayTheLineSays) {
  auto trend = fit_run_trend(growing_history(), 3 * kHour, kDay);
  ASSERT_TRUE(trend);
  EXPECT_NEAR(trend->slope_ms_per_day, 89.0 * kMinute / 29, 1.0);
  // By hand: 41 min + (89/29 min per day)·t = 180 min at t = 139·29/89 ≈ 45.29 days
  // after the first run; 1440 min at t = 1399·29/89 ≈ 455.9 days.
  const double max_run_day = 139.0 * 29 / 89;
  const double overlap_day = 1399.0 * 29 / 89;
  ASSERT_TRUE(trend->exceeds_max_run_ms);
  EXPECT_NEAR(static_cast<double>(*trend->exceeds_max_run_ms - kNightlyStart) / kDay, max_run_day,
              1.0);
  EXPECT_NEAR(static_cast<double>(*trend->exceeds_max_run_ms - kNightlyStart) / kDay, max_run_day,
              0.01);
  ASSERT_TRUE(trend->overlaps_next_start_ms);
  EXPECT_NEAR(static_cast<double>(*trend->overlaps_next_start_ms - kNightlyStart) / kDay,
              overlap_day, 0.01);

  // Read an hour after the last run (day 29): 16.25 and 426.8 days ahead.
  const int64_t now = kNightlyStart + 29 * kDay + kHour;
  const long max_run_in = std::lround(max_run_day - 29 - 1.0 / 24);
  const long overlap_in = std::lround(overlap_day - 29 - 1.0 / 24);
  EXPECT_EQ(max_run_in, 16);
  EXPECT_EQ(overlap_in, 427);
  EXPECT_EQ(describe_run_trend(*trend, 3 * kHour, kDay, now),
            "runs grew from 41 min to 2 h 10 min over 29 days; at this rate a run exceeds max_run "
            "3 h in 16 "
            "days, and overlaps its next start in 427 days");
  // Only the limits that are set are named.
  auto without_limits = fit_run_trend(growing_history(), 0, 0);
  EXPECT_EQ(describe_run_trend(*without_limits, 0, 0, now),
            "runs grew from 41 min to 2 h 10 min over 29 days");
  auto overlap_only = fit_run_trend(growing_history(), 0, kDay);
  EXPECT_EQ(describe_run_trend(*overlap_only, 0, kDay, now),
            "runs grew from 41 min to 2 h 10 min over 29 days; at this rate a run overlaps its "
            "next start in 427 days");
}

TEST(RunTrendTest, AlreadyPastTheLimitSaysNow) {
  auto trend = fit_run_trend(growing_history(), 2 * kHour, kDay);
  ASSERT_TRUE(trend);
  // 41 + (89/29)·t = 120 at t = 79·29/89 ≈ 25.7 days: before the last run.
  ASSERT_TRUE(trend->exceeds_max_run_ms);
  EXPECT_NEAR(static_cast<double>(*trend->exceeds_max_run_ms - kNightlyStart) / kDay,
              79.0 * 29 / 89, 0.01);
  const int64_t now = kNightlyStart + 29 * kDay + kHour;
  EXPECT_EQ(describe_run_trend(*trend, 2 * kHour, kDay, now),
            "runs grew from 41 min to 2 h 10 min over 29 days; at this rate a run exceeds max_run "
            "2 h now, and "
            "overlaps its next start in 427 days");
  EXPECT_EQ(describe_run_trend(*trend, 2 * kHour, 0, now),
            "runs grew from 41 min to 2 h 10 min over 29 days; a run exceeds max_run 2 h now");
  // Every run already over: the line was over from the first run on.
  auto all_over = fit_run_trend(growing_history(), 30 * kMinute, 0);
  EXPECT_EQ(all_over->exceeds_max_run_ms, kNightlyStart);
}

TEST(RunTrendTest, FlatRunsNeverCrossAndHold) {
  auto trend = fit_run_trend(nightly(30, [](int) { return 41 * kMinute; }), 3 * kHour, kDay);
  ASSERT_TRUE(trend);
  EXPECT_DOUBLE_EQ(trend->slope_ms_per_day, 0.0);
  EXPECT_FALSE(trend->exceeds_max_run_ms);
  EXPECT_FALSE(trend->overlaps_next_start_ms);
  EXPECT_EQ(describe_run_trend(*trend, 3 * kHour, kDay, kNightlyStart + 30 * kDay),
            "runs held at about 41 min over 29 days");
  // Noise of a few seconds around 45 s still holds.
  auto noisy =
      fit_run_trend(nightly(12, [](int i) { return 45 * kSecond + (i % 3 - 1) * 400; }), 0, 0);
  EXPECT_EQ(describe_run_trend(*noisy, 0, 0, kNightlyStart + 12 * kDay),
            "runs held at about 45 s over 11 days");
  // Flat but above the limit: already exceeded.
  auto over = fit_run_trend(nightly(6, [](int) { return 3 * kHour; }), 2 * kHour, 0);
  EXPECT_EQ(over->exceeds_max_run_ms, kNightlyStart);
  EXPECT_EQ(describe_run_trend(*over, 2 * kHour, 0, kNightlyStart + 6 * kDay),
            "runs held at about 3 h over 5 days; a run exceeds max_run 2 h now");
}

TEST(RunTrendTest, ShrinkingRunsNeverCross) {
  auto trend = fit_run_trend(nightly(10, [](int i) { return 2 * kHour - i * 5 * kMinute; }),
                             3 * kHour, kDay);
  ASSERT_TRUE(trend);
  EXPECT_FALSE(trend->exceeds_max_run_ms);
  EXPECT_FALSE(trend->overlaps_next_start_ms);
  EXPECT_EQ(describe_run_trend(*trend, 3 * kHour, kDay, kNightlyStart + 10 * kDay),
            "runs shrank from 2 h to 1 h 15 min over 9 days");
}

TEST(RunTrendTest, FrequentShortRunsInMinutesAndSeconds) {
  // Every 10 minutes, growing 5 s a run: the span is under a day.
  std::vector<RunPoint> runs;
  for (int i = 0; i < 30; ++i)
    runs.push_back({kNightlyStart + i * 10 * kMinute, 90 * kSecond + i * 5 * kSecond});
  auto trend = fit_run_trend(runs, 0, 10 * kMinute);
  ASSERT_TRUE(trend);
  EXPECT_NEAR(trend->slope_ms_per_day, 5'000.0 * 144, 1e-6);
  // 90 s + 5 s·n = 600 s at n = 102 runs, 1020 minutes after the first.
  ASSERT_TRUE(trend->overlaps_next_start_ms);
  EXPECT_NEAR(static_cast<double>(*trend->overlaps_next_start_ms - kNightlyStart), 1020.0 * kMinute,
              1.0);
  EXPECT_EQ(describe_run_trend(*trend, 0, 10 * kMinute, kNightlyStart + 290 * kMinute),
            "runs grew from 1 min 30 s to 3 min 55 s over 4 h 50 min; at this rate a run overlaps "
            "its next start "
            "in 1 day");
}

TEST(RunTrendTest, RunsStartedTogetherAreNoSlope) {
  std::vector<RunPoint> runs(6, RunPoint{kNightlyStart, 5 * kMinute});
  auto trend = fit_run_trend(runs, kHour, kDay);
  ASSERT_TRUE(trend);
  EXPECT_DOUBLE_EQ(trend->slope_ms_per_day, 0.0);
  EXPECT_DOUBLE_EQ(trend->fitted_last_ms, 5.0 * kMinute);
  EXPECT_FALSE(trend->exceeds_max_run_ms);
  EXPECT_EQ(describe_run_trend(*trend, kHour, kDay, kNightlyStart),
            "runs held at about 5 min over 6 runs");
}

}  // namespace
}  // namespace blip
