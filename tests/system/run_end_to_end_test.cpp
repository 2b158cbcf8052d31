// End to end: the real blip binary against a real nginx, stopped and killed for real.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/freeze.hpp"
#include "support/hostile_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::TempDir;

void sleep_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

using test::Daemon;
using test::http_config;

// No write of samples was lost: the daemon writes what a second brought
// (kFlushEveryMs), so a lost write is a gap of a second or more. A gap of a few
// intervals is a slot the scheduler skipped because a busy machine ran the loop
// late, and a gap far under one interval follows a late send (sends keep their
// grid); neither is a loss, so neither bound is the interval itself.
void expect_no_lost_write(const std::vector<Sample>& samples) {
  for (size_t i = 1; i < samples.size(); ++i) {
    int64_t gap = samples[i].sent_ms - samples[i - 1].sent_ms;
    ASSERT_GE(gap, 0) << "out of send order at sample " << i;
    ASSERT_LT(gap, 500) << "a write lost at sample " << i;
  }
}

// The daemon's own count of the attempts it sent ("run: stopped samples=N"); -1 if not logged.
int64_t samples_sent(const std::string& log) {
  const std::string key = "run: stopped samples=";
  const size_t at = log.rfind(key);
  if (at == std::string::npos) return -1;
  return std::stoll(log.substr(at + key.size()));
}

TEST(Daemon, OutageEdgesFollowAFrozenNginx) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, http_config("web", nginx.url("/health"), "250ms", "1s"));
  sleep_for(2s);
  const auto [frozen_ms, thawed_ms] = test::freeze_for(nginx, 3s);
  sleep_for(2s);
  blip.process().signal(SIGTERM);
  ASSERT_EQ(blip.process().wait(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  auto outages = store.outages(0, INT64_MAX);
  ASSERT_EQ(outages.size(), 1U) << blip.log();
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(frozen_ms), 500.0);
  ASSERT_TRUE(outages[0].end_ms.has_value());
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thawed_ms), 500.0);
  EXPECT_EQ(outages[0].error, ErrorClass::timeout);
  EXPECT_EQ(outages[0].end_reason, "recovered");

  std::string json;
  ASSERT_EQ(
      test::run_command(
          {BLIP_BINARY, "report", "--db", blip.db(), "--since", "1h", "--format", "json"}, &json),
      0)
      << json;
  auto report = nlohmann::json::parse(json);
  ASSERT_EQ(report["outages"].size(), 1U);
  EXPECT_EQ(report["outages"][0]["probe"], "web");
  EXPECT_EQ(report["outages"][0]["start"], format_iso8601_ms(outages[0].start_ms));
  EXPECT_EQ(report["minute_of_hour"]["outage_starts"][(outages[0].start_ms / 60'000) % 60], 1);

  std::string csv;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--db", blip.db(), "--format", "csv"}, &csv),
            0);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2) << csv;
  std::string table;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--db", blip.db()}, &table), 0);
  EXPECT_NE(table.find("no answer within 1s"), std::string::npos) << table;
}

