// blip's remote-write against the real engines on loopback (issue 20): VictoriaMetrics stopped
// for 30 s and blip killed with a backlog, Prometheus as a receiver (and what it does with a
// backlog older than its head block), vmagent replicating to two VictoriaMetrics nodes with one
// of them down. Each time the engine ends with exactly what blip stored.
//
// What "everything blip stored" means while blip runs (the comparisons are made with blip
// running, not after a stop): the samples stored up to `to_ms`, 5 s before the comparison
// starts, less each probe's last confirm+1 samples, which the sender holds back until later ones
// exist (their outage state is not settled yet; for a probe blip no longer runs, for good). The
// comparison is repeated (bounded) until the engine holds all of it, and the expectation is
// re-read from the store each time, so a row written late (a blind window) is waited for too.
// Points compared: blip_sample_up (time and value), blip_sample_duration_seconds (time),
// blip_outage (time and value), blip_minute_samples (time and value, the minutes a later shipped
// sample closed) and blip_blind (time and value).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/remote/series.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/engines.hpp"
#include "support/http_client.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;
using Points = std::vector<std::pair<int64_t, double>>;

constexpr int64_t kMinuteMs = 60'000;
// Every query reads this far back from its end: the whole run, and a history 90 minutes old.
constexpr const char* kRange = "3h";

int64_t minute_of(int64_t ms) { return ms - ms % kMinuteMs; }

std::string remote_write(const std::string& url) {
  return fmt::format("[[remote_write]]\nurl = \"{}\"\ntimeout = \"5s\"\n", url);
}

// One series the engine should hold: its selector, and its points up to `to_ms`.
struct Expected {
  std::string selector;
  int64_t to_ms = 0;
  Points points;
  bool values = true;  // compare values too (latencies are compared by time only)
};

// What blip shipped or will ship of everything it stored up to `to_ms`, read from its database.
// A probe's last confirm+1 samples are left out (the sender holds them back until later ones are
// stored: for a probe blip no longer runs, for good), and so is what they would close.
std::vector<Expected> expected_series(const std::string& db, const std::string& vantage,
                                      int64_t to_ms) {
  const Store store(db, Store::Mode::read_only);
  std::vector<Expected> out;
  for (const StoredComponent& probe : store.components()) {
    const std::string labels =
        fmt::format("probe=\"{}\",type=\"{}\",vantage=\"{}\"", probe.name, probe.type, vantage);
    std::vector<Sample> samples = store.samples(probe.name, 0, INT64_MAX, false);
    samples.resize(samples.size() - std::min(samples.size(), settle_samples(probe)));
    while (!samples.empty() && samples.back().sent_ms > to_ms) samples.pop_back();
    const int64_t shipped_to = samples.empty() ? 0 : samples.back().sent_ms;
    Expected up{"blip_sample_up{" + labels + "}", shipped_to, {}, true};
    Expected duration{"blip_sample_duration_seconds{" + labels + "}", shipped_to, {}, false};
    for (const Sample& sample : samples) {
      if (sample.status == Status::blind) continue;  // neither up nor down: no point
      up.points.emplace_back(sample.sent_ms, sample.status == Status::down ? 0.0 : 1.0);
      duration.points.emplace_back(sample.sent_ms, static_cast<double>(sample.latency_us) / 1e6);
    }
    // 1 at each sample inside an outage, 0 at each outage's end.
    const auto outages = store.outages(0, INT64_MAX, probe.name, OutageKind::outage);
    Points outage_points;
    for (const OutageRecord& outage : outages) {
      if (outage.end_ms && *outage.end_ms <= shipped_to)
        outage_points.emplace_back(*outage.end_ms, 0);
    }
    for (const Sample& sample : samples) {
      for (const OutageRecord& outage : outages) {
        if (outage.start_ms <= sample.sent_ms &&
            (!outage.end_ms || sample.sent_ms < *outage.end_ms))
          outage_points.emplace_back(sample.sent_ms, 1);
      }
    }
    std::sort(outage_points.begin(), outage_points.end());
    Expected outage{"blip_outage{" + labels + "}", shipped_to, {}, true};
    for (const auto& point : outage_points) {
      if (outage.points.empty() || outage.points.back().first < point.first)
        outage.points.push_back(point);
    }
    // Each minute's count at its end, for the minutes a later shipped sample closed.
    Expected minutes{"blip_minute_samples{" + labels + "}", minute_of(shipped_to), {}, true};
    for (const Rollup& rollup : store.rollups(probe.name, 0, minute_of(shipped_to))) {
      if (rollup.minute_ms + kMinuteMs <= minute_of(shipped_to))
        minutes.points.emplace_back(rollup.minute_ms + kMinuteMs, rollup.count);
    }
    for (Expected* series : {&up, &duration, &outage, &minutes}) out.push_back(std::move(*series));
  }
  // blip_blind{reason, vantage}: 1 at a window's start and each minute in it, 0 at its end.
  std::map<std::string, Points> blind;
  for (const BlindWindow& window : store.blind_windows(0, INT64_MAX)) {
    Points& points = blind[window.reason];
    for (int64_t ms = window.start_ms; ms < window.end_ms; ms += kMinuteMs)
      points.emplace_back(ms, 1);
    points.emplace_back(window.end_ms, 0);
  }
  for (auto& [reason, points] : blind) {
    std::sort(points.begin(), points.end());
    Points kept;
    for (const auto& point : points) {
      if (point.first <= to_ms && (kept.empty() || kept.back().first < point.first))
        kept.push_back(point);
    }
    out.push_back(
        {fmt::format("blip_blind{{reason=\"{}\",vantage=\"{}\"}}", reason, vantage), to_ms, kept});
  }
  return out;
}

