// The operator's words (issue 21) on their own: the request bodies the private face takes,
// the token check, and how the Statuspage documents show notes and notices on both faces.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "blip/feed/history.hpp"
#include "blip/feed/operator_desk.hpp"
#include "blip/feed/status_feed.hpp"

namespace blip {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'796'000'000'000;  // 2026-11-29T...

TEST(OperatorText, RefusedNotMangled) {
  struct Case {
    const char* name;
    std::string text;
    bool fit;
  };
  const Case cases[] = {
      {"plain words", "the hourly VM snapshot locks the database disk", true},
      {"non-ASCII", "Datenbank gesperrt — Schnappschuss um :00", true},
      {"empty", "", false},
      {"only spaces", "   ", false},
      {"a line break", "one\ntwo", false},
      {"a tab", "one\ttwo", false},
      {"an escape", "red \x1b[31m", false},
      {"DEL", "a\x7f", false},
      {"a C1 control", "a\xc2\x85z", false},
      {"the longest", std::string(kMaxOperatorTextBytes, 'x'), true},
      {"one byte over", std::string(kMaxOperatorTextBytes + 1, 'x'), false},
  };
  for (const Case& c : cases)
    EXPECT_EQ(!operator_text_problem(c.text).has_value(), c.fit) << c.name;
}

TEST(OperatorBodies, NotesAndNotices) {
  ParsedNote note = parse_note_body(R"({"status":"identified","text":"disk lock"})", 7, kNow);
  ASSERT_TRUE(note.note) << note.problem;
  EXPECT_EQ(note.note->incident_id, 7);
  EXPECT_EQ(note.note->status, "identified");
  EXPECT_EQ(note.note->text, "disk lock");
  EXPECT_EQ(note.note->at_ms, kNow);
  struct Case {
    const char* body;
    const char* problem;
  };
  for (const Case& c : {
           Case{R"({"status":"fixed","text":"x"})", "\"status\" must be"},
           Case{R"({"text":"x"})", "\"status\" must be"},
           Case{R"({"status":"resolved"})", "\"text\""},
           Case{R"({"status":"resolved","text":"a\nb"})", "control character"},
           Case{R"({"status":"resolved","text":"x","extra":1})", "unknown key \"extra\""},
           Case{"not json", "JSON object"},
           Case{"[1]", "JSON object"},
           Case{"{\"status\":\"resolved\",\"text\":\"\xff\"}", "JSON object"},
       }) {
    ParsedNote bad = parse_note_body(c.body, 7, kNow);
    EXPECT_FALSE(bad.note) << c.body;
    EXPECT_NE(bad.problem.find(c.problem), std::string::npos) << c.body << ": " << bad.problem;
  }

  const std::set<std::string> known{"web", "db"};
  ParsedNotice notice = parse_notice_body(
      R"({"text":"upgrade at 22:00","components":["db","db"],"until_ms":1796000060000})", known,
      kNow);
  ASSERT_TRUE(notice.notice) << notice.problem;
  EXPECT_EQ(notice.notice->components, std::vector<std::string>{"db"});
  EXPECT_EQ(notice.notice->until_ms, 1'796'000'060'000);
  EXPECT_FALSE(parse_notice_body(R"({"text":"x"})", known, kNow).notice->until_ms);
  EXPECT_NE(parse_notice_body(R"({"text":"x","components":["mail"]})", known, kNow)
                .problem.find("mail is not a probe or job"),
            std::string::npos);
  EXPECT_NE(
      parse_notice_body(R"({"text":"x","until_ms":1})", known, kNow).problem.find("after now"),
      std::string::npos);
}

TEST(OperatorDesk, TokenAndRoutes) {
  OperatorDesk desk;
  EXPECT_FALSE(desk.authorized("Bearer anything")) << "no token configured: nothing opens";
  desk.set_token("operator-token-3b8e0c6d4a");
  EXPECT_TRUE(desk.authorized("Bearer operator-token-3b8e0c6d4a"));
  EXPECT_FALSE(desk.authorized("Bearer operator-token-3b8e0c6d4b"));
  EXPECT_FALSE(desk.authorized("operator-token-3b8e0c6d4a"));
  EXPECT_FALSE(desk.authorized(nullptr));
  // Not connected to a store yet: a fit body is told to retry, an unfit one why.
  EXPECT_EQ(
      desk.handle("/api/operator/incidents/3/notes", R"({"status":"resolved","text":"x"})", kNow)
          .status,
      503u);
  EXPECT_EQ(
      desk.handle("/api/operator/incidents/3/notes", R"({"status":"x","text":"x"})", kNow).status,
      400u);
  EXPECT_EQ(desk.handle("/api/operator/incidents/abc/notes", "{}", kNow).status, 400u);
  EXPECT_EQ(desk.handle("/api/operator/elsewhere", "{}", kNow).status, 404u);
}

// One probe, one incident of it (closed), a note on it, and a notice.
struct Fixture {
  std::vector<ComponentConfig> probes;
  PageConfig page;
  LiveSnapshot live;
  FeedHistory history;
  Fixture() {
    ComponentConfig web;
    web.name = "web";
    web.type = "http";
    web.display_name = "Web";
    web.target_display = "http://10.0.0.5:3000/health";
    probes.push_back(web);
    live.started_wall_ms = kNow - 3'600'000;
    live.probes.resize(1);
    Incident incident;
    incident.id = 4;
    OutageRecord outage;
    outage.id = 9;
    outage.incident_id = 4;
    outage.probe = "web";
    outage.start_ms = kNow - 600'000;
    outage.end_ms = kNow - 540'000;
    outage.end_reason = "recovered";
    outage.error = ErrorClass::timeout;
    outage.detail = "no answer within 1s from 10.0.0.5";
    incident.start_ms = outage.start_ms;
    incident.end_ms = outage.end_ms;
    incident.outages.push_back(outage);
    history.recent_incidents.push_back(incident);
    history.notes[4].push_back(
        {1, 4, "identified", "the hourly VM snapshot locks the database disk", kNow - 500'000});
    history.notices.push_back(
        {2, "database upgrade tonight at 22:00 UTC", {"web"}, kNow + 3'600'000, kNow - 60'000});
  }
  FeedView view(Audience audience) const { return {audience, probes, page, live, history, kNow}; }
};

TEST(StatuspageNotes, BothFacesShowTheOperatorsWords) {
  const Fixture fixture;
  for (Audience audience : {Audience::operator_view, Audience::public_view}) {
    const json incidents = json::parse(statuspage_incidents(fixture.view(audience), false));
    ASSERT_EQ(incidents["incidents"].size(), 2U) << incidents;
    // Newest first: the notice (posted a minute ago), then the incident.
    const json& notice = incidents["incidents"][0];
    EXPECT_EQ(notice["impact"], "none");
    EXPECT_EQ(notice["status"], "identified");
    EXPECT_EQ(notice["name"], "database upgrade tonight at 22:00 UTC");
    EXPECT_EQ(notice["components"].size(), 1U);
    ASSERT_EQ(notice["incident_updates"].size(), 1U);
    EXPECT_EQ(notice["incident_updates"][0]["body"], "database upgrade tonight at 22:00 UTC");
    EXPECT_EQ(notice["incident_updates"][0]["affected_components"][0]["name"], "Web");

    const json& incident = incidents["incidents"][1];
    EXPECT_EQ(incident["status"], "resolved");
    const json& updates = incident["incident_updates"];
    ASSERT_EQ(updates.size(), 3U) << updates;
    // The note came after blip's own updates; the resolution stays blip's.
    EXPECT_EQ(updates[0]["status"], "identified");
    EXPECT_EQ(updates[0]["body"], "the hourly VM snapshot locks the database disk");
    EXPECT_EQ(updates[0]["created_at"], updates[0]["display_at"]);
    EXPECT_EQ(updates[0]["affected_components"].size(), 0U);
    EXPECT_EQ(updates[1]["status"], "resolved");
    EXPECT_EQ(updates[2]["status"], "investigating");
    EXPECT_EQ(incident["updated_at"], updates[0]["created_at"]);

    const json summary = json::parse(statuspage_summary(fixture.view(audience)));
    EXPECT_EQ(summary["incidents"].size(), 1U) << "the notice is unresolved; the incident is over";
    EXPECT_EQ(summary["blip"]["recent_incidents"][0]["notes"][0]["body"],
              "the hourly VM snapshot locks the database disk");
    EXPECT_EQ(summary["blip"]["notices"][0]["components"], json::array({"Web"}));
    // Never on the public face: the target or the server's text.
    if (audience == Audience::public_view) {
      EXPECT_EQ(summary.dump().find("10.0.0.5"), std::string::npos);
    }
  }
}

TEST(StatuspageNotes, AnOpenIncidentSaysWhatTheOperatorLastSaid) {
  Fixture fixture;
  Incident& incident = fixture.history.recent_incidents[0];
  incident.end_ms.reset();
  incident.outages[0].end_ms.reset();
  fixture.history.notes[4].push_back({2, 4, "monitoring", "snapshot moved", kNow - 400'000});
  fixture.history.notes[4].push_back({3, 4, "resolved", "should be over", kNow - 300'000});
  const json unresolved =
      json::parse(statuspage_incidents(fixture.view(Audience::public_view), true));
  const json* open = nullptr;
  for (const json& listed : unresolved["incidents"])
    if (listed["impact"] != "none") open = &listed;
  ASSERT_TRUE(open) << unresolved;
  // "resolved" from the operator while the probe is still down: shown, but not the status.
  EXPECT_EQ((*open)["status"], "monitoring");
  EXPECT_FALSE((*open)["monitoring_at"].is_null());
  EXPECT_TRUE((*open)["resolved_at"].is_null());
  EXPECT_EQ((*open)["incident_updates"][0]["status"], "resolved");
}

TEST(StatuspageNotes, ALongNoticeIsNamedByItsFirstWords) {
  Fixture fixture;
  fixture.history.notices[0].text = std::string(60, 'a') + " " + std::string(60, 'b');
  const json incidents =
      json::parse(statuspage_incidents(fixture.view(Audience::public_view), false));
  EXPECT_EQ(incidents["incidents"][0]["name"], std::string(60, 'a') + "…");
  EXPECT_EQ(incidents["incidents"][0]["incident_updates"][0]["body"],
            fixture.history.notices[0].text);
}

}  // namespace
}  // namespace blip