TEST(Daemon, SigtermStoresEverySampleSentBeforeIt) {
  test::NginxServer nginx;
  test::HostileServer hanging(test::HostileServer::Mode::hang);
  TempDir dir;
  // The hanging target keeps about ten attempts in flight when the signal comes.
  Daemon blip(dir,
              http_config("web", nginx.url("/health"), "100ms", "1s") +
                  http_config("hang", "http://127.0.0.1:" + std::to_string(hanging.port()) + "/",
                              "100ms", "1s"));
  sleep_for(3s);
  const int64_t signalled_ms = wall_now_ms();
  blip.process().signal(SIGTERM);
  ASSERT_EQ(blip.process().wait(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  size_t stored = 0;
  for (const std::string probe : {"web", "hang"}) {
    SCOPED_TRACE(probe);
    auto samples = store.samples(probe, 0, INT64_MAX);
    // About 30 in 3 s; enough for the test to mean something even when a busy machine delays the
    // start (24 seen with a Release build beside it). The exact check is the count below.
    ASSERT_GE(samples.size(), 20U);
    stored += samples.size();
    expect_no_lost_write(samples);
    EXPECT_GE(samples.back().sent_ms, signalled_ms - 200)
        << "the last attempts before the signal are stored";
    // Sending stops when the loop handles the signal: at most one slot (100 ms)
    // after it, plus what a loaded machine delays the loop's wake-up.
    EXPECT_LE(samples.back().sent_ms, signalled_ms + 250);
  }
  // Every attempt sent is stored, the ten in flight at the signal included: the
  // daemon's own count of sends against the rows, exactly.
  EXPECT_EQ(static_cast<int64_t>(stored), samples_sent(blip.log())) << blip.log();
  auto hang = store.samples("hang", 0, INT64_MAX);
  EXPECT_EQ(hang.back().error, ErrorClass::timeout);
}

TEST(Daemon, KillDashNineLosesAtMostTheLastSecond) {
  test::NginxServer nginx;
  TempDir dir;
  std::string config = http_config("web", nginx.url("/health"), "100ms", "1s");
  {
    Daemon blip(dir, config);
    sleep_for(3500ms);
    const int64_t killed_ms = wall_now_ms();
    blip.process().signal(SIGKILL);
    blip.process().wait();
    Store store(blip.db(), Store::Mode::read_write);  // opens and recovers the WAL
    auto samples = store.samples("web", 0, INT64_MAX);
    ASSERT_FALSE(samples.empty());
    expect_no_lost_write(samples);
    EXPECT_GE(samples.back().sent_ms, killed_ms - 1000 - 150);
  }
  // The next run records the time blip was not running as blind, not as up or down.
  Daemon again(dir, config);
  sleep_for(1500ms);
  again.process().signal(SIGTERM);
  ASSERT_EQ(again.process().wait(), 0) << again.log();
  Store store(again.db(), Store::Mode::read_only);
  auto blind = store.blind_windows(0, INT64_MAX);
  ASSERT_GE(blind.size(), 1U);
  EXPECT_EQ(blind[0].reason, "not_running");
  EXPECT_GT(blind[0].end_ms, blind[0].start_ms);
}

TEST(Daemon, MisbehavingTargetsAreDownSamplesAndBlipKeepsRunning) {
  test::NginxServer nginx;
  test::HostileServer garbage(test::HostileServer::Mode::garbage);
  test::HostileServer reset(test::HostileServer::Mode::reset);
  test::HostileServer hang(test::HostileServer::Mode::hang);
  auto local = [](int port) { return "http://127.0.0.1:" + std::to_string(port) + "/"; };
  TempDir dir;
  Daemon blip(dir, http_config("garbage", local(garbage.port()), "100ms", "500ms") +
                       http_config("reset", local(reset.port()), "100ms", "500ms") +
                       http_config("hang", local(hang.port()), "100ms", "500ms") +
                       http_config("big", nginx.url("/big"), "200ms", "2s") +
                       http_config("loop", nginx.url("/loop"), "100ms", "500ms") +
                       "follow_redirects = true\n" +
                       http_config("refused", local(test::free_port()), "100ms", "500ms") +
                       http_config("healthy", nginx.url("/health"), "100ms", "500ms"));
  sleep_for(4s);
  ASSERT_TRUE(blip.process().running()) << blip.log();
  blip.process().signal(SIGTERM);
  ASSERT_EQ(blip.process().wait(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  const std::vector<std::pair<std::string, ErrorClass>> expected{
      {"garbage", ErrorClass::protocol}, {"reset", ErrorClass::reset},
      {"hang", ErrorClass::timeout},     {"big", ErrorClass::body_too_large},
      {"loop", ErrorClass::redirects},   {"refused", ErrorClass::refused}};
  for (const auto& [probe, error] : expected) {
    SCOPED_TRACE(probe);
    auto samples = store.samples(probe, 0, INT64_MAX);
    ASSERT_GE(samples.size(), 10U);
    for (const Sample& sample : samples) {
      ASSERT_EQ(sample.status, Status::down);
      ASSERT_EQ(sample.error, error) << sample.detail;
    }
    auto outages = store.outages(0, INT64_MAX, probe);
    ASSERT_EQ(outages.size(), 1U);
    EXPECT_EQ(outages[0].error, error);
    EXPECT_EQ(outages[0].end_reason, "shutdown");
  }
  const auto healthy = store.samples("healthy", 0, INT64_MAX);
  ASSERT_GE(healthy.size(), 10U) << "without samples the loop below checks nothing";
  for (const Sample& sample : healthy) EXPECT_EQ(sample.status, Status::up);
  EXPECT_TRUE(store.outages(0, INT64_MAX, "healthy").empty());
}

// The whole story: stalls on a schedule, and the report names the schedule.
TEST(Daemon, ReportFindsTheStallSchedule) {
  constexpr int kStalls = 5;
  constexpr int64_t kOffsetMs = 20'000;  // each stall begins 20 s into a minute
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, http_config("web", nginx.url("/health"), "250ms", "1s"));
  std::vector<std::pair<int64_t, int64_t>> stalls;  // freeze, thaw
  for (int i = 0; i < kStalls; ++i) {
    const int64_t now = wall_now_ms();
    int64_t next = now - now % 60'000 + kOffsetMs;
    if (next <= now + 500) next += 60'000;
    sleep_for(std::chrono::milliseconds(next - now));
    const test::Freeze stall = test::freeze_for(nginx, 3s);
    stalls.emplace_back(stall.frozen_ms, stall.thawed_ms);
  }
  sleep_for(2s);
  blip.process().signal(SIGTERM);
  ASSERT_EQ(blip.process().wait(), 0) << blip.log();

  std::string json;
  ASSERT_EQ(
      test::run_command(
          {BLIP_BINARY, "report", "--db", blip.db(), "--since", "1h", "--format", "json"}, &json),
      0)
      << json;
  auto report = nlohmann::json::parse(json);
  ASSERT_EQ(report["outages"].size(), static_cast<size_t>(kStalls)) << json;
  for (int i = 0; i < kStalls; ++i) {
    int64_t start = 0;
    int64_t end = 0;
    ASSERT_TRUE(parse_iso8601_ms(report["outages"][i]["start"], start));
    ASSERT_TRUE(parse_iso8601_ms(report["outages"][i]["end"], end));
    // The outage starts with the first attempt nginx did not answer: sent at most
    // one interval (250 ms) after the freeze, or just before it (a request in
    // flight when nginx stopped, 50 ms for a loopback answer). The ±250 ms bound
    // this had was the interval itself; 250 ms more is slack for a late loop.
    EXPECT_GE(start, stalls[i].first - 50) << "stall " << i;
    EXPECT_LE(start, stalls[i].first + 250 + 250) << "stall " << i;
    // It ends when the first up attempt is answered: not before the thaw (read
    // before SIGCONT; less 2 ms, as that answer's time is its send's wall-clock
    // millisecond plus its latency in whole milliseconds, each cut down), and at
    // most an interval after it plus the same slack.
    EXPECT_GE(end, stalls[i].second - 2) << "stall " << i;
    EXPECT_LE(end, stalls[i].second + 250 + 250) << "stall " << i;
  }
  const auto& pattern = report["pattern"]["incidents"];
  ASSERT_EQ(pattern["outcome"], "pattern") << pattern.dump(2);
  EXPECT_EQ(pattern["finding"]["period"], "1m");
  // Against when the freezes really began: a busy machine may wake the test late.
  double freeze_phase_ms = 0;
  for (const auto& [freeze, thaw] : stalls)
    freeze_phase_ms += static_cast<double>(freeze % 60'000) / kStalls;
  EXPECT_NEAR(pattern["finding"]["phase_ms"].get<double>(), freeze_phase_ms, 1000.0);
  EXPECT_EQ(report["pattern"]["probes"]["web"]["finding"]["period"], "1m");

  std::string table;
  ASSERT_EQ(test::run_command(
                {BLIP_BINARY, "report", "--db", blip.db(), "--since", "1h", "--tz", "Asia/Kolkata"},
                &table),
            0);
  EXPECT_NE(table.find("every 1m"), std::string::npos) << table;
  EXPECT_NE(table.find(" IST "), std::string::npos) << "local times shown with --tz\n" << table;
}

// blip itself frozen (as when its own VM stalls): a blind window, not an outage,
// and no attempt is charged with blip's own stall.
TEST(Daemon, FrozenBlipRecordsABlindWindowNotAnOutage) {
  test::NginxServer nginx;
  TempDir dir;
  // Intervals shorter than the freeze and a timeout shorter still: attempts are due throughout; the
  // slow page (3 s) keeps several in flight when the freeze comes, answered while blip cannot read
  // them.
  Daemon blip(dir, http_config("web", nginx.url("/health"), "100ms", "500ms") +
                       http_config("web-slow", nginx.url("/health"), "700ms", "500ms") +
                       http_config("slow-page", nginx.url("/slow"), "500ms", "4s") +
                       "[[probe]]\nname = \"port\"\ntype = \"tcp\"\naddress = \"127.0.0.1:" +
                       std::to_string(nginx.port()) +
                       "\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\n");
  sleep_for(4s);
  const auto [frozen_ms, continued_ms] = test::freeze_for(blip.process(), 3s);
  sleep_for(1500ms);
  blip.process().signal(SIGTERM);
  ASSERT_EQ(blip.process().wait(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  auto blind = store.blind_windows(0, INT64_MAX);
  ASSERT_EQ(blind.size(), 1U) << blip.log();
  EXPECT_EQ(blind[0].reason, "loop_stall");
  // Against the freeze as it really was (a loaded machine wakes the test's sleep
  // late): the window starts where LoopWatch's next tick was due (at most a
  // 100 ms tick after the freeze) and ends at its first tick after SIGCONT,
  // with 200-300 ms of slack for the signals' delivery and a late loop.
  EXPECT_NEAR(static_cast<double>(blind[0].start_ms), static_cast<double>(frozen_ms), 300.0);
  EXPECT_GE(blind[0].end_ms, continued_ms);
  EXPECT_LE(blind[0].end_ms, continued_ms + 300);
  EXPECT_GE(blind[0].end_ms - blind[0].start_ms, continued_ms - frozen_ms - 100 - 200);
  EXPECT_TRUE(store.outages(0, INT64_MAX).empty());
  for (const char* probe : {"web", "web-slow", "port", "slow-page"}) {
    SCOPED_TRACE(probe);
    const auto samples = store.samples(probe, 0, INT64_MAX);
    ASSERT_GE(samples.size(), 5U);
    const int64_t timeout_us = std::string(probe) == "slow-page" ? 4'000'000 : 500'000;
    for (const Sample& sample : samples) {
      EXPECT_NE(sample.status, Status::down) << "blip's own stall is no timeout: " << sample.detail;
      EXPECT_LE(sample.latency_us, timeout_us) << "blip's own stall is no latency";
    }
    // At most one catch-up attempt after the stall (besides the slot then due), not a burst of the
    // missed ones.
    const int64_t interval = std::string(probe) == "web-slow"    ? 700
                             : std::string(probe) == "slow-page" ? 500
                                                                 : 100;
    for (size_t i = 2; i < samples.size(); ++i) {
      EXPECT_GE(samples[i].sent_ms - samples[i - 2].sent_ms, interval / 2) << "at sample " << i;
    }
  }
  const auto slow = store.samples("slow-page", 0, INT64_MAX);
  EXPECT_GE(std::count_if(slow.begin(), slow.end(),
                          [](const Sample& s) { return s.status == Status::blind; }),
            3)
      << "the attempts in flight across the freeze are marked, not measured";
  const auto rollups = store.rollups("slow-page", 0, INT64_MAX);
  for (const Rollup& rollup : rollups)
    EXPECT_LE(rollup.max_us, 4'000'000) << "nor do they inflate the minute";
}

TEST(Daemon, BadInputExitsTwoWithAClearMessage) {
  TempDir dir;
  dir.write("probes.d/a.toml",
            "[[probe]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\n");
  dir.write("bad.d/a.toml",
            "[[probe]]\nname = \"x\"\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\nintervl = "
            "\"1s\"\n");
  std::string output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "check", "-c", dir.file("probes.d")}, &output), 0)
      << output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "check", "-c", dir.file("bad.d")}, &output), 2);
  EXPECT_EQ(output, dir.file("bad.d/a.toml") + ":5:1: probe \"x\": unknown key \"intervl\"\n");
  EXPECT_EQ(test::run_command(
                {BLIP_BINARY, "run", "-c", dir.file("bad.d"), "--db", dir.file("x.db")}, &output),
            2);
  EXPECT_EQ(test::run_command({BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db",
                               "/nonexistent-dir/blip.db", "--listen", "off"},
                              &output),
            2);
  EXPECT_EQ(output, "cannot open database /nonexistent-dir/blip.db: No such file or directory\n");
  EXPECT_EQ(test::run_command({BLIP_BINARY, "report", "--db", dir.file("missing.db")}, &output), 2);
  EXPECT_NE(output.find("missing.db"), std::string::npos) << output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "report", "--since", "soon"}, &output), 2);
  dir.write("not-a-db", "plain text\n");
  EXPECT_EQ(test::run_command({BLIP_BINARY, "report", "--db", dir.file("not-a-db")}, &output), 2);
  EXPECT_NE(output.find("not-a-db"), std::string::npos) << output;
  { Store empty(dir.file("empty.db"), Store::Mode::read_write); }
  EXPECT_EQ(test::run_command({BLIP_BINARY, "report", "--db", dir.file("empty.db")}, &output), 0)
      << output;
  EXPECT_NE(output.find("No samples in range."), std::string::npos) << output;
  EXPECT_EQ(test::run_command(
                {BLIP_BINARY, "report", "--db", dir.file("empty.db"), "--probe", "nope"}, &output),
            2);
  EXPECT_EQ(output, "--probe: no probe named \"nope\" in " + dir.file("empty.db") + " (known: )\n");
  EXPECT_EQ(
      test::run_command(
          {BLIP_BINARY, "report", "--db", dir.file("empty.db"), "--tz", "Mars/Olympus"}, &output),
      2);
  EXPECT_EQ(test::run_command(
                {BLIP_BINARY, "report", "--db", dir.file("empty.db"), "--period", "5s"}, &output),
            2);
  EXPECT_EQ(test::run_command({BLIP_BINARY, "frobnicate"}, &output), 2);
  EXPECT_EQ(test::run_command({BLIP_BINARY, "once", "-c", dir.file("probes.d")}, &output), 1)
      << output;
  EXPECT_NE(output.find("refused"), std::string::npos) << output;
}

}  // namespace
}  // namespace blip