std::string at(int64_t ms) { return format_iso8601_ms(ms); }

// "" when the engine holds exactly the expected points of every series, or what differs.
std::string difference(const std::string& engine_url, const std::vector<Expected>& expected) {
  std::string out;
  for (const Expected& series : expected) {
    Points held;
    try {
      for (const auto& queried :
           test::query_points(engine_url, series.selector, kRange, series.to_ms))
        held.insert(held.end(), queried.points.begin(), queried.points.end());
    } catch (const std::exception& error) {
      return error.what();
    }
    std::sort(held.begin(), held.end());
    std::set<int64_t> stored_times;
    std::set<int64_t> held_times;
    for (const auto& point : series.points) stored_times.insert(point.first);
    for (const auto& point : held) held_times.insert(point.first);
    std::vector<int64_t> missing;
    std::vector<int64_t> extra;
    std::set_difference(stored_times.begin(), stored_times.end(), held_times.begin(),
                        held_times.end(), std::back_inserter(missing));
    std::set_difference(held_times.begin(), held_times.end(), stored_times.begin(),
                        stored_times.end(), std::back_inserter(extra));
    std::string problem;
    if (held.size() != held_times.size()) problem += " (a time held twice)";
    if (!missing.empty()) {
      problem += fmt::format(" missing {} from {} to {}", missing.size(), at(missing.front()),
                             at(missing.back()));
    }
    if (!extra.empty()) {
      problem +=
          fmt::format(" extra {} from {} to {}", extra.size(), at(extra.front()), at(extra.back()));
    }
    if (problem.empty() && series.values) {
      for (size_t i = 0; i < held.size(); ++i) {
        if (held[i].second != series.points[i].second) {
          problem += fmt::format(" {} at {} where blip stored {}", held[i].second,
                                 at(held[i].first), series.points[i].second);
          break;
        }
      }
    }
    if (!problem.empty()) {
      out += fmt::format("{} up to {}: stored {}, engine {};{}\n", series.selector,
                         at(series.to_ms), series.points.size(), held.size(), problem);
    }
  }
  return out;
}

// Waits up to `limit` for the engine to hold everything blip stored in `db` up to `to_ms`.
// `held`, if given, gets what was compared.
testing::AssertionResult holds_everything(const test::Engine& engine, const std::string& db,
                                          const std::string& vantage, int64_t to_ms,
                                          std::chrono::seconds limit,
                                          std::vector<Expected>* held = nullptr) {
  std::string last;
  std::vector<Expected> expected;
  const bool same = wait_until(
      [&] {
        expected = expected_series(db, vantage, to_ms);
        last = difference(engine.url(""), expected);
        return last.empty();
      },
      limit, 500ms);
  if (held) *held = expected;
  if (same) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "after " << limit.count() << " s the engine on port "
                                     << engine.port() << " differs from what blip stored:\n"
                                     << last;
}

