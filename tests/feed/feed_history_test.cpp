// The feed's history: the hour cache answers exactly what the minute rollups add up to,
// and each day of the 90-day strip keeps its worst state.
#include <gtest/gtest.h>

#include <random>

#include "blip/core/clock.hpp"
#include "blip/feed/history.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "quarter_hour_samples.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;

ProbeConfig probe_config(const std::string& name) {
  ProbeConfig config;
  config.name = name;
  config.type = "tcp";
  config.interval_ms = 10'000;
  config.confirm = 2;
  config.degraded_after_ms = 500;
  config.target_display = "127.0.0.1:1";
  return config;
}

// Writes samples every 10 s from `from_ms` to `to_ms` through the recorder,
// down inside `down` spans, slow inside `slow` spans, none inside `gaps`.
struct Span {
  int64_t from_ms;
  int64_t to_ms;
  bool contains(int64_t t) const { return t >= from_ms && t < to_ms; }
};
void write_history(Store& store, SampleRecorder& recorder, size_t probe, int64_t from_ms,
                   int64_t to_ms, const std::vector<Span>& down, const std::vector<Span>& slow,
                   const std::vector<Span>& gaps) {
  int64_t next_flush = from_ms + 60'000;
  for (int64_t t = from_ms; t < to_ms; t += 10'000) {
    auto in = [t](const std::vector<Span>& spans) {
      return std::any_of(spans.begin(), spans.end(),
                         [t](const Span& span) { return span.contains(t); });
    };
    if (in(gaps)) continue;
    Sample sample;
    sample.sent_ms = t;
    sample.latency_us = in(slow) ? 800'000 : 2'000;
    sample.status = in(slow) ? Status::degraded : Status::up;
    if (in(down)) {
      sample.status = Status::down;
      sample.error = ErrorClass::timeout;
      sample.latency_us = 1'000'000;
    }
    recorder.record(probe, sample);
    if (t >= next_flush) {
      store.flush(t);
      next_flush += 60'000;
    }
  }
  store.flush(to_ms);
}

