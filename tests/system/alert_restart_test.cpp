// Alert state that survives a restart (issue 21): blip stopped while an incident
// is open, started again on the same database. Whatever its probes' first samples
// say, the incident's people get one opened and one resolved, never a second
// opened: after SIGTERM with the target thawed, after kill -9, and with the target
// still frozen across the restart. A send in flight at SIGTERM stays pending in the
// store and goes after the restart.
//
// Two HTTP probes on one nginx make a two-component incident; 250 ms interval,
// 500 ms timeout, so each case takes about 15 s.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/hostile_server.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"
#include "support/webhook_receiver.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::wait_until;

std::vector<json> bodies_of(const test::WebhookReceiver& receiver, const std::string& event) {
  std::vector<json> out;
  for (const test::ReceivedPost& post : receiver.received("/incident")) {
    if (post.body.value("event", "") == event) out.push_back(post.body);
  }
  return out;
}

std::string config_for(const test::NginxServer& nginx, const std::string& alert_url,
                       const std::string& alert_extra = "") {
  std::string config;
  for (const char* name : {"web", "web-assets"}) {
    config += fmt::format(
        "[[probe]]\nname = \"{}\"\ntype = \"http\"\nurl = \"{}\"\ninterval = \"250ms\"\n"
        "timeout = \"500ms\"\n\n",
        name, nginx.url("/health"));
  }
  return config + fmt::format("[[alert]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{}\"\n{}\n",
                              alert_url, alert_extra);
}

std::vector<AlertIncidentRow> alert_records(const std::string& db) {
  return Store(db, Store::Mode::read_only).alert_incidents();
}

// Every record of the database's alert incidents settled: no message of theirs is waiting for its
// endpoint's answer.
bool records_settled(const std::string& db) {
  const auto rows = alert_records(db);
  return !rows.empty() &&
         std::none_of(rows.begin(), rows.end(), [](const auto& row) { return row.pending; });
}

bool started(const test::Daemon& blip) {
  return blip.log().find("run: started") != std::string::npos;
}

// One case's servers and files: the database is the first run's, shared by the second.
struct RestartCase {
  test::NginxServer nginx;
  test::TempDir dir;       // the database and the first run's log
  test::TempDir next_dir;  // the second run's log
  test::WebhookReceiver receiver{dir};
  std::string db = dir.file("blip.db");
};

// Exactly one opened and one resolved for the incident, the resolved naming both probes as back.
void expect_one_opened_one_resolved(const RestartCase& run, const std::string& logs) {
  const auto opened = bodies_of(run.receiver, "incident_opened");
  const auto resolved = bodies_of(run.receiver, "incident_resolved");
  ASSERT_EQ(opened.size(), 1u) << "no second opened after the restart\n" << logs;
  ASSERT_EQ(resolved.size(), 1u) << logs;
  EXPECT_EQ(resolved[0]["incident"], opened[0]["incident"]) << resolved[0].dump(2);
  EXPECT_EQ(resolved[0]["root_probe"], opened[0]["root_probe"]);
  EXPECT_EQ(resolved[0]["start_ms"], opened[0]["start_ms"])
      << "the incident continues from its first start";
  std::set<std::string> back;
  for (const json& component : resolved[0]["components"]) {
    EXPECT_FALSE(component["up"].is_null()) << resolved[0].dump(2);
    back.insert(component["probe"]);
  }
  EXPECT_EQ(back, (std::set<std::string>{"web", "web-assets"})) << resolved[0].dump(2);
  EXPECT_TRUE(bodies_of(run.receiver, "incident_grew").empty()) << logs;
}

enum class Stop { sigterm, sigkill };

// Opened while frozen, blip stopped, nginx thawed, blip again: one resolved, no second opened.
void stopped_during_outage_then_thawed(Stop how) {
  RestartCase run;
  const std::string config = config_for(run.nginx, run.receiver.url("/incident"));
  std::string first_log;
  {
    test::Daemon first(run.dir, config);
    ASSERT_TRUE(wait_until([&] { return started(first); }, 20s)) << first.log();
    std::this_thread::sleep_for(1500ms);
    run.nginx.freeze();
    ASSERT_TRUE(
        wait_until([&] { return bodies_of(run.receiver, "incident_opened").size() == 1; }, 8s))
        << first.log();
    // kill -9: what was committed before the kill counts. The opened's record was stored before
    // it was sent, its endpoint's answer just after (a kill between the two would send the
    // opened again: at least once, never lost), so the kill waits for the answer's record.
    ASSERT_TRUE(wait_until([&] { return records_settled(run.db); }, 5s)) << first.log();
    if (how == Stop::sigterm) {
      EXPECT_EQ(first.stop(), 0) << first.log();
    } else {
      first.process().signal(SIGKILL);
      first.process().wait();
    }
    first_log = first.log();
  }
  run.nginx.thaw();
  test::Daemon second(run.next_dir, config, {}, run.db);
  ASSERT_TRUE(wait_until([&] { return started(second); }, 20s)) << second.log();
  EXPECT_TRUE(
      wait_until([&] { return bodies_of(run.receiver, "incident_resolved").size() == 1; }, 10s))
      << first_log << second.log();
  std::this_thread::sleep_for(3s);  // nothing more may come (a second opened, a second resolved)
  EXPECT_NE(second.log().find("alerts: incident restored alert=pager"), std::string::npos)
      << second.log();
  ASSERT_EQ(second.stop(), 0) << second.log();
  expect_one_opened_one_resolved(run, first_log + second.log());
}