// The points compared of the series whose selector starts with `prefix`.
size_t points(const std::vector<Expected>& expected, const std::string& prefix) {
  size_t count = 0;
  for (const Expected& series : expected) {
    if (series.selector.starts_with(prefix)) count += series.points.size();
  }
  return count;
}

double shipped(const test::Daemon& blip, const test::Engine& engine, const std::string& result) {
  return blip.metric(fmt::format("blip_remote_write_samples_total{{url=\"{}\",result=\"{}\"}}",
                                 engine.write_url(), result));
}

// Waits until the engine holds at least `count` blip_sample_up points of (vantage, probe).
bool receives(const test::Engine& engine, const std::string& vantage, const std::string& probe,
              size_t count, std::chrono::seconds limit) {
  return wait_until(
      [&] {
        try {
          const auto series = test::query_points(
              engine.url(""),
              fmt::format("blip_sample_up{{vantage=\"{}\",probe=\"{}\"}}", vantage, probe), kRange,
              wall_now_ms());
          return !series.empty() && series.front().points.size() >= count;
        } catch (const std::exception&) {
          return false;
        }
      },
      limit, 250ms);
}

#define REQUIRE_ENGINE(binary)  \
  if (!test::installed(binary)) \
  GTEST_SKIP() << binary " is not installed (scripts/install-deps installs it; CI has it)"

int64_t seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
      .count();
}

