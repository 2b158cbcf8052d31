// The operator's words through the real daemon (issue 21): `blip incident note` on a real
// incident (a frozen nginx) and `blip notice`, sent to the private face with the token from
// [page], shown on both faces' Statuspage documents, kept across a SIGTERM restart; a wrong
// token, an unknown incident and a bad status refused with their exit statuses.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "support/daemon.hpp"
#include "support/freeze.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kOperatorToken = "operator-token-5d1e9a7c3f0b42e6a8";
constexpr const char* kNote = "the hourly VM snapshot locks the database disk";
constexpr const char* kForever = "the database moves to new disks this week";
constexpr const char* kShort = "a short maintenance notice";

std::string config(const test::NginxServer& nginx) {
  return test::http_config("web", nginx.url("/health"), "100ms", "500ms") +
         fmt::format("\n[page]\nname = \"Example\"\noperator_token = \"{}\"\n", kOperatorToken);
}

// `blip ARGS… -c DIR --listen …`: its exit status, with what it printed in `output`.
int blip_cli(const test::Daemon& blip, const test::TempDir& dir, std::vector<std::string> args,
             std::string* output = nullptr) {
  std::vector<std::string> argv{BLIP_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"-c", dir.file("probes.d"), "--listen",
                           fmt::format("127.0.0.1:{}", blip.feed_port())});
  std::string ignored;
  return test::run_command(argv, output ? output : &ignored, 30'000);
}

// A face's document; an empty object while blip is starting (a plain-text 503).
json document(const std::string& url) {
  json parsed = json::parse(test::http_request(url).body, nullptr, false);
  return parsed.is_discarded() ? json::object() : parsed;
}

// The bodies of every update of every incident in a face's incidents.json.
std::string all_bodies(const std::string& url) {
  std::string bodies;
  const json incidents = document(url)["incidents"];
  for (const json& incident : incidents.is_array() ? incidents : json::array()) {
    for (const json& update : incident["incident_updates"])
      bodies +=
          update["status"].get<std::string>() + ": " + update["body"].get<std::string>() + "\n";
  }
  return bodies;
}

bool both_faces_show(const test::Daemon& blip, const std::string& text) {
  return all_bodies(blip.feed_url("/api/v2/incidents.json")).find(text) != std::string::npos &&
         all_bodies(blip.public_url("/api/v2/incidents.json")).find(text) != std::string::npos;
}

