// Alerts by incident from the real daemon (issue 21): Postgres frozen for 5 s
// takes down a write and a read probe together while a Sidekiq-style Redis
// probe that depends on nothing stays up; nginx freezes ~20 s later. One
// daemon carries three alerts: a webhook grouped by incident (the default), a
// webhook with group = "probe" (one message per outage, as before), and a real
// Alertmanager (Debian's prometheus-alertmanager), read back through its own
// /api/v2/alerts while each freeze is on and after it.
//
// The test prints the messages as the webhook received them: docs/jobs-and-alerts.md
// shows such a capture.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "blip/core/clock.hpp"
#include "support/daemon.hpp"
#include "support/engines.hpp"
#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"
#include "support/smtp_receiver.hpp"
#include "support/webhook_receiver.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::wait_until;

std::vector<json> bodies_of(const test::WebhookReceiver& receiver, const std::string& path,
                            const std::string& event) {
  std::vector<json> out;
  for (const test::ReceivedPost& post : receiver.received(path)) {
    if (post.body.value("event", "") == event) out.push_back(post.body);
  }
  return out;
}

std::set<std::string> component_names(const json& body) {
  std::set<std::string> names;
  for (const json& component : body["components"]) names.insert(component["probe"]);
  return names;
}

// Alertmanager's own view: the BlipIncident alerts it holds as active now (resolved ones, whose
// endsAt has passed, are no longer listed).
std::vector<json> active_blip_incidents(const test::Engine& alertmanager) {
  const auto response = test::http_request(
      alertmanager.url("/api/v2/alerts?active=true&filter=alertname%3D%22BlipIncident%22"));
  std::vector<json> out;
  const json alerts = json::parse(response.body, nullptr, false);
  if (!alerts.is_array()) return out;
  for (const json& alert : alerts) {
    if (alert["status"].value("state", "") == "active") out.push_back(alert);
  }
  return out;
}

// What Alertmanager notified its own webhook of: (incident label, status) pairs.
std::set<std::pair<std::string, std::string>> alertmanager_notified(
    const test::WebhookReceiver& receiver) {
  std::set<std::pair<std::string, std::string>> out;
  for (const test::ReceivedPost& post : receiver.received("/from-alertmanager")) {
    if (!post.body.contains("alerts")) continue;
    for (const json& alert : post.body["alerts"]) {
      if (alert["labels"].value("alertname", "") != "BlipIncident") continue;
      out.emplace(alert["labels"].value("incident", ""), alert.value("status", ""));
    }
  }
  return out;
}

std::string probe_table(const std::string& name, const std::string& type,
                        const std::string& target_key, const std::string& target,
                        const std::string& extra = "") {
  return fmt::format(
      "[[probe]]\nname = \"{}\"\ntype = \"{}\"\n{} = \"{}\"\ninterval = \"250ms\"\ntimeout = "
      "\"500ms\"\n{}\n",
      name, type, target_key, target, extra);
}

