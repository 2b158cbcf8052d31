// The report model's arithmetic on hand-made data: a temporary SQLite store
// written through the Store API, then build_report / load_report_data +
// analyse_report, against numbers worked out by hand below.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

#include "blip/report/report.hpp"
#include "blip/report/report_json.hpp"
#include "blip/store/store.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

// What `blip report --format json` writes.
std::string json_text(const Report& report) {
  std::ostringstream out;
  write_report_json(out, report);
  return out.str();
}

constexpr int64_t kMinute = 60'000;
constexpr int64_t kSecond = 1'000;
// 2026-11-25T00:00:00Z: the range is the hour after it.
constexpr int64_t F = 1'795'564'800'000;
constexpr int64_t T = F + 60 * kMinute;

ProbeConfig probe_named(const std::string& name) {
  ProbeConfig config;
  config.name = name;
  config.type = "tcp";
  config.interval_ms = kMinute;
  config.target_display = "127.0.0.1:1";
  config.settings = TcpSettings{"127.0.0.1", "1"};
  return config;
}

Sample up_at(int64_t sent_ms) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.latency_us = 2000;
  return sample;
}

// The hour, as the recorder would have stored it:
//
//   blind windows  not_running [F-5m, F+1m]        (blip started at F+1m)
//                  loop_stall  [F+21m, F+22m]
//                  clock_jump  [F+21m30s, F+23m]   (overlaps the stall: together [21m, 23m])
//   web      samples at F+1m, F+2m, ... F+59m (59 minutes; the first at F+1m)
//            A [F+5m,  F+7m]   recovered
//            B [F+20m, F+25m]  recovered, blind [21m, 23m] inside it
//            C [F-10m, F+2m]   recovered, began before the range and before blip started
//            D [F+50m, open)   still open; the store was last alive at F+59m30s
//            E [F+40m, F+41m]  ended by blip shutting down, not repaired
//            one brownout [F+30m, F+31m]
//   db       samples like web, no outage
//   cache    samples at F+30m15s, F+31m15s, ... F+59m15s (30 minutes), no outage
class ReportModel : public ::testing::Test {
 protected:
  void SetUp() override {
    Store store(dir_.file("blip.db"), Store::Mode::read_write);
    const int64_t web = store.register_probe(probe_named("web"));
    const int64_t db = store.register_probe(probe_named("db"));
    const int64_t cache = store.register_probe(probe_named("cache"));
    for (int m = 1; m < 60; ++m) {
      store.add_sample(web, up_at(F + m * kMinute));
      store.add_sample(db, up_at(F + m * kMinute));
      if (m >= 30) store.add_sample(cache, up_at(F + m * kMinute + 15 * kSecond));
    }
    store.add_blind_window({F - 5 * kMinute, F + 1 * kMinute, "not_running"});
    store.add_blind_window({F + 21 * kMinute, F + 22 * kMinute, "loop_stall"});
    store.add_blind_window({F + 21 * kMinute + 30 * kSecond, F + 23 * kMinute, "clock_jump"});
    int64_t id = 0;
    auto outage = [&](int64_t start, std::optional<int64_t> end, const std::string& reason,
                      OutageKind kind = OutageKind::outage) {
      OutageRow row;
      row.id = ++id;
      row.probe_id = web;
      row.kind = kind;
      row.start_ms = start;
      row.end_ms = end;
      row.error = ErrorClass::timeout;
      row.down_samples = 2;
      row.end_reason = reason;
      store.write_outage(row);
    };
    outage(F + 5 * kMinute, F + 7 * kMinute, "recovered");    // A
    outage(F + 20 * kMinute, F + 25 * kMinute, "recovered");  // B
    outage(F - 10 * kMinute, F + 2 * kMinute, "recovered");   // C
    outage(F + 50 * kMinute, std::nullopt, "");               // D
    outage(F + 40 * kMinute, F + 41 * kMinute, "shutdown");   // E
    outage(F + 30 * kMinute, F + 31 * kMinute, "recovered", OutageKind::brownout);
    store.flush(F + 59 * kMinute + 30 * kSecond);  // the samples, and "last alive"
  }

  Report report_for(int64_t from_ms, int64_t to_ms) {
    Store store(dir_.file("blip.db"), Store::Mode::read_only);
    return build_report(store, {from_ms, to_ms, to_ms});
  }
  static const ProbeSummary& summary_of(const Report& report, const std::string& probe) {
    for (const ProbeSummary& candidate : report.summaries) {
      if (candidate.probe == probe) return candidate;
    }
    throw std::runtime_error("no summary for " + probe);
  }

