// Every table has a bound (issue 17): raw samples and job output go after --retain,
// rollups and blind windows after --retain-rollups, details once no kept block uses
// them; pruning goes in bounded steps. Real SQLite files, pruned by the code the
// daemon's writer runs (Store::prune_step with prune_cutoffs).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "blip/store/store_writer.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kStart = 1'700'006'400'000 - 1'700'006'400'000 % kDayMs;  // a midnight

int64_t file_bytes(const std::string& path) {
  int64_t bytes = 0;
  for (const std::string& file : {path, path + "-wal"}) {
    if (std::filesystem::exists(file))
      bytes += static_cast<int64_t>(std::filesystem::file_size(file));
  }
  return bytes;
}

int64_t count(const std::string& path, const std::string& sql) {
  std::string output;
  if (test::run_command({"sqlite3", path, sql}, &output) != 0)
    ADD_FAILURE() << sql << ": " << output;
  return std::stoll(output);
}

JobConfig job_config(const std::string& name) {
  JobConfig config;
  config.name = name;
  config.interval_ms = kMinuteMs;
  config.target_display = "job";
  JobSettings job;
  job.schedule = "* * * * *";
  config.settings = job;
  return config;
}

// The daemon's pruning, step after bounded step, until nothing is left; the longest step's seconds.
struct PruneRun {
  PruneCounts removed;
  int steps = 0;
  double longest_step_seconds = 0;
};
PruneRun prune_all(Store& store, int64_t now_ms, const StoreWriterOptions& options) {
  PruneRun run;
  while (true) {
    const auto began = std::chrono::steady_clock::now();
    const PruneCounts step =
        store.prune_step(prune_cutoffs(now_ms, options), options.prune_rows_per_step);
    run.longest_step_seconds =
        std::max(run.longest_step_seconds,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    ++run.steps;
    run.removed += step;
    if (!step.more) return run;
  }
}

// A job that runs every minute for 20 s and reports 10 KiB of output, written an hour a
// transaction (its runs and its samples, as the writer writes them), pruned once a day.
class PerMinuteJob {
 public:
  PerMinuteJob(Store& store, StoreWriterOptions options) : store_(store), options_(options) {
    probe_id_ = store.register_probe(job_config("dump"));
    output_.reserve(10 * 1024);
    while (output_.size() < 10 * 1024)
      output_ += fmt::format("line {} of the dump's output\n", output_.size());
    output_.resize(10 * 1024);
  }
  void run_day() {
    for (int hour = 0; hour < 24; ++hour) {
      WriteBatch batch;
      for (int minute = 0; minute < 60; ++minute, now_ms_ += kMinuteMs) {
        JobRunRow run;
        run.id = ++last_run_id_;
        run.probe_id = probe_id_;
        run.start_ms = now_ms_;
        run.end_ms = now_ms_ + 20'000;
        run.exit_status = 0;
        run.output = output_;
        run.output.replace(0, 8, fmt::format("{:08}", run.id));
        batch.job_runs.push_back(std::move(run));
        Sample sample;
        sample.sent_ms = now_ms_ + 20'000;
        sample.status = Status::up;
        sample.latency_us = 20'000'000;
        batch.samples.emplace_back(probe_id_, sample);
      }
      batch.alive_ms = now_ms_;
      store_.write(batch);
    }
    const PruneRun pruned = prune_all(store_, now_ms_, options_);
    longest_step_seconds_ = std::max(longest_step_seconds_, pruned.longest_step_seconds);
    pruned_ += pruned.removed;
  }
  int64_t now_ms() const { return now_ms_; }
  int64_t runs() const { return last_run_id_; }
  double longest_step_seconds() const { return longest_step_seconds_; }
  const PruneCounts& pruned() const { return pruned_; }

 private:
  Store& store_;
  StoreWriterOptions options_;
  int64_t probe_id_ = 0;
  std::string output_;
  int64_t now_ms_ = kStart;
  int64_t last_run_id_ = 0;
  double longest_step_seconds_ = 0;
  PruneCounts pruned_;
};

TEST(StoreRetention, AMonthOfAPerMinuteJobWithTenKiBOfOutputAndRetainSevenDaysStopsGrowing) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  StoreWriterOptions options;
  options.retain_ms = 7 * kDayMs;
  Store store(path, Store::Mode::read_write);
  PerMinuteJob job(store, options);
  for (int day = 0; day < 7; ++day) job.run_day();
  const int64_t week = file_bytes(path);
  for (int day = 7; day < 30; ++day) job.run_day();
  const int64_t month = file_bytes(path);

  for (int day = 30; day < 37; ++day) job.run_day();
  const int64_t month_and_week = file_bytes(path);
  std::cerr << fmt::format(
      "file after a week {:.1f} MB, a month {:.1f} MB, a month and a week {:.1f} MB (10 KiB a run: "
      "{:.1f} MB a week "
      "of output); pruned job_outputs={} sample_blocks={}; longest prune step {:.3f} s\n",
      static_cast<double>(week) / 1e6, static_cast<double>(month) / 1e6,
      static_cast<double>(month_and_week) / 1e6, 7.0 * 1440 * 10240 / 1e6, job.pruned().job_outputs,
      job.pruned().sample_blocks, job.longest_step_seconds());

  // Without pruning a month is over four weeks' worth; pruned once a day it holds 7-8 days.
  EXPECT_LT(month, week * 3 / 2);
  EXPECT_LT(month_and_week, month + month / 50)
      << "freed pages are reused: the file stopped growing";
  EXPECT_LT(job.longest_step_seconds(), 2.0) << "a bounded step, not a multi-second transaction";

  // The runs stay, every one; their output only within --retain.
  const int64_t cutoff = job.now_ms() - options.retain_ms;
  EXPECT_EQ(count(path, "SELECT count(*) FROM job_runs"), job.runs());
  EXPECT_EQ(
      count(path, fmt::format("SELECT count(*) FROM job_runs WHERE output != '' AND end_ms < {}",
                              cutoff)),
      0);
  EXPECT_EQ(
      count(path, fmt::format("SELECT count(*) FROM job_runs WHERE output != '' AND end_ms >= {}",
                              cutoff)),
      7 * 1440);
  EXPECT_EQ(
      count(path, fmt::format("SELECT count(*) FROM sample_blocks WHERE minute_ms < {}", cutoff)),
      0);
  const auto old_runs = store.job_runs("dump", 0, kStart + kDayMs, 5);
  ASSERT_EQ(old_runs.size(), 5U);
  EXPECT_TRUE(old_runs[0].end_ms.has_value());
  EXPECT_EQ(old_runs[0].output, "");
  const auto new_runs = store.job_runs("dump", 0, INT64_MAX, 1);
  ASSERT_EQ(new_runs.size(), 1U);
  EXPECT_EQ(new_runs[0].output.size(), 10U * 1024);
}