TEST(AlertRestart, SigtermDuringAnOutageThenThawedGivesOneResolved) {
  stopped_during_outage_then_thawed(Stop::sigterm);
}

TEST(AlertRestart, KillDuringAnOutageThenThawedGivesOneResolved) {
  stopped_during_outage_then_thawed(Stop::sigkill);
}

// Restarted while nginx is still frozen: the probes' first confirmed samples are down, so the
// new outages continue the incident (no second opened); the thaw resolves it once.
TEST(AlertRestart, RestartedWhileStillFrozenContinuesTheIncident) {
  RestartCase run;
  const std::string config = config_for(run.nginx, run.receiver.url("/incident"));
  std::string first_log;
  run.nginx.freeze();
  std::chrono::steady_clock::time_point opened_at;
  {
    test::Daemon first(run.dir, config);
    ASSERT_TRUE(
        wait_until([&] { return bodies_of(run.receiver, "incident_opened").size() == 1; }, 20s))
        << first.log();
    opened_at = std::chrono::steady_clock::now();  // the incident began before this
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(first.stop(), 0) << first.log();
    first_log = first.log();
  }
  test::Daemon second(run.next_dir, config, {}, run.db);
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string log = second.log();
        size_t continued = 0;
        for (size_t at = log.find("incident continues after the restart"); at != std::string::npos;
             at = log.find("incident continues after the restart", at + 1))
          ++continued;
        return continued == 2;
      },
      15s))
      << "both probes' new outages continue the incident\n"
      << second.log();
  std::this_thread::sleep_for(3s);  // past the gather: an opened would have come by now
  EXPECT_EQ(bodies_of(run.receiver, "incident_opened").size(), 1u) << second.log();
  EXPECT_TRUE(bodies_of(run.receiver, "incident_resolved").empty()) << second.log();
  const int64_t opened_to_thaw_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - opened_at)
                                        .count();
  run.nginx.thaw();
  EXPECT_TRUE(
      wait_until([&] { return bodies_of(run.receiver, "incident_resolved").size() == 1; }, 10s))
      << second.log();
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(second.stop(), 0) << second.log();
  expect_one_opened_one_resolved(run, first_log + second.log());
  const auto resolved = bodies_of(run.receiver, "incident_resolved");
  ASSERT_EQ(resolved.size(), 1u);
  // From the first run's first down sample (before the opened came) to the first up one (after
  // the thaw): the restart included.
  EXPECT_GE(resolved[0]["duration_ms"].get<int64_t>(), opened_to_thaw_ms) << resolved[0].dump(2);
}

// The opened message is in flight (its endpoint hangs) when SIGTERM comes: it is abandoned,
// stays pending in the store, and the next run sends it (here to an endpoint that answers),
// then the resolved.
TEST(AlertRestart, ASendInFlightAtSigtermIsSentAfterTheRestart) {
  RestartCase run;
  test::HostileServer hanging(test::HostileServer::Mode::hang);
  std::string first_log;
  {
    // One attempt outlasts the run: still in flight at SIGTERM.
    test::Daemon first(run.dir,
                       config_for(run.nginx, hanging.url("/incident"), "timeout = \"30s\""));
    ASSERT_TRUE(wait_until([&] { return started(first); }, 20s)) << first.log();
    std::this_thread::sleep_for(1500ms);
    run.nginx.freeze();
    // The opened is made about 2.5 s after the freeze (a timeout, then the 2 s gather), recorded,
    // then sent once its record is stored: a second later it is in flight.
    ASSERT_TRUE(wait_until([&] { return !alert_records(run.db).empty(); }, 15s)) << first.log();
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(first.metric("blip_alerts_total{kind=\"webhook\",result=\"sent\"}"), 0);
    EXPECT_EQ(first.stop(), 0) << first.log();
    first_log = first.log();
  }
  EXPECT_NE(first_log.find("event=incident_opened probe=web"), std::string::npos) << first_log;
  EXPECT_NE(first_log.find("abandoned at shutdown"), std::string::npos)
      << "the opened was in flight at SIGTERM\n"
      << first_log;
  EXPECT_TRUE(run.receiver.received().empty());
  run.nginx.thaw();
  test::Daemon second(run.next_dir, config_for(run.nginx, run.receiver.url("/incident")), {},
                      run.db);
  EXPECT_TRUE(
      wait_until([&] { return bodies_of(run.receiver, "incident_resolved").size() == 1; }, 15s))
      << first_log << second.log();
  std::this_thread::sleep_for(3s);
  EXPECT_NE(second.log().find("pending=true"), std::string::npos) << second.log();
  ASSERT_EQ(second.stop(), 0) << second.log();
  expect_one_opened_one_resolved(run, first_log + second.log());
}

}  // namespace
}  // namespace blip