TEST(IncidentAlerts, OnePagePerIncidentNamedByTheFirstDownOnePerOutageWithGroupProbe) {
  if (!test::installed("prometheus-alertmanager"))
    GTEST_SKIP() << "prometheus-alertmanager is not installed (scripts/install-deps installs it)";
  test::PostgresServer postgres;
  test::RedisServer redis;
  test::NginxServer nginx;
  test::TempDir dir;
  test::WebhookReceiver receiver(dir);
  test::Engine alertmanager(test::alertmanager(receiver.url("/from-alertmanager")));
  const std::string config =
      probe_table("db-write", "postgres", "dsn", postgres.dsn(), "mode = \"write\"") +
      probe_table("db-read", "postgres", "dsn", postgres.dsn()) +
      probe_table("sidekiq", "redis", "address", fmt::format("127.0.0.1:{}", redis.port())) +
      probe_table("web", "http", "url", nginx.url("/health")) +
      fmt::format(
          "[[alert]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{}\"\n\n"
          "[[alert]]\nname = \"each\"\nkind = \"webhook\"\nurl = \"{}\"\ngroup = \"probe\"\n\n"
          "[[alert]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\n",
          receiver.url("/incident"), receiver.url("/probe"), alertmanager.url());
  test::Daemon blip(dir, config);
  ASSERT_TRUE(wait_until([&] { return blip.log().find("run: started") != std::string::npos; }, 20s))
      << blip.log();
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(receiver.received().empty()) << "no outage before the freezes: " << blip.log();

  // One freeze: the opened page and Alertmanager's active alert while it is on, both gone
  // (resolved) after it. Returns the labels of Alertmanager's alert (incident, root_probe, …).
  auto freeze_and_check = [&](const auto& target, size_t nth, const std::string& what) {
    const auto frozen = std::chrono::steady_clock::now();
    target.freeze();
    const bool paged = wait_until(
        [&] { return bodies_of(receiver, "/incident", "incident_opened").size() == nth; }, 4500ms);
    std::vector<json> active;
    if (paged) {
      wait_until(
          [&] {
            active = active_blip_incidents(alertmanager);
            return !active.empty();
          },
          std::chrono::duration_cast<std::chrono::milliseconds>(frozen + 4900ms -
                                                                std::chrono::steady_clock::now()));
    }
    std::this_thread::sleep_until(frozen + 5s);
    target.thaw();
    EXPECT_TRUE(paged) << "the opened page came while " << what << " was frozen\n" << blip.log();
    EXPECT_EQ(active.size(), 1u) << "Alertmanager held the incident as active during the freeze\n"
                                 << alertmanager.log();
    json labels = json::object();
    if (!active.empty()) labels = active[0]["labels"];
    EXPECT_TRUE(wait_until(
        [&] { return bodies_of(receiver, "/incident", "incident_resolved").size() == nth; }, 15s))
        << blip.log();
    EXPECT_TRUE(wait_until([&] { return active_blip_incidents(alertmanager).empty(); }, 10s))
        << "resolved in Alertmanager (endsAt) after the thaw";
    return labels;
  };

  const auto began = std::chrono::steady_clock::now();
  const json database_labels = freeze_and_check(postgres, 1, "Postgres");
  std::this_thread::sleep_until(began + 20s);
  const json web_labels = freeze_and_check(nginx, 2, "nginx");
  std::this_thread::sleep_for(3s);  // nothing more may come (a late grew, a second resolved)
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  // Which Postgres probe went down first, by the store's own outage rows.
  std::string output;
  ASSERT_EQ(
      test::run_command({BLIP_BINARY, "report", "--db", blip.db(), "--format", "json"}, &output),
      0);
  const json report = json::parse(output.substr(output.find('{')));
  std::map<std::string, std::string> database_starts;
  size_t outages = 0;
  for (const json& outage : report["outages"]) {
    ++outages;
    const std::string probe = outage["probe"];
    EXPECT_NE(probe, "sidekiq") << "Redis depends on nothing and stayed up";
    if (probe.starts_with("db-")) database_starts[probe] = outage["start"];
  }
  ASSERT_EQ(outages, 3u) << report["outages"].dump();
  ASSERT_EQ(database_starts.size(), 2u) << report["outages"].dump();
  const auto opened = bodies_of(receiver, "/incident", "incident_opened");
  // Probes of one interval fire together (start groups), so both may have gone down in the
  // same millisecond: then either is the first.
  std::string first_down =
      database_starts["db-write"] < database_starts["db-read"] ? "db-write" : "db-read";
  if (database_starts["db-write"] == database_starts["db-read"] && !opened.empty())
    first_down = opened[0].value("root_probe", first_down);
  const std::string other_database = first_down == "db-write" ? "db-read" : "db-write";

  // group = "incident": two opened, two resolved.
  const auto resolved = bodies_of(receiver, "/incident", "incident_resolved");
  const auto grew = bodies_of(receiver, "/incident", "incident_grew");
  ASSERT_EQ(opened.size(), 2u);
  ASSERT_EQ(resolved.size(), 2u);
  EXPECT_EQ(opened[0]["state"], "opened");
  EXPECT_EQ(opened[0]["root_probe"], first_down);
  EXPECT_EQ(opened[0]["probe"], first_down);
  EXPECT_EQ(component_names(opened[0]), (std::set<std::string>{first_down, other_database}))
      << "the opened lists the other Postgres probe: " << opened[0].dump();
  EXPECT_TRUE(opened[0]["summary"].get<std::string>().starts_with(first_down + " down: timeout"))
      << opened[0]["summary"];
  EXPECT_NE(opened[0]["summary"].get<std::string>().find("also down: " + other_database),
            std::string::npos)
      << opened[0]["summary"];
  EXPECT_TRUE(grew.empty()) << "both Postgres probes fell within the gather: " << grew[0].dump();
  EXPECT_EQ(resolved[0]["state"], "resolved");
  EXPECT_EQ(resolved[0]["incident"], opened[0]["incident"]);
  EXPECT_EQ(resolved[0]["root_probe"], first_down);
  for (const json& component : resolved[0]["components"]) EXPECT_FALSE(component["up"].is_null());
  const int64_t database_ms = resolved[0]["duration_ms"];
  EXPECT_GT(database_ms, 3000);
  EXPECT_LT(database_ms, 9000);
  EXPECT_EQ(opened[1]["root_probe"], "web");
  EXPECT_EQ(component_names(opened[1]), std::set<std::string>{"web"});
  EXPECT_EQ(resolved[1]["incident"], opened[1]["incident"]);
  EXPECT_NE(opened[0]["incident"], opened[1]["incident"]);

  // Alertmanager: one BlipIncident per incident, told of it by blip, firing then resolved.
  const std::string database_incident = database_labels.value("incident", "");
  const std::string web_incident = web_labels.value("incident", "");
  EXPECT_EQ(database_incident, std::to_string(opened[0]["incident"].get<int64_t>()));
  EXPECT_EQ(web_incident, std::to_string(opened[1]["incident"].get<int64_t>()));
  EXPECT_EQ(database_labels.value("root_probe", ""), first_down) << database_labels.dump();
  EXPECT_EQ(web_labels.value("root_probe", ""), "web") << web_labels.dump();
  EXPECT_EQ(database_labels.value("severity", ""), "critical");
  EXPECT_TRUE(wait_until(
      [&] {
        const auto notified = alertmanager_notified(receiver);
        return notified.count({database_incident, "resolved"}) == 1 &&
               notified.count({web_incident, "resolved"}) == 1;
      },
      10s))
      << alertmanager.log();

  // group = "probe": one opened and one closed per outage, as before.
  const auto each_opened = bodies_of(receiver, "/probe", "outage_opened");
  const auto each_closed = bodies_of(receiver, "/probe", "outage_closed");
  EXPECT_EQ(each_opened.size(), 3u);
  EXPECT_EQ(each_closed.size(), 3u);
  std::multiset<std::string> paged;
  for (const json& body : each_opened) paged.insert(body["probe"].get<std::string>());
  EXPECT_EQ(paged, (std::multiset<std::string>{"db-read", "db-write", "web"}));

  // The capture docs/jobs-and-alerts.md shows.
  std::cout << "--- messages to the incident webhook, as received ---\n";
  for (const test::ReceivedPost& post : receiver.received("/incident"))
    std::cout << post.body.dump(2) << "\n";
}

