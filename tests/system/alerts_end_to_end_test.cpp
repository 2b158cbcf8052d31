// Alerts from the real daemon while the outage is still on: nginx frozen for
// 10 s at a 250 ms interval, a local receiver (Python's http.server) taking
// the webhooks, a second alert with a flapping rule, and a third whose
// receiver hangs, which must delay no probe.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "blip/core/clock.hpp"
#include "support/daemon.hpp"
#include "support/freeze.hpp"
#include "support/hostile_server.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"
#include "support/webhook_receiver.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

using Received = test::ReceivedPost;

size_t count_event(const std::vector<Received>& messages, const std::string& event) {
  return static_cast<size_t>(
      std::count_if(messages.begin(), messages.end(),
                    [&](const Received& message) { return message.body["event"] == event; }));
}

TEST(Alerting, OpenArrivesDuringTheOutageResolvedAfterItFlappingOnceAndAHungReceiverDelaysNoProbe) {
  test::NginxServer nginx;
  test::HostileServer hung(test::HostileServer::Mode::hang);
  test::TempDir dir;
  test::WebhookReceiver receiver(dir);
  const int port = receiver.port();
  const std::string config =
      test::http_config("web-health", nginx.url("/health"), "250ms", "1s") +
      fmt::format(
          "\n[[alert]]\nname = \"pager\"\nkind = \"webhook\"\ngroup = \"probe\"\nurl = "
          "\"http://127.0.0.1:{0}/pager\"\n\n"
          "[[alert]]\nname = \"summary\"\nkind = \"webhook\"\ngroup = \"probe\"\nurl = "
          "\"http://127.0.0.1:{0}/summary\"\n"
          "flapping = {{ outages = 3, within = \"1h\" }}\n\n"
          "[[alert]]\nname = \"hung\"\nkind = \"slack\"\ngroup = \"probe\"\nurl = "
          "\"http://127.0.0.1:{1}/services/T0/B0/secret\"\n"
          "timeout = \"5s\"\n",
          port, hung.port());
  test::Daemon blip(dir, config);
  ASSERT_TRUE(wait_until([&] { return blip.log().find("run: started") != std::string::npos; }, 10s))
      << blip.log();
  std::this_thread::sleep_for(2s);

  const double thawed_ms = static_cast<double>(test::freeze_for(nginx, 10s).thawed_ms);
  ASSERT_TRUE(wait_until(
      [&] { return count_event(receiver.received("/pager"), "outage_closed") == 1; }, 10s))
      << blip.log();
  auto pager = receiver.received("/pager");
  ASSERT_EQ(count_event(pager, "outage_opened"), 1u);
  const Received& opened = pager[0];
  EXPECT_EQ(opened.body["event"], "outage_opened");
  EXPECT_LT(opened.at_ms, thawed_ms - 5000) << "the page came while the outage was still on";
  EXPECT_EQ(opened.body["probe"], "web-health");
  EXPECT_EQ(opened.body["error"], "timeout");
  const Received& closed = pager.back();
  EXPECT_GT(closed.at_ms, thawed_ms);
  const int64_t duration_ms = closed.body["duration_ms"].get<int64_t>();
  EXPECT_GT(duration_ms, 9000);
  EXPECT_LT(duration_ms, 12'500);
  EXPECT_NE(closed.body["summary"].get<std::string>().find("is back after"), std::string::npos)
      << closed.body.dump();

  // Two more short freezes: the third outage within the hour is one summary, not a third pair.
  for (int i = 0; i < 2; ++i) {
    std::this_thread::sleep_for(3s);
    test::freeze_for(nginx, 2s);
  }
  ASSERT_TRUE(
      wait_until([&] { return count_event(receiver.received("/summary"), "flapping") == 1; }, 10s))
      << blip.log();
  std::this_thread::sleep_for(2s);
  const auto summary = receiver.received("/summary");
  EXPECT_EQ(count_event(summary, "flapping"), 1u);
  EXPECT_EQ(count_event(summary, "outage_opened"), 2u);
  EXPECT_EQ(count_event(receiver.received("/pager"), "outage_opened"), 3u)
      << "an alert without the rule sends each one";

  const auto metrics = test::http_request(blip.feed_url("/metrics")).body;
  EXPECT_NE(metrics.find("blip_alerts_total{kind=\"webhook\",result=\"sent\"}"), std::string::npos);
  EXPECT_NE(metrics.find("blip_alerts_total{kind=\"slack\",result=\"retried\"}"),
            std::string::npos);
  ASSERT_EQ(blip.stop(), 0) << blip.log();
  // The hung receiver held every slack send for 5 s; probes kept their schedule.
  std::smatch match;
  const std::string run_log = blip.log();
  ASSERT_TRUE(std::regex_search(run_log, match, std::regex("schedule_lag_p99_us=(\\d+)")))
      << run_log;
  EXPECT_LT(std::stoll(match[1]), 50'000) << run_log;
  EXPECT_EQ(run_log.find("secret"), std::string::npos)
      << "the slack webhook's path reached the log";
  EXPECT_NE(run_log.find("alerts: "), std::string::npos);
}

TEST(Alerting, MaintenanceHoldsAlertsMarksOutagesAndShowsOnTheFeed) {
  test::TempDir dir;
  test::WebhookReceiver receiver(dir);
  const int port = receiver.port();
  const int refused = test::free_port();
  const std::string started = format_iso8601_ms(wall_now_ms() - 60'000);
  const std::string config = fmt::format(
      "[[probe]]\nname = \"db-port\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{0}\"\ninterval = "
      "\"250ms\"\n"
      "tags = [\"db\"]\n\n"
      "[[probe]]\nname = \"web-port\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{0}\"\ninterval = "
      "\"250ms\"\n\n"
      "[[alert]]\nname = \"pager\"\nkind = \"webhook\"\ngroup = \"probe\"\nurl = "
      "\"http://127.0.0.1:{1}/pager\"\n\n"
      "[[maintenance]]\nname = \"db upgrade\"\nstart = \"{2}\"\nduration = \"1h\"\ntags = "
      "[\"db\"]\n",
      refused, port, started.substr(0, 19) + "Z");
  test::Daemon blip(dir, config);
  ASSERT_TRUE(wait_until(
      [&] { return count_event(receiver.received("/pager"), "outage_opened") == 1; }, 10s))
      << blip.log();
  std::this_thread::sleep_for(1s);
  const auto pages = receiver.received("/pager");
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].body["probe"], "web-port") << "db-port is in its window: held";
  const auto summary =
      nlohmann::json::parse(test::http_request(blip.feed_url("/api/v2/summary.json")).body);
  bool shown = false;
  for (const auto& component : summary["components"]) {
    if (component["name"] == "db-port") {
      EXPECT_EQ(component["status"], "under_maintenance");
      shown = true;
    }
  }
  EXPECT_TRUE(shown) << summary.dump();
  ASSERT_EQ(summary["scheduled_maintenances"].size(), 1u)
      << summary["scheduled_maintenances"].dump();
  EXPECT_EQ(summary["scheduled_maintenances"][0]["status"], "in_progress");
  EXPECT_EQ(summary["scheduled_maintenances"][0]["components"].size(), 1u);
  const auto metrics = test::http_request(blip.feed_url("/metrics")).body;
  EXPECT_NE(metrics.find("blip_alerts_total{kind=\"webhook\",result=\"held\"} 1"),
            std::string::npos)
      << metrics;
  ASSERT_EQ(blip.stop(), 0);
  std::string output;
  ASSERT_EQ(
      test::run_command({BLIP_BINARY, "report", "--db", blip.db(), "--format", "json"}, &output),
      0);
  const auto report = nlohmann::json::parse(output.substr(output.find('{')));
  for (const auto& outage : report["outages"]) {
    EXPECT_EQ(outage["in_maintenance"].get<bool>(), outage["probe"] == "db-port") << outage.dump();
  }
}

}  // namespace
}  // namespace blip
