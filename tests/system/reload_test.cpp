// SIGHUP re-reads probes.d while blip runs: kept probes keep their schedule and
// open outages, a removed probe's outage ends as "removed", a changed probe
// starts afresh, and an invalid directory is logged and changes nothing.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

std::string tcp(const std::string& name, int port, const std::string& interval) {
  return fmt::format(
      "[[probe]]\nname = \"{}\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{}\"\ninterval = \"{}\"\n\n",
      name, port, interval);
}

std::vector<std::string> component_names(const test::Daemon& blip) {
  std::vector<std::string> names;
  const auto summary =
      nlohmann::json::parse(test::http_request(blip.feed_url("/api/v2/summary.json")).body);
  for (const auto& component : summary["components"]) {
    if (!component["group"].get<bool>()) names.push_back(component["name"]);
  }
  return names;
}

// No slot lost across the reloads. Sends keep their grid, so a send late by L
// makes a gap of interval + L: a lost slot is a gap of two intervals, while a
// send late by less than one interval (a loaded machine) is not. The bound of
// 1.5 intervals this had failed on any send 50 ms late.
void expect_no_gap(const std::vector<Sample>& samples, int64_t interval_ms) {
  for (size_t i = 1; i < samples.size(); ++i) {
    ASSERT_LT(samples[i].sent_ms - samples[i - 1].sent_ms, interval_ms * 2)
        << "a gap at " << format_iso8601_ms(samples[i - 1].sent_ms);
  }
}

TEST(Reload, SighupKeepsWhatIsUnchangedAndAnInvalidDirectoryChangesNothing) {
  test::NginxServer nginx;
  const int refused = test::free_port();
  test::TempDir dir;
  const std::string web = test::http_config("web", nginx.url("/health"), "100ms", "1s") + "\n";
  test::Daemon blip(dir, web + tcp("down-kept", refused, "100ms") +
                             tcp("down-removed", refused, "100ms") +
                             tcp("changed", nginx.port(), "250ms"));
  ASSERT_TRUE(wait_until(
      [&] { return blip.log().find("outage: opened probe=down-removed") != std::string::npos; },
      5s))
      << blip.log();
  std::this_thread::sleep_for(1s);

  // Reordered, one removed, one changed, one added.
  dir.write("probes.d/probes.toml", tcp("added", nginx.port(), "100ms") +
                                        tcp("down-kept", refused, "100ms") + web +
                                        tcp("changed", nginx.port(), "200ms"));
  const int64_t reloaded_ms = wall_now_ms();
  blip.process().signal(SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] {
        return blip.log().find("reload: probes=4 kept=2 added=2 removed=2") != std::string::npos;
      },
      5s))
      << blip.log();
  ASSERT_TRUE(wait_until([&] { return component_names(blip).size() == 4; }, 3s));
  EXPECT_EQ(component_names(blip),
            (std::vector<std::string>{"added", "down-kept", "web", "changed"}))
      << "the feed follows the new order";
  std::this_thread::sleep_for(1500ms);

  // An invalid directory: every error logged as `blip check` prints it (a quoted value); the
  // running probes go on.
  dir.write("probes.d/probes.toml",
            web +
                "[[probe]]\nname = \"bad\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n"
                "interval = \"fast\"\n");
  const int64_t invalid_ms = wall_now_ms();
  blip.process().signal(SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return blip.log().find("the running configuration is kept") != std::string::npos; },
      5s))
      << blip.log();
  EXPECT_NE(blip.log().find("reload: rejected error=\"" + dir.file("probes.d/probes.toml") +
                            ":12:12: interval: invalid duration \\\"fast\\\""),
            std::string::npos)
      << blip.log();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(component_names(blip).size(), 4U);
  const int64_t stopped_ms = wall_now_ms();
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  // Kept: one schedule throughout, its outage open across both reloads.
  const auto web_samples = store.samples("web", 0, INT64_MAX);
  EXPECT_GE(web_samples.size(),
            static_cast<size_t>((stopped_ms - web_samples.front().sent_ms) / 100 - 3));
  expect_no_gap(web_samples, 100);
  const auto kept = store.outages(0, INT64_MAX, "down-kept");
  ASSERT_EQ(kept.size(), 1U);
  EXPECT_LT(kept[0].start_ms, reloaded_ms);
  EXPECT_EQ(kept[0].end_reason, "shutdown");
  expect_no_gap(store.samples("down-kept", 0, INT64_MAX), 100);
  // Removed: its outage ended at the reload.
  const auto removed = store.outages(0, INT64_MAX, "down-removed");
  ASSERT_EQ(removed.size(), 1U);
  EXPECT_EQ(removed[0].end_reason, "removed");
  ASSERT_TRUE(removed[0].end_ms);
  EXPECT_NEAR(static_cast<double>(*removed[0].end_ms), static_cast<double>(reloaded_ms), 1000.0);
  EXPECT_TRUE(store.samples("down-removed", reloaded_ms + 500, INT64_MAX).empty());
  // Added and changed: probing from the reload on, the changed one at its new interval.
  EXPECT_GE(store.samples("added", reloaded_ms, stopped_ms).size(),
            static_cast<size_t>((stopped_ms - reloaded_ms) / 100 - 10));
  const auto changed = store.samples("changed", reloaded_ms + 500, stopped_ms);
  ASSERT_GE(changed.size(), 10U);
  // The new interval (200 ms), not the old one (250 ms): over the whole run, not
  // gap by gap, where one send 40 ms late would fail it. The span's two ends are
  // each late by at most ~100 ms on a loaded machine, which over nine or more
  // gaps moves the mean by 11 ms at most, well inside the 25 ms between the two.
  const double mean_gap = static_cast<double>(changed.back().sent_ms - changed.front().sent_ms) /
                          static_cast<double>(changed.size() - 1);
  EXPECT_NEAR(mean_gap, 200.0, 15.0);
  expect_no_gap(changed, 200);
  EXPECT_GE(store.samples("web", invalid_ms, stopped_ms).size(), 12U)
      << "the invalid reload stopped nothing";
  EXPECT_TRUE(store.samples("bad", 0, INT64_MAX).empty());
}

}  // namespace
}  // namespace blip
