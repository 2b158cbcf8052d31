// A history backfilled into Prometheus: `blip export --format openmetrics` of a generated day,
// loaded by `promtool tsdb create-blocks-from openmetrics`, answers `blip report --prometheus`
// with the outages `blip report --db` finds in the database itself.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "blip/core/clock.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "blip/store/store.hpp"
#include "support/engines.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kEvery = 1'000;  // 1 Hz: the day's OpenMetrics stays near 40 MB

// A day of three probes through blip's own recorder: an hourly 40 s stall of the first two
// (the second 0.8 s later) and random outages of 20-120 s, about three a probe.
void generate_day(const std::string& path, int64_t start_ms, int64_t end_ms) {
  std::vector<ProbeConfig> configs(3);
  for (size_t i = 0; i < configs.size(); ++i) {
    configs[i].name = fmt::format("probe-{}", i);
    configs[i].type = i == 0 ? "postgres" : "http";
    configs[i].interval_ms = kEvery;
    configs[i].target_display = "synthetic";
  }
  Store store(path, Store::Mode::read_write);
  store.set_vantage("backfilled");
  SampleRecorder recorder(store, configs, /*log_transitions=*/false);
  std::mt19937_64 random(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<int64_t> random_until(configs.size(), 0);
  for (int64_t t = start_ms; t < end_ms; t += kEvery) {
    for (size_t i = 0; i < configs.size(); ++i) {
      const int64_t into_hour = t % kHour;
      const bool hourly = i < 2 && into_hour >= 5'000 + static_cast<int64_t>(i) * 800 &&
                          into_hour < 45'000 + static_cast<int64_t>(i) * 800;
      if (random_until[i] < t && unit(random) < 3.0 * kEvery / 86'400'000.0)
        random_until[i] = t + 20'000 + static_cast<int64_t>(unit(random) * 100'000);
      Sample sample;
      sample.sent_ms = t + static_cast<int64_t>(i) * 100;
      sample.latency_us = 3'000;
      if (hourly || random_until[i] >= t) {
        sample.status = Status::down;
        sample.error = ErrorClass::timeout;
        sample.latency_us = 900'000;
      }
      recorder.record(i, sample);
    }
    if (t % 60'000 == 0) store.flush(t);
  }
  store.flush(end_ms);
}

// (probe, start, end) of every outage in a report's JSON (`quorum` ones only, in a fleet's).
std::vector<std::tuple<std::string, std::string, std::string>> outages_of(
    const std::string& json_text) {
  const auto report = nlohmann::json::parse(json_text);
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  for (const auto& outage : report.at("outages")) {
    if (outage.contains("quorum") && !outage.at("quorum").get<bool>()) continue;
    out.emplace_back(outage.at("probe").get<std::string>(), outage.at("start").get<std::string>(),
                     outage.at("end").is_null() ? "" : outage.at("end").get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Backfill, PrometheusOnPromtoolBlocksAnswersTheReportAsTheDatabaseDoes) {
  if (!test::installed("promtool") || !test::installed("prometheus"))
    GTEST_SKIP() << "promtool or prometheus is not installed (Debian's prometheus)";
  test::TempDir dir;
  // A whole day that ended at least an hour ago, on hour boundaries.
  const int64_t end_ms = (wall_now_ms() / kHour - 1) * kHour;
  const int64_t start_ms = end_ms - 24 * kHour;
  generate_day(dir.file("blip.db"), start_ms, end_ms);
  const std::string from = format_iso8601_ms(start_ms);
  const std::string to = format_iso8601_ms(end_ms);

  std::string output;
  ASSERT_EQ(test::run_command(
                {"/bin/sh", "-c",
                 fmt::format("'{}' export --db '{}' --from {} --to {} --format "
                             "openmetrics > '{}'",
                             BLIP_BINARY, dir.file("blip.db"), from, to, dir.file("day.om"))},
                &output, 300'000),
            0)
      << output;
  ASSERT_EQ(test::run_command({"promtool", "tsdb", "create-blocks-from", "openmetrics",
                               "--max-block-duration=24h", dir.file("day.om"), dir.file("tsdb")},
                              &output, 300'000),
            0)
      << output;

  test::Engine prometheus(
      {"prometheus",
       {"--config.file={dir}/prometheus.yml", "--storage.tsdb.path=" + dir.file("tsdb"),
        "--storage.tsdb.retention.time=10y", "--web.listen-address=127.0.0.1:{port}"},
       "/-/ready",
       {{"prometheus.yml", "global:\n  scrape_interval: 1m\n"}}});
  std::string from_db;
  std::string from_prometheus;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--db", dir.file("blip.db"), "--from", from,
                               "--to", to, "--format", "json"},
                              &from_db, 120'000),
            0)
      << from_db;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "report", "--prometheus", prometheus.url(""), "--from",
                               from, "--to", to, "--format", "json"},
                              &from_prometheus, 120'000),
            0)
      << from_prometheus;
  const auto expected = outages_of(from_db);
  // 24 hourly stalls of two probes, and the random ones.
  ASSERT_GE(expected.size(), 48u);
  EXPECT_EQ(outages_of(from_prometheus), expected);
}

}  // namespace
}  // namespace blip
