// Jobs that report in, through the real daemon: `blip exec` around real
// commands (runs, late, overrun, failed), the ping endpoint's bad input, `blip
// check` on a malformed schedule and a short token, and the report's jobs
// section on a generated history. tests/jobs/job_monitor_test.cpp has the
// monitor's edges on their own.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/iso_time.hpp"
#include "support/jobs.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::at;
using test::job_config;
using test::wait_until;

constexpr const char* kToken = "job-token-7f3a9c2e51d04b86";

std::string job_table(const std::string& name, const std::string& schedule,
                      const std::string& extra) {
  return fmt::format("[[job]]\nname = \"{}\"\n{}\ntoken = \"{}-{}\"\n{}\n\n", name, schedule,
                     kToken, name, extra);
}

std::string blip_exec(const test::Daemon& blip, const std::string& job,
                      const std::vector<std::string>& command, int* status,
                      const std::string& dir) {
  std::vector<std::string> argv{BLIP_BINARY,
                                "exec",
                                job,
                                "-c",
                                dir + "/probes.d",
                                "--listen",
                                fmt::format("127.0.0.1:{}", blip.feed_port()),
                                "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  std::string output;
  *status = test::run_command(argv, &output, 60'000);
  return output;
}

TEST(Jobs, ExecReportsRunsAndLateOverrunAndFailedAreOutages) {
  test::TempDir dir;
  const std::string config =
      job_table("backup", "period = \"1h\"", "max_run = \"2s\"\ngrace = \"1h\"") +
      job_table("heartbeat", "period = \"2s\"", "grace = \"1s\"");
  const int64_t launched_ms = wall_now_ms();
  test::Daemon blip(dir, config);
  ASSERT_TRUE(test::wait_for_port(blip.feed_port()));

  // A run around a real sleep: stored with its status and duration.
  int status = -1;
  blip_exec(blip, "backup", {"sleep", "1"}, &status, dir.path());
  EXPECT_EQ(status, 0);
  // The command's exit status passes through, its output goes out and into the run.
  const std::string out =
      blip_exec(blip, "backup", {"sh", "-c", "echo dumped 41 tables; exit 3"}, &status, dir.path());
  EXPECT_EQ(status, 3);
  EXPECT_NE(out.find("dumped 41 tables"), std::string::npos) << out;
  ASSERT_TRUE(wait_until(
      [&] { return blip.log().find("outage: opened probe=backup") != std::string::npos; }, 5s))
      << blip.log();
  blip_exec(blip, "backup", {"true"}, &status, dir.path());  // a success ends the failure

  // Killed past max_run: an overrun from start + max_run, ended by the kill's status.
  test::ChildProcess long_run({BLIP_BINARY, "exec", "backup", "-c", dir.path() + "/probes.d",
                               "--listen", fmt::format("127.0.0.1:{}", blip.feed_port()), "--",
                               "sleep", "30"});
  ASSERT_TRUE(
      wait_until([&] { return blip.log().find("error=overrunning") != std::string::npos; }, 8s))
      << blip.log();
  // Only this wrapper's child: a pattern over every process would also kill another test's `sleep
  // 30`.
  ASSERT_EQ(
      test::run_command({"pkill", "-KILL", "-P", std::to_string(long_run.pid()), "-x", "sleep"}),
      0);
  EXPECT_EQ(long_run.wait(10'000), 128 + SIGKILL);
  ASSERT_TRUE(wait_until([&] { return blip.log().find("exit=137") != std::string::npos; }, 5s))
      << blip.log();
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  const auto runs = store.job_runs("backup", 0, INT64_MAX, 10);  // newest first
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[3].exit_status, 0);
  EXPECT_GE(*runs[3].end_ms - *runs[3].start_ms, 950);
  EXPECT_LT(*runs[3].end_ms - *runs[3].start_ms, 5000);
  EXPECT_EQ(runs[2].exit_status, 3);
  EXPECT_NE(runs[2].output.find("dumped 41 tables"), std::string::npos);
  EXPECT_EQ(runs[0].exit_status, 128 + SIGKILL);
  const auto outages = store.outages(0, INT64_MAX, "backup");
  ASSERT_EQ(outages.size(), 2u);
  EXPECT_EQ(outages[0].error, ErrorClass::failed);
  EXPECT_EQ(outages[1].error, ErrorClass::overrunning);
  EXPECT_EQ(outages[1].start_ms, *runs[0].start_ms + 2000)
      << "the overrun begins at the max_run deadline";
  EXPECT_FALSE(outages[1].end_ms && outages[1].end_reason == "recovered")
      << "a killed run is still a failure";

  // The heartbeat never reported: late from when blip began to watch plus period and grace.
  const auto late = store.outages(0, INT64_MAX, "heartbeat");
  ASSERT_FALSE(late.empty());
  EXPECT_EQ(late[0].error, ErrorClass::late);
  EXPECT_GE(late[0].start_ms, launched_ms + 3000);
  EXPECT_LT(late[0].start_ms, launched_ms + 3000 + 3000)
      << "blip starts within a few seconds of launch";
  EXPECT_EQ(blip.log().find(kToken), std::string::npos) << "a token reached the log";
}

TEST(Jobs, PingEndpointRefusesBadInputAndABlipThatIsDownNeverFailsTheJob) {
  test::TempDir dir;
  test::Daemon blip(
      dir, job_table("backup", "schedule = \"0 3 * * *\"\ntime_zone = \"Europe/Berlin\"", ""));
  ASSERT_TRUE(test::wait_for_port(blip.feed_port()));
  const std::string base = fmt::format("http://127.0.0.1:{}", blip.feed_port());
  const std::string token = fmt::format("{}-backup", kToken);
  EXPECT_EQ(test::http_request(base + "/ping/" + token).status, 200);
  // The private face answers no page on another origin (no CORS), and the public face takes no
  // check-ins.
  EXPECT_EQ(
      test::http_request(base + "/ping/" + token + "/start").header("access-control-allow-origin"),
      "");
  EXPECT_EQ(test::http_request(blip.public_url("/ping/" + token + "/start")).status, 404);
  EXPECT_EQ(test::http_request(base + "/ping/" + token + "/0", "POST").status, 200);
  EXPECT_EQ(test::http_request(base + "/ping/not-a-token-of-any-job").status, 404);
  EXPECT_EQ(test::http_request(base + "/ping/" + token + "/256").status, 404);
  EXPECT_EQ(test::http_request(base + "/ping/" + token, "DELETE").status, 405);
  // A 2 MiB body is refused; the request does not change the job.
  dir.write("big", std::string(2 << 20, 'x'));
  std::string curl_out;
  test::run_command({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                     "@" + dir.file("big"), base + "/ping/" + token + "/1"},
                    &curl_out);
  EXPECT_EQ(curl_out, "413");
  // A burst beyond the per-job rate is told to slow down.
  int limited = 0;
  for (int i = 0; i < 60; ++i) limited += test::http_request(base + "/ping/" + token).status == 429;
  EXPECT_GT(limited, 0);
  const std::string feed = test::http_request(base + "/api/v2/summary.json").body +
                           test::http_request(base + "/metrics").body;
  EXPECT_EQ(feed.find(kToken), std::string::npos);
  EXPECT_NE(feed.find("blip_job_running"), std::string::npos);
  ASSERT_EQ(blip.stop(), 0);
  EXPECT_EQ(blip.log().find(kToken), std::string::npos) << "a token reached the log";
  Store store(blip.db(), Store::Mode::read_only);
  EXPECT_TRUE(store.outages(0, INT64_MAX, "backup").empty()) << "no ping failed the job";

  // blip gone: the wrapped job still runs and keeps its status; the wrapper says why on stderr,
  // quickly.
  const int64_t began = mono_now_us();
  std::string output;
  const int status = test::run_command(
      {BLIP_BINARY, "exec", "backup", "-c", dir.path() + "/probes.d", "--listen",
       fmt::format("127.0.0.1:{}", test::free_port()), "--", "sh", "-c", "exit 4"},
      &output);
  EXPECT_EQ(status, 4);
  EXPECT_NE(output.find("not reached"), std::string::npos) << output;
  EXPECT_LT(mono_now_us() - began, 8'000'000);
  EXPECT_EQ(output.find(kToken), std::string::npos);
}

TEST(Jobs, CheckNamesAMalformedScheduleAndAShortToken) {
  test::TempDir dir;
  dir.write("probes.d/jobs.toml",
            "[[job]]\nname = \"dump\"\nschedule = \"0 25 * * *\"\ntoken = \"short\"\n");
  std::string output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "check", "-c", dir.path() + "/probes.d"}, &output), 2);
  EXPECT_NE(output.find("jobs.toml:3:12: schedule:"), std::string::npos) << output;
  EXPECT_NE(output.find("hour"), std::string::npos) << output;
  EXPECT_NE(output.find("jobs.toml:4:9: token: must be at least 16 characters"), std::string::npos)
      << output;
}