Sample down_sample(int64_t sent_ms, const std::string& detail) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.status = Status::down;
  sample.error = ErrorClass::refused;
  sample.detail = detail;
  sample.latency_us = 1000;
  return sample;
}

TEST(StoreRetention, DetailsThatNoKeptBlockUsesArePrunedAndTheirTextIsStoredAgainWhenItComesBack) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  StoreWriterOptions options;
  options.retain_ms = 7 * kDayMs;
  Store store(path, Store::Mode::read_write);
  const int64_t web = store.register_probe(job_config("web"));
  auto write = [&](int64_t at_ms, const std::string& detail) {
    store.add_sample(web, down_sample(at_ms, detail));
    store.flush(at_ms);
  };
  write(kStart, "refused by the old balancer");
  write(kStart + 1000, "reset by peer");
  write(kStart + 10 * kDayMs, "reset by peer");
  write(kStart + 10 * kDayMs + 61'000, "refused by the new balancer");
  EXPECT_EQ(count(path, "SELECT count(*) FROM details"), 3);

  const PruneRun pruned = prune_all(store, kStart + 14 * kDayMs, options);
  EXPECT_EQ(pruned.removed.details, 1);
  EXPECT_EQ(pruned.removed.sample_blocks, 1) << "day 0's one minute";
  EXPECT_EQ(count(path, "SELECT count(*) FROM details WHERE text = 'refused by the old balancer'"),
            0);
  EXPECT_EQ(count(path, "SELECT count(*) FROM details"), 2) << "a detail a kept block uses stays";

  // The old text again: stored anew, not under an id that is gone (or now another's).
  write(kStart + 14 * kDayMs, "refused by the old balancer");
  write(kStart + 14 * kDayMs + 60'000, "refused by the new balancer");
  const auto samples = store.samples("web", kStart + 9 * kDayMs, INT64_MAX);
  ASSERT_EQ(samples.size(), 4U);
  EXPECT_EQ(samples[0].detail, "reset by peer");
  EXPECT_EQ(samples[1].detail, "refused by the new balancer");
  EXPECT_EQ(samples[2].detail, "refused by the old balancer");
  EXPECT_EQ(samples[3].detail, "refused by the new balancer");
}

TEST(StoreRetention, RollupsAndBlindWindowsGoAfterRetainRollupsInStepsOfBoundedRows) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  StoreWriterOptions options;
  options.retain_ms = 1 * kDayMs;
  options.retain_rollups_ms = 30 * kDayMs;
  options.prune_rows_per_step = 100;
  Store store(path, Store::Mode::read_write);
  const int64_t a = store.register_probe(job_config("a"));
  const int64_t b = store.register_probe(job_config("b"));
  // 250 minutes of each probe on day 0 and on day 40; blind windows on both days.
  for (int64_t day : {0, 40}) {
    for (int minute = 0; minute < 250; ++minute) {
      const int64_t t = kStart + day * kDayMs + minute * kMinuteMs;
      Sample sample = down_sample(t, "");
      sample.status = Status::up;
      store.add_sample(a, sample);
      store.add_sample(b, sample);
      if (minute % 50 == 49) store.flush(t);
    }
    store.flush(kStart + day * kDayMs + 250 * kMinuteMs);
    for (int i = 0; i < 130; ++i) {
      store.add_blind_window(
          {kStart + day * kDayMs + i * 1000, kStart + day * kDayMs + i * 1000 + 500, "loop_stall"});
    }
  }
  const int64_t now = kStart + 40 * kDayMs + 300 * kMinuteMs;
  int steps = 0;
  PruneCounts removed;
  while (true) {
    const PruneCounts step =
        store.prune_step(prune_cutoffs(now, options), options.prune_rows_per_step);
    ++steps;
    for (int64_t rows :
         {step.sample_blocks, step.rollups, step.job_outputs, step.details, step.blind_windows}) {
      EXPECT_LE(rows, options.prune_rows_per_step);
    }
    removed += step;
    if (!step.more) break;
    ASSERT_LT(steps, 100);
  }
  EXPECT_GE(steps, 5) << "500 rollups at 100 a step";
  EXPECT_EQ(removed.rollups, 500);
  EXPECT_EQ(removed.sample_blocks, 500);
  EXPECT_EQ(removed.blind_windows, 130);
  EXPECT_EQ(store.rollups("a", 0, INT64_MAX).size(), 250U);
  EXPECT_EQ(store.rollups("b", 0, INT64_MAX).size(), 250U);
  EXPECT_EQ(store.rollups("a", 0, kStart + 30 * kDayMs).size(), 0U);
  EXPECT_EQ(store.blind_windows(0, INT64_MAX).size(), 130U);
  EXPECT_EQ(store.blind_windows(0, kStart + 30 * kDayMs).size(), 0U);
}

}  // namespace
}  // namespace blip
