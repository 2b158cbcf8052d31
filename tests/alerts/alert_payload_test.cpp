// What an alert says: the one-line summary of each message kind, and the
// receiver's URL as the logs show it (no secret path or token). The dispatcher
// that sends them is in alert_dispatcher_test.cpp.
#include "blip/alerts/alert_payload.hpp"

#include <gtest/gtest.h>

#include <string>

#include "support/alerts.hpp"

namespace blip {
namespace {

using test::alert_to;
using test::closed_event;
using test::opened_event;

TEST(AlertPayload, SummariesSayWhatHappenedInOneLine) {
  AlertEvent opened = opened_event("web-health", 7, 1'700'000'000'000);
  opened.text = "3rd outage at about +00:20 this hour";
  EXPECT_EQ(
      alert_summary({AlertMessage::Kind::opened, opened, opened.at_ms}),
      "web-health is down: timeout (no answer within 1s); 3rd outage at about +00:20 this hour");
  EXPECT_EQ(alert_summary({AlertMessage::Kind::closed, closed_event(opened, 31'000), 0}),
            "web-health is back after 31s");
  AlertMessage flapping{AlertMessage::Kind::flapping, opened, opened.at_ms};
  flapping.flapping_outages = 3;
  flapping.flapping_window_ms = 3'600'000;
  flapping.flapping_closed_durations_ms = {58'000, 31'200};
  EXPECT_EQ(alert_summary(flapping), "3 outages of web-health in the last 1h, 31–58 s each");
  EXPECT_EQ(alert_summary({AlertMessage::Kind::reminder, opened, opened.start_ms + 300'000}),
            "web-health is still down after 5m00s: timeout (no answer within 1s)");
}

TEST(AlertPayload, LogsNeverShowSecretPathsOrTokens) {
  AlertConfig slack = alert_to("s", AlertConfig::Kind::slack,
                               "https://hooks.slack.com/services/T000/B000/XXXXSECRET");
  EXPECT_EQ(alert_url_for_logs(slack), "https://hooks.slack.com/***");
  AlertConfig ntfy = alert_to("n", AlertConfig::Kind::ntfy, "http://127.0.0.1:8080/secret-topic");
  EXPECT_EQ(alert_url_for_logs(ntfy), "http://127.0.0.1:8080/***");
  AlertConfig hook =
      alert_to("w", AlertConfig::Kind::webhook, "https://user:pw@example.org/hook?token=abc");
  EXPECT_EQ(alert_url_for_logs(hook).find("abc"), std::string::npos);
  EXPECT_EQ(alert_url_for_logs(hook).find("pw"), std::string::npos);
}

}  // namespace
}  // namespace blip