TEST(Jobs, ReportForecastsTheOverrunAndNamesOutagesDuringRuns) {
  test::TempDir dir;
  const std::string db = dir.file("history.db");
  const int64_t day = 86'400'000;
  const int64_t last_start = at("2026-11-30T03:00:00Z");
  {
    Store store(db, Store::Mode::read_write);
    JobConfig job = job_config({}, kToken);
    job.name = "db-snapshot";
    auto& settings = job.settings;
    settings.schedule = "0 3 * * *";
    settings.max_run_ms = 3 * 3'600'000;
    const int64_t job_id = store.register_probe(job);
    ProbeConfig web;
    web.name = "web-health";
    web.type = "http";
    web.settings = HttpSettings{};
    const int64_t web_id = store.register_probe(web);
    // 30 nightly runs growing linearly from 41 min to 2 h 10 min.
    for (int i = 0; i < 30; ++i) {
      JobRunRow run;
      run.id = i + 1;
      run.probe_id = job_id;
      run.start_ms = last_start - (29 - i) * day;
      const int64_t duration = 41 * 60'000 + (130 - 41) * 60'000 * i / 29;
      run.end_ms = *run.start_ms + duration;
      run.exit_status = 0;
      store.write_job_run(run);
    }
    // Four of five web outages begin inside the last runs.
    for (int i = 0; i < 5; ++i) {
      OutageRow outage;
      outage.id = i + 1;
      outage.probe_id = web_id;
      outage.start_ms = i < 4 ? last_start - i * day + 20 * 60'000 : last_start - 12 * 3'600'000;
      outage.end_ms = outage.start_ms + 45'000;
      outage.error = ErrorClass::timeout;
      outage.end_reason = "recovered";
      store.write_outage(outage);
    }
  }
  std::string output;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--db", db, "--from", "2026-11-29T00:00:00Z",
                               "--to", "2026-12-01T00:00:00Z", "--format", "json"},
                              &output),
            0)
      << output;
  const auto report = nlohmann::json::parse(output.substr(output.find('{')));
  ASSERT_EQ(report["jobs"].size(), 1u);
  const auto& trend = report["jobs"][0]["trend"];
  // The line reaches 3 h where 41 + 89/29 min per day · d = 180: d = 45.3 days after the first run.
  const double days = (180.0 - 41.0) / (89.0 / 29.0);
  const int64_t expected =
      last_start - 29 * day + static_cast<int64_t>(days * static_cast<double>(day));
  int64_t forecast = 0;
  ASSERT_TRUE(parse_iso8601_ms(trend["exceeds_max_run_at"].get<std::string>(), forecast))
      << trend.dump();
  EXPECT_LT(std::abs(forecast - expected), day) << trend.dump();
  EXPECT_NE(trend["text"].get<std::string>().find("exceeds max_run"), std::string::npos)
      << trend.dump();
  ASSERT_EQ(report["job_overlaps"].size(), 1u) << report["job_overlaps"].dump();
  EXPECT_EQ(report["job_overlaps"][0]["outages_during_runs"], 2)
      << "two of the window's three began in runs";

  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--db", db, "--from", "2026-11-01T00:00:00Z",
                               "--to", "2026-12-01T00:00:00Z"},
                              &output),
            0);
  EXPECT_NE(output.find("Jobs (1)"), std::string::npos) << output;
  EXPECT_NE(output.find("4 of 5 web-health outages began while `db-snapshot` was running"),
            std::string::npos)
      << output;
}

}  // namespace
}  // namespace blip
