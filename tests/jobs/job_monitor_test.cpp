// Jobs that report in, the monitor on its own: its edges on hand-made times
// (cron, late, overrun, failed), its forecast, and the run output it keeps.
// tests/system/jobs_end_to_end_test.cpp runs the same through the real daemon.
#include "blip/jobs/job_monitor.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"
#include "blip/store/store.hpp"
#include "support/iso_time.hpp"
#include "support/jobs.hpp"

namespace blip {
namespace {

using test::at;
using test::job_config;

constexpr const char* kToken = "job-token-7f3a9c2e51d04b86";

struct RecordedRuns : RecordSink {
  void add_sample(int64_t, const Sample&) override {}
  void write_outage(const OutageRow&) override {}
  void write_incident(const IncidentRow&) override {}
  void write_job_run(const JobRunRow& row) override { runs.push_back(row); }
  std::vector<JobRunRow> runs;
};

// Every sample the monitor emits, and the first down one's stamp.
struct Samples {
  std::vector<Sample> all;
  std::optional<Sample> first_down() const {
    for (const Sample& sample : all) {
      if (sample.status == Status::down) return sample;
    }
    return std::nullopt;
  }
};

TEST(JobMonitor, MissedCronStartIsLateFromScheduleAndGrace) {
  EventLoop loop;
  RecordedRuns runs;
  Samples samples;
  JobSettings settings;
  settings.schedule = "0 3 * * *";
  settings.time_zone = "Europe/Berlin";
  settings.grace_ms = 5 * 60'000;
  const JobConfig config = job_config(settings, kToken);
  JobMonitor monitor(loop.get(), runs, 0,
                     [&](size_t, const Sample& sample) { samples.all.push_back(sample); });
  monitor.add(0, config, 7, {}, at("2026-12-01T01:00:00Z"));
  // 03:00 in Berlin is 02:00 UTC in December; late from 02:05.
  for (int64_t t = at("2026-12-01T01:59:00Z"); t <= at("2026-12-01T02:06:00Z"); t += 1000)
    monitor.evaluate(t);
  const auto down = samples.first_down();
  ASSERT_TRUE(down);
  EXPECT_EQ(down->sent_ms, at("2026-12-01T02:05:00Z"));
  EXPECT_EQ(down->error, ErrorClass::late);
  EXPECT_NE(down->detail.find("2026-12-01T02:00:00.000Z"), std::string::npos) << down->detail;
  EXPECT_EQ(monitor.live(0, at("2026-12-01T02:06:00Z"))->state, "late");

  // The start ends it at once; the next one is expected the day after.
  JobPing start;
  start.kind = JobPing::Kind::start;
  start.received_ms = at("2026-12-01T02:10:00Z");
  monitor.ping(0, start);
  EXPECT_EQ(samples.all.back().status, Status::up);
  EXPECT_EQ(samples.all.back().sent_ms, start.received_ms);
  EXPECT_EQ(monitor.live(0, start.received_ms)->state, "running");
  ASSERT_EQ(runs.runs.size(), 1u);
  EXPECT_EQ(runs.runs[0].start_ms, start.received_ms);
}

TEST(JobMonitor, OverrunStartsAtMaxRunAndFailureLastsUntilASuccess) {
  EventLoop loop;
  RecordedRuns runs;
  Samples samples;
  JobSettings settings;
  settings.period_ms = 3'600'000;
  settings.grace_ms = 600'000;
  settings.max_run_ms = 20'000;
  const JobConfig config = job_config(settings, kToken);
  JobMonitor monitor(loop.get(), runs, 41,
                     [&](size_t, const Sample& sample) { samples.all.push_back(sample); });
  const int64_t t0 = at("2026-12-01T00:00:00Z");
  monitor.add(0, config, 7, {}, t0);
  JobPing start;
  start.kind = JobPing::Kind::start;
  start.rid = "a1";
  start.received_ms = t0 + 1500;
  monitor.ping(0, start);
  for (int64_t t = t0 + 2000; t <= t0 + 30'000; t += 1000) monitor.evaluate(t);
  const auto down = samples.first_down();
  ASSERT_TRUE(down);
  EXPECT_EQ(down->sent_ms, t0 + 1500 + 20'000);
  EXPECT_EQ(down->error, ErrorClass::overrunning);

  // Killed past max_run: the end carries 137 and the outage goes on as a failure.
  JobPing killed;
  killed.rid = "a1";
  killed.exit_status = 137;
  killed.output = "dumping table 41 of 90\n";
  killed.received_ms = t0 + 31'000;
  monitor.ping(0, killed);
  ASSERT_EQ(runs.runs.size(), 2u);
  EXPECT_EQ(runs.runs[1].id, 42);  // the start's row, now ended
  EXPECT_EQ(runs.runs[1].exit_status, 137);
  EXPECT_TRUE(runs.runs[1].failed);
  EXPECT_EQ(samples.all.back().status, Status::down);
  EXPECT_EQ(monitor.live(0, killed.received_ms)->state, "failed");

  // A run that ends with 0 (reported without a start) clears it.
  JobPing ok;
  ok.exit_status = 0;
  ok.duration_ms = 5000;
  ok.received_ms = t0 + 90'000;
  monitor.ping(0, ok);
  EXPECT_EQ(samples.all.back().status, Status::up);
  EXPECT_EQ(runs.runs.back().start_ms, t0 + 85'000);
  EXPECT_EQ(monitor.live(0, ok.received_ms)->state, "up");
  for (size_t i = 1; i < samples.all.size(); ++i)
    EXPECT_LE(samples.all[i - 1].sent_ms, samples.all[i].sent_ms);
}

TEST(JobMonitor, ForecastsAnOverrunOnceWhenTheTrendCrossesMaxRunSoon) {
  EventLoop loop;
  RecordedRuns runs;
  JobSettings settings;
  settings.schedule = "0 3 * * *";
  settings.max_run_ms = 140 * 60'000;
  const JobConfig config = job_config(settings, kToken);
  JobMonitor monitor(loop.get(), runs, 30, [](size_t, const Sample&) {});
  std::vector<std::string> told;
  monitor.set_forecast_sink([&](size_t, const std::string& text) { told.push_back(text); });
  const int64_t day = 86'400'000;
  const int64_t first = at("2026-11-01T03:00:00Z");
  std::vector<JobRunRow> history;  // newest first, growing from 41 min by about 3 min a night
  for (int i = 28; i >= 0; --i) {
    JobRunRow run;
    run.id = i + 1;
    run.start_ms = first + i * day;
    run.end_ms = *run.start_ms + 41 * 60'000 + (130 - 41) * 60'000 * i / 29;
    run.exit_status = 0;
    history.push_back(run);
  }
  monitor.add(0, config, 7, history, first + 29 * day);
  for (int night = 29; night <= 30; ++night) {
    JobPing start;
    start.kind = JobPing::Kind::start;
    start.received_ms = first + night * day;
    monitor.ping(0, start);
    JobPing end;
    end.exit_status = 0;
    end.received_ms = start.received_ms + 41 * 60'000 + (130 - 41) * 60'000 * night / 29;
    monitor.ping(0, end);
  }
  ASSERT_EQ(told.size(), 1u) << "told once, not at every run";
  EXPECT_NE(told[0].find("exceeds max_run 2 h 20 min in 3 days"), std::string::npos) << told[0];
}

TEST(JobMonitor, RunOutputKeepsItsLastLinesClean) {
  std::string output;
  for (int i = 0; i < 2000; ++i) output += fmt::format("line {} \x1b[31mred\x1b[0m\n", i);
  const std::string cleaned = clean_run_output(output);
  EXPECT_LE(cleaned.size(), kMaxRunOutputBytes);
  EXPECT_EQ(cleaned.find('\x1b'), std::string::npos);
  EXPECT_NE(cleaned.find("line 1999 [31mred[0m\n"), std::string::npos);
  EXPECT_EQ(cleaned.rfind("line ", 0), 0u) << "cut at a line start";
}

}  // namespace
}  // namespace blip
