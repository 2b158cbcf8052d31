// What an alert says: the one-line summary of each message kind, and the
// receiver's URL as the logs show it (no secret path or token). The dispatcher
// that sends them is in alert_dispatcher_test.cpp.
#include "blip/alerts/alert_payload.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
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

// A resolved incident (1'700'000'000'000 is 22:13:20 UTC): the words every text kind
// carries, and Alertmanager's one BlipIncident alert.
AlertMessage resolved_incident() {
  const int64_t t0 = 1'700'000'000'000;
  AlertEvent root = opened_event("db-write", 12, t0);
  root.incident_id = 7;
  IncidentView incident;
  incident.id = 7;
  incident.start_ms = t0;
  incident.end_ms = t0 + 6'200;
  incident.components = {
      {"db-write", "postgres", ErrorClass::timeout, "no answer within 1s", t0, t0 + 5'000},
      {"db-read", "postgres", ErrorClass::timeout, "no answer within 1s", t0 + 300, t0 + 6'200}};
  incident.joined = {1};
  AlertMessage message{AlertMessage::Kind::incident_resolved, root, t0 + 6'300};
  message.event.end_ms = incident.end_ms;
  message.incident = incident;
  return message;
}

TEST(AlertPayload, AResolvedIncidentCarriesItsTimeline) {
  const AlertMessage resolved = resolved_incident();
  EXPECT_EQ(alert_text(resolved),
            "db-write incident resolved after 6.2s (db-write, db-read)\n\n"
            "  22:13:20.0  db-write down: timeout (no answer within 1s)\n"
            "  22:13:20.3  db-read down: timeout (no answer within 1s)\n"
            "  22:13:25.0  db-write up after 5.0s\n"
            "  22:13:26.2  db-read up after 5.9s\n"
            "  total 6.2s\n");
  AlertMessage opened = resolved;
  opened.kind = AlertMessage::Kind::incident_opened;
  EXPECT_EQ(alert_summary(opened),
            "db-write down: timeout (no answer within 1s); also down: db-read — 0.3 s after "
            "db-write");

  const auto body = nlohmann::json::parse(
      build_alert_request(alert_to("am", AlertConfig::Kind::alertmanager, "http://am:9093"),
                          resolved)
          .body);
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0]["labels"], (nlohmann::json{{"alertname", "BlipIncident"},
                                               {"incident", "7"},
                                               {"root_probe", "db-write"},
                                               {"severity", "critical"}}));
  EXPECT_EQ(body[0]["annotations"]["components"], "db-write, db-read");
  EXPECT_EQ(body[0]["startsAt"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(body[0]["endsAt"], "2023-11-14T22:13:26.200Z");
  const auto slack = nlohmann::json::parse(
      build_alert_request(alert_to("s", AlertConfig::Kind::slack, "http://s/"), resolved).body);
  EXPECT_EQ(slack["text"], alert_text(resolved));
}

// `blip incident note`: the operator's words in the incident's next message, at their time.
TEST(AlertPayload, AnIncidentsMessageCarriesTheOperatorsNote) {
  AlertMessage resolved = resolved_incident();
  resolved.incident->note =
      IncidentNote{"identified", "the hourly VM snapshot locks the database disk",
                   resolved.incident->start_ms + 4'000};
  EXPECT_EQ(alert_text(resolved),
            "db-write incident resolved after 6.2s (db-write, db-read)\n\n"
            "  22:13:20.0  db-write down: timeout (no answer within 1s)\n"
            "  22:13:20.3  db-read down: timeout (no answer within 1s)\n"
            "  22:13:24.0  identified: the hourly VM snapshot locks the database disk\n"
            "  22:13:25.0  db-write up after 5.0s\n"
            "  22:13:26.2  db-read up after 5.9s\n"
            "  total 6.2s\n");
  const auto webhook = nlohmann::json::parse(
      build_alert_request(alert_to("w", AlertConfig::Kind::webhook, "http://w/"), resolved).body);
  EXPECT_EQ(webhook["note"],
            (nlohmann::json{{"status", "identified"},
                            {"text", "the hourly VM snapshot locks the database disk"},
                            {"at", "2023-11-14T22:13:24.000Z"}}))
      << webhook.dump(2);
  resolved.incident->note.reset();
  EXPECT_TRUE(
      nlohmann::json::parse(
          build_alert_request(alert_to("w", AlertConfig::Kind::webhook, "http://w/"), resolved)
              .body)["note"]
          .is_null());
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