TEST(RollupHourCache, AnswersWhatTheStoreAnswersForAnyRange) {
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  const std::vector<ProbeConfig> configs{probe_config("a"), probe_config("b")};
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    SampleRecorder recorder(store, configs, false);
    write_history(store, recorder, 0, now - 50 * kHourMs, now,
                  {{now - 30 * kHourMs, now - 29 * kHourMs}}, {},
                  {{now - 20 * kHourMs, now - 17 * kHourMs}});
    write_history(store, recorder, 1, now - 7 * kHourMs, now - 90'000, {}, {}, {});
  }
  Store store(dir.file("h.db"), Store::Mode::read_only);
  RollupHourCache cache;
  auto expect_same = [&](const char* probe, int64_t from, int64_t to) {
    // The cache's hours come from hour_totals; these from the minute rollups alone.
    const auto minutes = store.rollup_totals_by(probe, from, to, 0);
    const RollupTotals direct = minutes.empty() ? RollupTotals{} : minutes.front();
    const RollupTotals cached = cache.totals(store, probe, from, to, now);
    const RollupTotals stored = store.rollup_totals(probe, from, to);
    ASSERT_EQ(stored.samples, direct.samples);
    ASSERT_EQ(stored.minutes, direct.minutes);
    SCOPED_TRACE(testing::Message() << probe << " [" << format_iso8601_ms(from) << ", "
                                    << format_iso8601_ms(to) << ")");
    ASSERT_EQ(cached.minutes, direct.minutes);
    ASSERT_EQ(cached.samples, direct.samples);
    ASSERT_EQ(cached.down, direct.down);
    ASSERT_EQ(cached.degraded, direct.degraded);
    if (direct.minutes > 0) {
      ASSERT_EQ(cached.first_minute_ms, direct.first_minute_ms);
      ASSERT_EQ(cached.last_minute_ms, direct.last_minute_ms);
      ASSERT_EQ(cached.first_sample_ms, direct.first_sample_ms);
    }
  };
  expect_same("b", now - 24 * kHourMs, now);
  // The last minute and a half arrive later, as a running blip writes them: the cache must not have
  // kept them out.
  {
    Store writer(dir.file("h.db"), Store::Mode::read_write);
    SampleRecorder recorder(writer, configs, false);
    write_history(writer, recorder, 1, now - 90'000, now, {}, {}, {});
  }
  expect_same("b", now - 24 * kHourMs, now);
  std::mt19937_64 random(11);
  std::uniform_int_distribution<int64_t> offset(0, 60 * kHourMs);
  for (int i = 0; i < 300; ++i) {
    int64_t from = now - offset(random);
    int64_t to = now - offset(random);
    if (from > to) std::swap(from, to);
    if (i % 3 == 0) to = now;  // the feed's windows end now
    for (const char* probe : {"a", "b", "nobody"}) expect_same(probe, from, to);
  }
}

TEST(RollupHourCache, KeepsAFirstSampleStampedBeforeItsHourAsTheStoreDoes) {
  // The wall clock stepped back 5 s just after an hour began: that sample stays in the
  // hour's first block, so the hour's first sample was sent before the hour.
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  const int64_t hour = now - now % kHourMs - 5 * kHourMs;
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    SampleRecorder recorder(store, {probe_config("a")}, false);
    for (int64_t t : {hour - 30'000, hour, hour + 10'000, hour - 5'000, hour + 20'000}) {
      Sample sample;
      sample.sent_ms = t;
      sample.latency_us = 2'000;
      recorder.record(0, sample);
    }
    for (int64_t t = hour + 30'000; t < hour + 2 * kHourMs; t += 10'000) {
      Sample sample;
      sample.sent_ms = t;
      sample.latency_us = 2'000;
      recorder.record(0, sample);
    }
    store.flush(hour + 2 * kHourMs);
  }
  Store store(dir.file("h.db"), Store::Mode::read_only);
  const auto minutes = store.rollup_totals_by("a", hour, hour + 2 * kHourMs, 0);
  ASSERT_EQ(minutes.size(), 1U);
  ASSERT_EQ(minutes.front().first_sample_ms, hour - 5'000);
  RollupHourCache cache;
  EXPECT_EQ(cache.totals(store, "a", hour, hour + 2 * kHourMs, now).first_sample_ms, hour - 5'000);
  EXPECT_EQ(store.rollup_totals("a", hour, hour + 2 * kHourMs).first_sample_ms, hour - 5'000);
}

TEST(FeedHistoryReader, EachDayKeepsItsWorstStateAndTheUptimeWindowsDiffer) {
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  const int64_t today = now - now % kDayMs;
  const std::vector<ProbeConfig> configs{probe_config("web")};
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    SampleRecorder recorder(store, configs, false);
    // Ten days ago to now: a 30 s outage five days ago, a brownout three days ago,
    // nothing at all eight days ago.
    write_history(store, recorder, 0, today - 10 * kDayMs, now,
                  {{today - 5 * kDayMs + 3'600'000, today - 5 * kDayMs + 3'630'000}},
                  {{today - 3 * kDayMs + 7'200'000, today - 3 * kDayMs + 7'260'000}},
                  {{today - 8 * kDayMs, today - 7 * kDayMs}});
  }
  FeedHistoryReader reader(dir.file("h.db"));
  auto history = reader.current(now, 0);
  ASSERT_TRUE(history);
  const DayStrip& strip = history->days.at("web");
  ASSERT_EQ(strip.states.size(), static_cast<size_t>(kFeedDays));
  auto state_days_ago = [&](int days) {
    return strip.states[static_cast<size_t>(kFeedDays - 1 - days)];
  };
  EXPECT_EQ(state_days_ago(0), DayStrip::State::operational);
  EXPECT_EQ(state_days_ago(3), DayStrip::State::degraded);
  EXPECT_EQ(state_days_ago(5), DayStrip::State::outage);
  EXPECT_NEAR(static_cast<double>(strip.down_ms[static_cast<size_t>(kFeedDays - 1 - 5)]), 30'000.0,
              10.0)
      << "down from the first down sample to the first answer after it";
  EXPECT_EQ(state_days_ago(8), DayStrip::State::no_data);
  EXPECT_EQ(state_days_ago(11), DayStrip::State::no_data);
  EXPECT_EQ(state_days_ago(9), DayStrip::State::operational);
  ASSERT_EQ(history->month.outages.size(), 1U);
  ASSERT_EQ(history->recent_incidents.size(), 1U);
  // The outage is in the 7-day and 30-day windows, not in the last 24 hours.
  EXPECT_DOUBLE_EQ(*history->day.at("web").uptime(), 1.0);
  EXPECT_LT(*history->week.at("web").uptime(), 1.0);
  EXPECT_EQ(history->week.at("web").outages, 1);
  // The windows' figures and the day strip read the same from the minute rollups alone.
  {
    Store store(dir.file("h.db"), Store::Mode::read_only);
    auto minutes = [&](const std::string& probe, int64_t from, int64_t to) {
      const auto totals = store.rollup_totals_by(probe, from, to, 0);
      return totals.empty() ? RollupTotals{} : totals.front();
    };
    const ReportData quarter = load_report_data(store, {history->days_from_ms, now, now}, "", true);
    for (auto [window_ms, summaries] :
         {std::pair{kDayMs, &history->day}, std::pair{7 * kDayMs, &history->week},
          std::pair{30 * kDayMs,
                    static_cast<const std::map<std::string, ProbeSummary>*>(nullptr)}}) {
      const Report report = analyse_report(narrow_report_data(quarter, now - window_ms), minutes,
                                           std::nullopt, false);
      ASSERT_EQ(report.summaries.size(), 1U);
      const ProbeSummary& shown = summaries ? summaries->at("web") : history->month.summaries.at(0);
      EXPECT_EQ(shown.samples, report.summaries[0].samples) << window_ms;
      EXPECT_EQ(shown.observed_ms, report.summaries[0].observed_ms) << window_ms;
      EXPECT_EQ(shown.down_ms, report.summaries[0].down_ms) << window_ms;
    }
    for (int day = 0; day < kFeedDays; ++day) {
      const int64_t from = history->days_from_ms + day * kDayMs;
      if (from >= now) break;
      EXPECT_EQ(strip.states[static_cast<size_t>(day)] != DayStrip::State::no_data,
                minutes("web", from, std::min(from + kDayMs, now)).minutes > 0)
          << day;
    }
    EXPECT_EQ(history->first_seen_ms.at("web"),
              minutes("web", history->days_from_ms, now).first_sample_ms);
  }
  // Shared until a second has passed or a transition happened.
  EXPECT_EQ(reader.current(now + 500, 0), history);
  EXPECT_NE(reader.current(now + 500, 1), history);
}

// The feed rebuilds every second; within a minute an unchanged history runs no pattern search,
// and its patterns are find_period's over the range to the last whole minute.
TEST(FeedHistoryReader, AnUnchangedHistoryIsNotSearchedAgainWithinAMinute) {
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  const int64_t today = now - now % kDayMs;
  const std::vector<ProbeConfig> configs{probe_config("web")};
  std::vector<Span> down;
  for (int hour = 0; hour < 5 * 24; hour += 6)  // every 6 hours at +00:20 for five days
    down.push_back({today - 5 * kDayMs + hour * kHourMs + 1'200'000,
                    today - 5 * kDayMs + hour * kHourMs + 1'230'000});
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    SampleRecorder recorder(store, configs, false);
    write_history(store, recorder, 0, today - 6 * kDayMs, now, down, {}, {});
  }
  FeedHistoryReader reader(dir.file("h.db"));
  const int64_t minute = now - now % 60'000;
  const auto first = reader.current(minute + 1'000, 0);
  EXPECT_EQ(reader.pattern_searches(), 2);  // the probe's and the incidents'
  const auto again = reader.current(minute + 2'500, 0);
  ASSERT_NE(again, first) << "rebuilt: a second passed";
  EXPECT_EQ(reader.pattern_searches(), 2) << "the same history within the minute";
  const PatternResult& pattern = again->month.probe_patterns.at("web");
  EXPECT_EQ(pattern.verdict, first->month.probe_patterns.at("web").verdict);
  EXPECT_EQ(pattern.outcome, PatternResult::Outcome::pattern) << pattern.verdict;
  // What find_period says over the same starts to the minute's start.
  {
    Store store(dir.file("h.db"), Store::Mode::read_only);
    const Report report = build_report(store, {minute - 30 * kDayMs, minute, minute});
    EXPECT_EQ(pattern.verdict, report.probe_patterns.at("web").verdict);
    ASSERT_EQ(pattern.candidates.size(), report.probe_patterns.at("web").candidates.size());
    for (size_t i = 0; i < pattern.candidates.size(); ++i)
      EXPECT_EQ(pattern.candidates[i].p_value,
                report.probe_patterns.at("web").candidates[i].p_value);
  }
  // The next minute's range is another input.
  reader.current(minute + 61'000, 0);
  EXPECT_EQ(reader.pattern_searches(), 4);
}

// A long-running feed: its hour cache holds the 90 days the feed shows, of the probes
// still running, however long blip runs and however many probes came and went.
TEST(RollupHourCache, HoldsOnlyTheFeedsNinetyDaysOfTheProbesStillShown) {
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    std::vector<int64_t> ids;
    for (const char* name : {"a", "b", "c"})
      ids.push_back(store.register_probe(probe_config(name)));
    // 120 days, a sample every 15 minutes.
    test::write_quarter_hour_samples(store, ids, now - 120 * kDayMs, now);
  }
  constexpr size_t kShownHours = static_cast<size_t>(kFeedDays) * 24;
  FeedHistoryReader reader(dir.file("h.db"));
  const auto first = reader.current(now, 0, std::set<std::string>{"a", "b"});
  EXPECT_EQ(reader.cached_probes(), 2U) << "only the probes shown";
  EXPECT_EQ(first->days.count("c"), 0U);
  EXPECT_EQ(first->days.count("a"), 1U);
  EXPECT_GT(reader.cached_hours(), 2 * (kShownHours - 48)) << "the 90 days were cached";
  EXPECT_LE(reader.cached_hours(), 2 * kShownHours);

  // Ten days on, "b" removed: its hours go, and so do the hours that left the 90 days.
  const auto later = reader.current(now + 10 * kDayMs, 1, std::set<std::string>{"a"});
  EXPECT_EQ(reader.cached_probes(), 1U);
  EXPECT_EQ(later->days.count("b"), 0U);
  EXPECT_LE(reader.cached_hours(), kShownHours - 10 * 24 + 24)
      << "no hour before the feed's first day";
  EXPECT_GT(reader.cached_hours(), kShownHours - 10 * 24 - 48);

  // What is left still answers what the store answers.
  Store store(dir.file("h.db"), Store::Mode::read_only);
  RollupHourCache cache;
  for (int64_t days : {90, 30, 7}) cache.totals(store, "a", now - days * kDayMs, now, now);
  cache.keep_only({"a"}, now - 30 * kDayMs);
  EXPECT_LE(cache.cached_hours(), static_cast<size_t>(30 * 24 + 1));
  for (int64_t days : {90, 45, 30, 7}) {
    const RollupTotals cached = cache.totals(store, "a", now - days * kDayMs, now, now);
    const RollupTotals direct = store.rollup_totals("a", now - days * kDayMs, now);
    EXPECT_EQ(cached.samples, direct.samples) << days;
    EXPECT_EQ(cached.minutes, direct.minutes) << days;
    EXPECT_EQ(cached.first_sample_ms, direct.first_sample_ms) << days;
  }
}

}  // namespace
}  // namespace blip