// kind = "email" grouped by incident (the default): the opened and resolved mails of one
// incident, the resolved one replying to the opened one, with the timeline in its body.
TEST(IncidentAlerts, AnIncidentsMailsArriveAsOneThread) {
  test::NginxServer nginx;
  test::TempDir dir;
  test::SmtpReceiver smtp(dir);
  const std::string config =
      probe_table("web", "http", "url", nginx.url("/health")) +
      fmt::format(
          "[[alert]]\nname = \"mail\"\nkind = \"email\"\nurl = \"{}\"\n"
          "from = \"blip <blip@status.example.org>\"\nto = [\"ops@example.org\"]\n",
          smtp.url());
  test::Daemon blip(dir, config);
  ASSERT_TRUE(wait_until([&] { return blip.log().find("run: started") != std::string::npos; }, 20s))
      << blip.log();
  std::this_thread::sleep_for(2s);
  nginx.freeze();
  std::this_thread::sleep_for(5s);
  nginx.thaw();
  ASSERT_TRUE(wait_until([&] { return smtp.received().size() >= 2; }, 15s))
      << blip.log() << smtp.log();
  std::this_thread::sleep_for(1s);
  const auto mails = smtp.received();
  ASSERT_EQ(mails.size(), 2u);
  const test::ReceivedMail& opened = mails[0];
  const test::ReceivedMail& resolved = mails[1];
  EXPECT_TRUE(opened.header("Subject").starts_with("web down: timeout")) << opened.data;
  EXPECT_TRUE(resolved.header("Subject").starts_with("web incident resolved after"))
      << resolved.data;
  EXPECT_EQ(opened.header("X-Blip-Event"), "incident_opened");
  EXPECT_EQ(resolved.header("X-Blip-Event"), "incident_resolved");
  EXPECT_TRUE(opened.header("Message-ID").starts_with("<incident-")) << opened.data;
  EXPECT_EQ(opened.header("In-Reply-To"), "");
  EXPECT_EQ(resolved.header("In-Reply-To"), opened.header("Message-ID"));
  EXPECT_EQ(resolved.header("References"), opened.header("Message-ID"));
  EXPECT_NE(resolved.body().find("web up after"), std::string::npos) << resolved.body();
  EXPECT_NE(resolved.body().find("total "), std::string::npos) << resolved.body();
  for (const auto& mail : mails) std::cout << "---- received\n" << mail.data << "\n";
  ASSERT_EQ(blip.stop(), 0) << blip.log();
}

}  // namespace
}  // namespace blip