TEST(OperatorNotes, NoteAndNoticeOnBothFacesAcrossARestart) {
  test::NginxServer nginx;
  test::TempDir dir;
  std::optional<test::Daemon> blip;
  blip.emplace(dir, config(nginx));
  ASSERT_TRUE(test::wait_for_port(blip->feed_port()));

  // A real incident: nginx frozen for 2 s.
  ASSERT_TRUE(test::wait_until(
      [&] {
        const json summary = document(blip->feed_url("/api/v2/summary.json"));
        return summary.contains("blip") && summary["blip"]["probes"][0]["state"] == "up";
      },
      10s))
      << document(blip->feed_url("/api/v2/summary.json")).dump() << blip->log();
  test::freeze_for(nginx, 2000ms);
  int64_t number = 0;
  ASSERT_TRUE(test::wait_until(
      [&] {
        const json incidents =
            document(blip->feed_url("/api/v2/summary.json"))["blip"]["recent_incidents"];
        if (incidents.empty() || incidents[0]["end"].is_null()) return false;
        number = incidents[0]["number"].get<int64_t>();
        return true;
      },
      15s))
      << blip->log();

  std::string output;
  EXPECT_EQ(blip_cli(*blip, dir,
                     {"incident", "note", std::to_string(number), "--status", "identified", kNote},
                     &output),
            0)
      << output;
  EXPECT_NE(output.find(fmt::format("noted on incident {}", number)), std::string::npos) << output;
  ASSERT_TRUE(test::wait_until([&] { return both_faces_show(*blip, kNote); }, 5s))
      << all_bodies(blip->public_url("/api/v2/incidents.json"));
  EXPECT_NE(all_bodies(blip->public_url("/api/v2/incidents.json"))
                .find(std::string("identified: ") + kNote),
            std::string::npos);

  // Refused: a wrong token (exit 1, counted as a guess, nothing stored), an unknown incident
  // (1), a bad status and an empty text (2).
  dir.write("wrong-token", "operator-token-0000000000000000\n");
  EXPECT_EQ(blip_cli(*blip, dir,
                     {"incident", "note", std::to_string(number), "--status", "monitoring",
                      "words from a guesser", "--token-file", dir.file("wrong-token")},
                     &output),
            1)
      << output;
  EXPECT_NE(output.find("403"), std::string::npos) << output;
  EXPECT_EQ(blip_cli(*blip, dir, {"incident", "note", "999", "--status", "resolved", "x"}, &output),
            1)
      << output;
  EXPECT_NE(output.find("no incident 999"), std::string::npos) << output;
  EXPECT_EQ(
      blip_cli(*blip, dir, {"incident", "note", std::to_string(number), "--status", "fixed", "x"}),
      2);
  EXPECT_EQ(blip_cli(*blip, dir,
                     {"incident", "note", std::to_string(number), "--status", "resolved", ""}),
            2);
  EXPECT_EQ(blip_cli(*blip, dir, {"notice", "x", "--components", "mail"}, &output), 2) << output;
  // Wrong tokens take from the same per-client guess budget as unknown check-in tokens.
  long last_status = 0;
  for (int guess = 0; guess < 12 && last_status != 429; ++guess) {
    last_status =
        test::http_request(blip->feed_url("/api/operator/notices"), "POST",
                           {"Authorization: Bearer operator-token-guess-" + std::to_string(guess)})
            .status;
  }
  EXPECT_EQ(last_status, 429);
  EXPECT_GE(blip->metric("blip_feed_refused_total{face=\"private\",reason=\"token_guesses\"}"), 1);
  // The public face takes no words at all.
  EXPECT_EQ(test::http_request(blip->public_url("/api/operator/notices"), "POST",
                               {std::string("Authorization: Bearer ") + kOperatorToken})
                .status,
            405);

  // Notices: one for good, one for 4 s, each an incident of its own with impact none.
  EXPECT_EQ(blip_cli(*blip, dir, {"notice", kForever, "--components", "web"}, &output), 0)
      << output;
  EXPECT_EQ(blip_cli(*blip, dir, {"notice", kShort, "--until", "4s"}, &output), 0) << output;
  ASSERT_TRUE(test::wait_until(
      [&] { return both_faces_show(*blip, kForever) && both_faces_show(*blip, kShort); }, 5s));
  for (const std::string& url : {blip->feed_url("/api/v2/incidents/unresolved.json"),
                                 blip->public_url("/api/v2/incidents/unresolved.json")}) {
    size_t notices = 0;
    const json incidents = document(url)["incidents"];
    for (const json& incident : incidents.is_array() ? incidents : json::array()) {
      if (incident["impact"] == "none") ++notices;
    }
    EXPECT_EQ(notices, 2U) << url;
  }
  ASSERT_TRUE(test::wait_until([&] { return !both_faces_show(*blip, kShort); }, 8s))
      << "the short notice outlived its --until";
  EXPECT_TRUE(both_faces_show(*blip, kForever));
  EXPECT_FALSE(both_faces_show(*blip, "words from a guesser"));

  // Stored: a SIGTERM restart keeps every word.
  EXPECT_EQ(blip->stop(), 0);
  blip.reset();
  blip.emplace(dir, config(nginx));
  ASSERT_TRUE(test::wait_for_port(blip->feed_port()));
  ASSERT_TRUE(test::wait_until(
      [&] { return both_faces_show(*blip, kNote) && both_faces_show(*blip, kForever); }, 15s))
      << all_bodies(blip->public_url("/api/v2/incidents.json"));
  EXPECT_FALSE(both_faces_show(*blip, kShort));
  EXPECT_FALSE(both_faces_show(*blip, "words from a guesser"));
  EXPECT_EQ(blip->stop(), 0);
}

}  // namespace
}  // namespace blip