// blip (vantage a) probes nginx and VictoriaMetrics' own /health every 250 ms and ships to it.
// VictoriaMetrics stops (SIGTERM) for 30 s and comes back on the same data: it ends with every
// stored sample (the samples of its own probe's outage among them). Then blip is killed (-9)
// while VictoriaMetrics is down and it has a backlog, and starts again on the same database:
// again everything.
TEST(RemoteWriteEngines, VictoriaMetricsEndsWithEverySampleAcrossItsStopAndBlipsKill) {
  REQUIRE_ENGINE("victoria-metrics");
  const auto started = std::chrono::steady_clock::now();
  test::NginxServer nginx;
  test::Engine victoria(test::victoria_metrics());
  test::TempDir dir;
  const std::string config = test::http_config("web", nginx.url("/health"), "250ms", "1s") +
                             test::http_config("engine", victoria.url("/health"), "250ms", "1s") +
                             remote_write(victoria.write_url());
  const std::vector<std::string> args{"--vantage", "a"};
  auto blip = std::make_unique<test::Daemon>(dir, config, args);
  const std::string db = blip->db();
  ASSERT_TRUE(receives(victoria, "a", "web", 8, 20s)) << blip->log() << victoria.log();

  // Down for 30 s: blip keeps probing, the sender retries (backing off), and /metrics shows the
  // backlog growing.
  ASSERT_EQ(victoria.stop(), 0) << victoria.log();
  std::this_thread::sleep_for(25s);
  EXPECT_GE(blip->metric("blip_remote_write_lag_seconds"), 15.0)
      << "the lag does not show a receiver down for 25 s";
  EXPECT_GE(blip->metric("blip_remote_write_pending_samples"), 80.0)
      << "the backlog of two probes at 4 Hz for over 15 s (counted when a retry fails)";
  std::this_thread::sleep_for(5s);
  victoria.start();
  std::vector<Expected> held;
  // The sender's backoff reaches 32 s in a 30 s outage: up to that long before it tries again.
  EXPECT_TRUE(holds_everything(victoria, db, "a", wall_now_ms() - 5'000, 75s, &held))
      << blip->log();
  EXPECT_GE(points(held, "blip_sample_up{"), 2U * 4 * 30) << "two probes at 4 Hz for over 30 s";
  EXPECT_GE(points(held, "blip_outage{probe=\"engine\""), 100U) << "its own /health down 30 s";
  EXPECT_GT(shipped(*blip, victoria, "retried"), 0.0);
  EXPECT_EQ(shipped(*blip, victoria, "rejected"), 0.0);
  EXPECT_LT(blip->metric("blip_remote_write_lag_seconds"), 10.0);
  const size_t before_kill = points(held, "blip_sample_up{");

  // Down again; blip builds a backlog and is killed with it, then starts on the same database
  // while the engine is still down, which comes back a few seconds later.
  ASSERT_EQ(victoria.stop(), 0) << victoria.log();
  std::this_thread::sleep_for(4s);
  blip->process().signal(SIGKILL);
  blip->process().wait();
  blip.reset();
  blip = std::make_unique<test::Daemon>(dir, config, args);
  std::this_thread::sleep_for(4s);
  victoria.start();
  std::this_thread::sleep_for(6s);  // what is compared reaches past blip's restart
  EXPECT_TRUE(holds_everything(victoria, db, "a", wall_now_ms() - 5'000, 60s, &held))
      << blip->log();
  EXPECT_GE(points(held, "blip_sample_up{"), before_kill + 2 * 4 * 8);
  EXPECT_GE(points(held, "blip_blind{reason=\"not_running\""), 2U) << "blip's own down time";
  EXPECT_EQ(shipped(*blip, victoria, "rejected"), 0.0);
  EXPECT_EQ(blip->stop(), 0);
  std::cout << "VictoriaMetrics holds every one of " << points(held, "blip_sample_up{")
            << " blip_sample_up samples stored; the test took " << seconds_since(started) << " s\n";
}

// The same against Prometheus' remote-write receiver, stopped for 8 s. A backlog of seconds to a
// minute is inside its head block, which takes it in order. A backlog older than about an hour
// is not: Prometheus answers 400 to the whole request ("out of bounds"), and blip logs it, counts
// its points as rejected in /metrics and drops the batch, unless the operator has set
// storage.tsdb.out_of_order_time_window (the two tests after this one).
TEST(RemoteWriteEngines, PrometheusEndsWithEverySampleAcrossAShortStop) {
  REQUIRE_ENGINE("prometheus");
  const auto started = std::chrono::steady_clock::now();
  test::NginxServer nginx;
  test::Engine prometheus(test::prometheus_receiver());
  test::TempDir dir;
  const std::string config =
      test::http_config("web", nginx.url("/health"), "250ms", "1s") +
      test::http_config("engine", prometheus.url("/-/ready"), "250ms", "1s") +
      remote_write(prometheus.write_url());
  test::Daemon blip(dir, config, {"--vantage", "a"});
  ASSERT_TRUE(receives(prometheus, "a", "web", 8, 20s)) << blip.log() << prometheus.log();

  ASSERT_EQ(prometheus.stop(), 0) << prometheus.log();
  std::this_thread::sleep_for(8s);
  prometheus.start();
  std::this_thread::sleep_for(7s);  // what is compared reaches past its probe's outage
  std::vector<Expected> held;
  EXPECT_TRUE(holds_everything(prometheus, blip.db(), "a", wall_now_ms() - 5'000, 60s, &held))
      << blip.log();
  EXPECT_GE(points(held, "blip_outage{probe=\"engine\""), 20U) << "its own readiness down 8 s";
  EXPECT_GT(shipped(blip, prometheus, "retried"), 0.0);
  EXPECT_EQ(shipped(blip, prometheus, "rejected"), 0.0);
  EXPECT_EQ(blip.stop(), 0);
  std::cout << "Prometheus holds every one of " << points(held, "blip_sample_up{")
            << " blip_sample_up samples stored; the test took " << seconds_since(started) << " s\n";
}

// A store whose history (probe "history", every second for 5 minutes) ended 85 minutes ago, as
// if blip had been stopped since then with its backlog, shipped by `blip run` to a Prometheus that
// already has recent samples (it scrapes itself each second, so its head block reaches now). The
// store's cursors for that Prometheus stand just before the history, as if blip had shipped to it
// until then: an endpoint new to a store starts only an hour back (docs/fleet.md).
struct OldBacklog {
  static constexpr int64_t kSamples = 300;
  explicit OldBacklog(const std::string& prometheus_yaml)
      : prometheus(
            test::prometheus_receiver("scrape_configs:\n  - job_name: self\n    static_configs:\n"
                                      "      - targets: ['127.0.0.1:{port}']\n" +
                                      prometheus_yaml)) {
    const int64_t from_ms = wall_now_ms() - 90 * kMinuteMs;
    Store store(dir.file("blip.db"), Store::Mode::read_write);
    ProbeConfig history;
    history.name = "history";
    history.type = "tcp";
    history.target_display = "127.0.0.1:1";
    history.interval_ms = 1000;
    const int64_t id = store.register_probe(history);
    // Down for 10 s from the 100th sample: one outage.
    const auto at = [&](int64_t i) { return from_ms + i * 1000; };
    for (int64_t i = 0; i < kSamples; ++i) {
      Sample sample;
      sample.sent_ms = at(i);
      const bool down = i >= 100 && i < 110;
      sample.status = down ? Status::down : Status::up;
      sample.error = down ? ErrorClass::refused : ErrorClass::none;
      sample.latency_us = 1000 + i;
      store.add_sample(id, sample);
      if (i % 60 == 59) store.flush(sample.sent_ms);
    }
    store.write_incident({1, at(100), at(110)});
    store.write_outage({1, id, OutageKind::outage, 1, at(100), at(110), ErrorClass::refused, "", 10,
                        "recovered", false});
    store.flush(at(kSamples));
    WriteBatch cursors;
    cursors.ship_cursors = {{prometheus.write_url(), "history", from_ms - 1},
                            {prometheus.write_url(), "", from_ms - 1}};
    cursors.alive_ms = at(kSamples);  // every write sets "last known alive"; flush's
    store.write(cursors);
  }
  // Waits until Prometheus has scraped itself, then starts blip on the store.
  void run_blip() {
    ASSERT_TRUE(wait_until(
        [&] {
          try {
            return !test::query_points(prometheus.url(""), "up", "1m", wall_now_ms()).empty();
          } catch (const std::exception&) {
            return false;
          }
        },
        20s, 250ms))
        << prometheus.log();
    blip = std::make_unique<test::Daemon>(
        dir,
        test::http_config("web", nginx.url("/health"), "250ms", "1s") +
            remote_write(prometheus.write_url()),
        std::vector<std::string>{"--vantage", "a"});
  }
  test::NginxServer nginx;
  test::Engine prometheus;
  test::TempDir dir;
  std::unique_ptr<test::Daemon> blip;
};

// Without out_of_order_time_window: the request holding the old backlog is refused with 400,
// blip logs it (naming the setting), counts its points as rejected, drops it and goes on.
TEST(RemoteWriteEngines, PrometheusRefusesABacklogOlderThanItsHeadAndBlipCountsItRejected) {
  REQUIRE_ENGINE("prometheus");
  const auto started = std::chrono::steady_clock::now();
  OldBacklog backlog("");
  backlog.run_blip();
  test::Daemon& blip = *backlog.blip;
  // Up and duration of each history sample blip ships (all but the 3 it holds back).
  const double history_points = 2.0 * (OldBacklog::kSamples - 3);
  EXPECT_TRUE(wait_until(
      [&] { return shipped(blip, backlog.prometheus, "rejected") >= history_points; }, 20s))
      << blip.log();
  EXPECT_NE(blip.log().find("remote_write: rejected endpoint=" + backlog.prometheus.write_url() +
                            " status=400"),
            std::string::npos)
      << blip.log();
  EXPECT_NE(blip.log().find("out_of_order_time_window"), std::string::npos);
  // It goes on with what comes after: the live samples arrive; the history never does.
  EXPECT_TRUE(receives(backlog.prometheus, "a", "web", 8, 20s)) << blip.log();
  EXPECT_TRUE(test::query_points(backlog.prometheus.url(""), "blip_sample_up{probe=\"history\"}",
                                 kRange, wall_now_ms())
                  .empty());
  std::cout << "rejected " << shipped(blip, backlog.prometheus, "rejected")
            << " points of a backlog 90 minutes old; the test took " << seconds_since(started)
            << " s\n";
  EXPECT_EQ(blip.stop(), 0);
}

// With out_of_order_time_window: 2h, the same backlog is taken: Prometheus ends with everything
// blip stored, the history and the live samples after it.
TEST(RemoteWriteEngines, PrometheusWithAnOutOfOrderWindowTakesABacklog90MinutesOld) {
  REQUIRE_ENGINE("prometheus");
  const auto started = std::chrono::steady_clock::now();
  OldBacklog backlog("storage:\n  tsdb:\n    out_of_order_time_window: 2h\n");
  backlog.run_blip();
  test::Daemon& blip = *backlog.blip;
  ASSERT_TRUE(receives(backlog.prometheus, "a", "web", 8, 20s)) << blip.log();
  std::this_thread::sleep_for(6s);  // what is compared reaches into the live samples
  std::vector<Expected> held;
  EXPECT_TRUE(
      holds_everything(backlog.prometheus, blip.db(), "a", wall_now_ms() - 5'000, 30s, &held))
      << blip.log();
  EXPECT_EQ(points(held, "blip_sample_up{probe=\"history\""),
            static_cast<size_t>(OldBacklog::kSamples - 3));
  EXPECT_EQ(points(held, "blip_outage{probe=\"history\""), 11U) << "10 samples and the end";
  EXPECT_GE(points(held, "blip_blind{reason=\"not_running\""), 80U) << "85 minutes not running";
  EXPECT_EQ(shipped(blip, backlog.prometheus, "rejected"), 0.0);
  EXPECT_EQ(blip.stop(), 0);
  std::cout << "Prometheus holds every one of " << points(held, "blip_sample_up{")
            << " blip_sample_up samples stored; the test took " << seconds_since(started) << " s\n";
}

// vmagent replicates what blip writes to two VictoriaMetrics nodes, each from its own on-disk
// queue. Node 2 is stopped (SIGTERM) for 15 s and comes back: both end with every sample, and
// blip, whose requests vmagent took all along, never had to retry.
TEST(RemoteWriteEngines, VmagentReplicatesEverySampleToTwoNodesWhileOneIsDown) {
  REQUIRE_ENGINE("vmagent");
  REQUIRE_ENGINE("victoria-metrics");
  const auto started = std::chrono::steady_clock::now();
  test::NginxServer nginx;
  test::Engine node1(test::victoria_metrics());
  test::Engine node2(test::victoria_metrics());
  test::Engine agent(test::vmagent({node1.write_url(), node2.write_url()}));
  test::TempDir dir;
  test::Daemon blip(dir,
                    test::http_config("web", nginx.url("/health"), "250ms", "1s") +
                        test::http_config("node2", node2.url("/health"), "250ms", "1s") +
                        remote_write(agent.write_url()),
                    {"--vantage", "a"});
  ASSERT_TRUE(receives(node2, "a", "web", 8, 30s)) << blip.log() << agent.log();

  ASSERT_EQ(node2.stop(), 0) << node2.log();
  std::this_thread::sleep_for(15s);
  node2.start();
  const int64_t to_ms = wall_now_ms() - 5'000;
  std::vector<Expected> held;
  EXPECT_TRUE(holds_everything(node1, blip.db(), "a", to_ms, 30s, &held)) << agent.log();
  EXPECT_GE(points(held, "blip_outage{probe=\"node2\""), 40U) << "node 2 down 15 s";
  // vmagent retries node 2 with a backoff of up to a minute.
  EXPECT_TRUE(holds_everything(node2, blip.db(), "a", to_ms, 75s)) << agent.log();
  EXPECT_EQ(shipped(blip, agent, "rejected"), 0.0);
  EXPECT_EQ(shipped(blip, agent, "retried"), 0.0);
  EXPECT_EQ(blip.stop(), 0);
  std::cout << "both nodes hold every one of " << points(held, "blip_sample_up{")
            << " blip_sample_up samples stored; the test took " << seconds_since(started) << " s\n";
}

}  // namespace
}  // namespace blip