  test::TempDir dir_;
};

TEST_F(ReportModel, TheHourAddsUpByHand) {
  const Report hour = report_for(F, T);
  const ProbeSummary& web = summary_of(hour, "web");

  // Observed: from the first sample (F+1m) to T is 59 minutes, less the blind
  // time in it. The stall and the jump overlap: their union [21m, 23m] is 2 min,
  // not 1 min + 1.5 min. 59 min - 2 min = 57 min = 3,420,000 ms (59 minutes with
  // samples, 3,540,000 ms, is the larger bound).
  EXPECT_EQ(web.observed_ms, 57 * kMinute);
  // Down, clipped to the range and less blind time:
  //   A  7m - 5m                           = 2m      120,000
  //   B  25m - 20m, less [21m, 23m]       = 3m      180,000
  //   C  [F, F+2m] in range, less [F, F+1m] not running = 1m   60,000
  //   D  open: until last alive 59m30s    = 9m30s   570,000
  //   E  41m - 40m                         = 1m      60,000
  //                                 total   16m30s   990,000
  EXPECT_EQ(web.down_ms, 990'000);
  EXPECT_EQ(web.outages, 5);
  EXPECT_EQ(web.brownouts, 1);
  // Uptime 1 - 990,000 / 3,420,000 = 1 - 11/38 = 27/38.
  ASSERT_TRUE(web.uptime().has_value());
  EXPECT_DOUBLE_EQ(web.uptime().value_or(-1), 27.0 / 38.0);
  // MTTR over the outages that recovered (not D, still open; not E, ended by a
  // shutdown), each its whole length, in range or not: A 2m, B 5m, C 12m;
  // (120,000 + 300,000 + 720,000) / 3 = 380,000.
  EXPECT_EQ(web.closed, 3);
  EXPECT_EQ(web.repair_total_ms, 1'140'000);
  EXPECT_EQ(web.mttr_ms(), 380'000);
  // Longest: C's 12 minutes (the outage as it happened, not its part in range).
  EXPECT_EQ(web.longest_ms, 12 * kMinute);
  EXPECT_EQ(web.samples, 59);

  // No outages: down 0, uptime exactly 1, no MTTR, no longest.
  const ProbeSummary& db = summary_of(hour, "db");
  EXPECT_EQ(db.observed_ms, 57 * kMinute);
  EXPECT_EQ(db.down_ms, 0);
  EXPECT_EQ(db.outages, 0);
  EXPECT_EQ(db.mttr_ms(), 0);
  EXPECT_EQ(db.longest_ms, 0);
  ASSERT_TRUE(db.uptime().has_value());
  EXPECT_EQ(db.uptime().value_or(-1), 1.0);
  // A probe first seen at F+30m15s is observed from then on: 29m45s = 1,785,000 ms
  // (its 30 minutes with samples, 1,800,000 ms, is the larger bound; no blind time after 23m).
  const ProbeSummary& cache = summary_of(hour, "cache");
  EXPECT_EQ(cache.observed_ms, 29 * kMinute + 45 * kSecond);
  EXPECT_EQ(cache.samples, 30);
  EXPECT_EQ(cache.uptime().value_or(-1), 1.0);

  // The blind windows of the range, each as stored (the not_running one reaches back before F).
  ASSERT_EQ(hour.blind.size(), 3U);
  EXPECT_EQ(hour.blind[0].reason, "not_running");
  EXPECT_EQ(json_text(hour), report_json(hour).dump(2));
}

TEST_F(ReportModel, OverlappingBlindWindowsAreSubtractedOnceAtTheRangeEdge) {
  // The range ends at F+22m, inside B and inside both overlapping windows:
  //   observed: F+1m .. F+22m = 21m, less blind [21m, 22m] (the union, clipped) = 20m
  //   down: A 2m + C 1m (as above) + B [20m, 22m] less [21m, 22m] = 1m  -> 4m
  const ProbeSummary web = summary_of(report_for(F, F + 22 * kMinute), "web");
  EXPECT_EQ(web.observed_ms, 20 * kMinute);
  EXPECT_EQ(web.down_ms, 4 * kMinute);
  EXPECT_EQ(web.outages, 3);  // A, B, C
  EXPECT_DOUBLE_EQ(web.uptime().value_or(-1), 1.0 - 4.0 / 20.0);
}

TEST_F(ReportModel, AnOutageOverTheRangeStartCountsOnlyItsPartInRange) {
  // [F+1m30s, F+20m]: C reaches in by 30 s ([1m30s, 2m]) and nothing is blind in
  // the range; B starts at its end and is not in it. Observed: the minute at F+1m
  // has a sample, so blip was running at the range's start: 20m - 1m30s = 18m30s
  // (19 minutes with samples, 1,140,000 ms, is the larger bound).
  const ProbeSummary web = summary_of(report_for(F + 90 * kSecond, F + 20 * kMinute), "web");
  EXPECT_EQ(web.outages, 2);  // C and A
  EXPECT_EQ(web.down_ms, 30 * kSecond + 2 * kMinute);
  EXPECT_EQ(web.observed_ms, 18 * kMinute + 30 * kSecond);
  EXPECT_DOUBLE_EQ(web.uptime().value_or(-1), 1.0 - 150.0 / 1110.0);
  EXPECT_EQ(web.longest_ms, 12 * kMinute);
}

TEST_F(ReportModel, AnOpenOutageLastsToTheRangeEndWhileTheWriterIsAlive) {
  // The feed, inside the running daemon: D is still going on at T, so it is
  // down for 10 min, not 9m30s: 990,000 + 30,000 = 1,020,000.
  Store store(dir_.file("blip.db"), Store::Mode::read_only);
  const ReportData data = load_report_data(store, {F, T, T}, "", /*writer_alive=*/true);
  const Report hour = analyse_report(
      data,
      [&](const std::string& probe, int64_t from, int64_t to) {
        return store.rollup_totals(probe, from, to);
      },
      std::nullopt, /*find_patterns=*/false);
  const ProbeSummary& web = summary_of(hour, "web");
  EXPECT_EQ(web.down_ms, 1'020'000);
  EXPECT_EQ(web.longest_ms, 12 * kMinute);  // D's 10 min is still shorter than C
  EXPECT_EQ(web.closed, 3);
}

TEST_F(ReportModel, ARangeWithoutSamplesHasNoUptime) {
  // The hour before F: no samples, so nothing was observed; C was going on in
  // its last 10 minutes, 5 of them before blip stopped running ([F-10m, F-5m]).
  // Its probe gets a summary for its outage, with down time and no uptime (not 0 %, not negative).
  const Report before = report_for(F - 60 * kMinute, F);
  ASSERT_EQ(before.summaries.size(), 1U);
  const ProbeSummary& web = before.summaries[0];
  EXPECT_EQ(web.probe, "web");
  EXPECT_EQ(web.observed_ms, 0);
  EXPECT_EQ(web.down_ms, 5 * kMinute);
  EXPECT_FALSE(web.uptime().has_value());
}

// Five probes that go down together every hour make one incident an hour:
// the incident finding counts each once (12 events, not 60), each probe's
// own finding counts its own outages, and the day-of-week grid counts every
// outage start.
TEST(ReportPattern, AnIncidentsOutagesCountOnceInTheIncidentFinding) {
  constexpr int64_t kHour = 60 * kMinute;
  constexpr int kHours = 12;
  constexpr int kProbes = 5;
  const int64_t to = F + kHours * kHour;  // F is a Wednesday's midnight
  test::TempDir dir;
  {
    Store store(dir.file("blip.db"), Store::Mode::read_write);
    std::vector<int64_t> ids;
    for (int probe = 0; probe < kProbes; ++probe)
      ids.push_back(store.register_probe(probe_named(fmt::format("probe-{}", probe))));
    for (int minute = 0; minute < kHours * 60; ++minute) {
      for (int64_t id : ids) store.add_sample(id, up_at(F + minute * kMinute));
    }
    int64_t outage_id = 0;
    for (int hour = 0; hour < kHours; ++hour) {
      const int64_t incident_start = F + hour * kHour + 5 * kSecond;
      store.write_incident({hour + 1, incident_start, incident_start + 45 * kSecond});
      for (int probe = 0; probe < kProbes; ++probe) {
        OutageRow row;
        row.id = ++outage_id;
        row.probe_id = ids[static_cast<size_t>(probe)];
        row.incident_id = hour + 1;
        row.start_ms = incident_start + probe * 800;  // each a little after the one before
        row.end_ms = row.start_ms + 40 * kSecond;
        row.error = ErrorClass::timeout;
        row.down_samples = 40;
        row.end_reason = "recovered";
        store.write_outage(row);
      }
    }
    store.flush(to);
  }
  Store store(dir.file("blip.db"), Store::Mode::read_only);
  const Report report = build_report(store, {F, to, to});
  ASSERT_EQ(report.incidents.size(), static_cast<size_t>(kHours));
  const PatternResult& incidents = report.incident_pattern;
  EXPECT_EQ(incidents.outages_in_range, kHours) << "one start per incident, not one per outage";
  ASSERT_TRUE(incidents.finding) << incidents.verdict;
  EXPECT_EQ(incidents.finding->period_ms, kHour);
  EXPECT_EQ(incidents.finding->in_cluster, kHours);
  EXPECT_EQ(incidents.finding->outages, kHours);
  EXPECT_TRUE(
      incidents.verdict.starts_with("incidents recur every 1h: 12 of 12 incidents began within 1s "
                                    "of +00:00:05 past the hour (p < 0.0001)"))
      << incidents.verdict;
  for (int probe = 0; probe < kProbes; ++probe) {
    const PatternResult& own = report.probe_patterns.at(fmt::format("probe-{}", probe));
    EXPECT_EQ(own.outages_in_range, kHours);
    ASSERT_TRUE(own.finding) << own.verdict;
    EXPECT_DOUBLE_EQ(own.finding->phase_ms, 5'000.0 + probe * 800);
  }
  for (int hour = 0; hour < 24; ++hour) {
    EXPECT_EQ(report.hour_of_week.bins[2][static_cast<size_t>(hour)], hour < kHours ? kProbes : 0)
        << hour;
  }
  EXPECT_EQ(report.hour_of_week.total(), kHours * kProbes);
  EXPECT_EQ(json_text(report), report_json(report).dump(2));

  // The feed's way: a window moving with the clock, a second later each time, through a memo.
  // Within a minute (both edges) the patterns are the same input: no search runs again.
  PatternMemo memo;
  auto moving = [&](int64_t now) {
    const ReportRange range{now - 10 * kHour, now, now};
    return analyse_report(
        load_report_data(store, range, "", true),
        [&](const std::string& probe, int64_t from_ms, int64_t to_ms) {
          return store.rollup_totals(probe, from_ms, to_ms);
        },
        std::nullopt, true, &memo);
  };
  const Report first = moving(to + 1'000);  // the window starts after the first sample
  EXPECT_EQ(memo.misses(), kProbes + 1);
  const Report second = moving(to + 2'000);
  EXPECT_EQ(memo.misses(), kProbes + 1);
  EXPECT_EQ(memo.hits(), kProbes + 1);
  EXPECT_EQ(second.incident_pattern.verdict, first.incident_pattern.verdict);
  // And it is the search over the whole minutes.
  const Report whole_minutes = build_report(store, {to - 10 * kHour + kMinute, to, to});
  EXPECT_EQ(second.incident_pattern.verdict, whole_minutes.incident_pattern.verdict);
  EXPECT_EQ(pattern_json(second.probe_patterns.at("probe-0")).dump(),
            pattern_json(whole_minutes.probe_patterns.at("probe-0")).dump());
  moving(to + kMinute + 1'000);
  EXPECT_EQ(memo.misses(), 2 * (kProbes + 1)) << "the next minute is another input";
}

// `blip report --format json` writes its text straight away: the same bytes as the document's
// dump, for the parts the store-backed reports above do not have (jobs, names to escape).
TEST(ReportJson, TheTextIsTheDocumentsDump) {
  Report report;
  report.range = {F, T, T};
  ProbeSummary summary{"caf\xc3\xa9 \"main\""};
  summary.observed_ms = 60 * kMinute;
  summary.down_ms = 20 * kSecond;
  report.summaries.push_back(summary);
  OutageRecord outage;
  outage.id = 1;
  outage.probe = summary.probe;
  outage.start_ms = F + kMinute;
  outage.detail = "line one\nline\ttwo\x01";
  report.outages.push_back(outage);
  JobSummary job;
  job.job = "backup";
  job.settings.period_ms = 3'600'000;
  job.runs = 2;
  JobRunRecord run;
  run.start_ms = F;
  run.end_ms = F + 1'500;
  run.exit_status = 0;
  run.output = "done";
  job.last_runs = {run, JobRunRecord{}};
  job.trend = RunTrend{6, F, T, 12.5, 1'000, 1'062.5, std::nullopt, T + kMinute};
  job.trend_text = "growing";
  report.jobs = {job, JobSummary{}};
  report.job_overlaps.push_back({summary.probe, "backup", 1, 1});
  EXPECT_EQ(json_text(report), report_json(report).dump(2));
}

}  // namespace
}  // namespace blip
