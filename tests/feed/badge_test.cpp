// The badge writer on its own: hostile names stay text, widths follow the
// text, paths name one badge, and a component's badge says what the documents
// say of it (state, uptime, latency).
#include "blip/feed/badge.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

namespace blip {
namespace {

// The width="…" of the <svg> element.
int svg_width(const std::string& svg) {
  std::smatch match;
  EXPECT_TRUE(std::regex_search(svg, match, std::regex(R"re(^<svg [^>]*width="(\d+)")re"))) << svg;
  return match.empty() ? 0 : std::stoi(match[1]);
}

// Every tag the writer may emit, in its order: anything else is markup that came from the text.
std::vector<std::string> tags_of(const std::string& svg) {
  std::vector<std::string> tags;
  const std::regex tag(R"(<(/?[a-zA-Z]+))");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator();
       ++it)
    tags.push_back((*it)[1]);
  return tags;
}

const std::vector<std::string> kBadgeTags{
    "svg",  "title", "/title", "clipPath", "rect", "/clipPath", "g",    "rect",  "rect", "/g",  "g",
    "text", "/text", "text",   "/text",    "text", "/text",     "text", "/text", "/g",   "/svg"};

TEST(BadgeSvg, HostileNamesStayText) {
  const Badge badge{"<script>alert(1)</script>&\"'", "</svg><svg onload=x>", badge_color::kRed};
  const std::string svg = badge_svg(badge);
  EXPECT_EQ(tags_of(svg), kBadgeTags) << svg;
  EXPECT_EQ(svg.find("<script"), std::string::npos) << svg;
  auto count = [&](const std::string& text) {
    size_t found = 0;
    for (size_t at = svg.find(text); at != std::string::npos; at = svg.find(text, at + 1)) ++found;
    return found;
  };
  EXPECT_EQ(count("onload"), count("&lt;/svg&gt;&lt;svg onload=x&gt;")) << svg;
  EXPECT_NE(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;"), std::string::npos)
      << svg;
  // Inside attributes too (aria-label): no quote of the text ends one.
  EXPECT_NE(svg.find(R"(aria-label="&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;: )"),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("fill=\"#e05d44\""), std::string::npos) << "red's hex";
}

TEST(BadgeSvg, XmlCannotCarryControlsOrBrokenUtf8) {
  struct Case {
    const char* name;
    std::string text;
    std::string escaped;
  };
  const std::vector<Case> cases{
      {"plain", "Web", "Web"},
      {"accents and CJK kept", "Café 東京", "Café 東京"},
      {"emoji kept", "\xF0\x9F\x9A\x80", "\xF0\x9F\x9A\x80"},
      {"NUL and escape", std::string("a\0b\x1b", 4),
       "a\xEF\xBF\xBD"
       "b\xEF\xBF\xBD"},
      {"stray continuation byte", "a\x80z", "a\xEF\xBF\xBDz"},
      {"cut sequence at the end", "a\xE6\x9D", "a\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"overlong slash", "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"surrogate", "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"U+FFFF", "\xEF\xBF\xBF", "\xEF\xBF\xBD"},
      {"tab kept", "a\tb", "a\tb"},
  };
  for (const Case& c : cases) EXPECT_EQ(xml_escaped(c.text), c.escaped) << c.name;
}

TEST(BadgeSvg, WidthGrowsWithTheText) {
  auto width = [](const std::string& label, const std::string& message) {
    return svg_width(badge_svg({label, message, badge_color::kBrightGreen}));
  };
  EXPECT_LT(width("a", "up"), width("aa", "up"));
  EXPECT_LT(width("aa", "up"), width("aaaaaaaa", "up"));
  EXPECT_LT(width("Web", "up"), width("Web", "degraded"));
  // Per character, not per byte or per glyph count alone.
  EXPECT_LT(badge_text_width("iiii"), badge_text_width("WWWW"));
  EXPECT_DOUBLE_EQ(badge_text_width("é"), badge_text_width("e"));
  EXPECT_GT(badge_text_width("東京"), badge_text_width("ab"));
  // DejaVu Sans at 11 px as Chromium measures it: "Web uptime 24h" is 90.75 px with kerning.
  EXPECT_NEAR(badge_text_width("Web uptime 24h"), 90.75, 1.0);
  // 5 px either side of each half's text, the text's width rounded up.
  EXPECT_EQ(width("", ""), 20);
  EXPECT_EQ(width("Web", "up"), 20 + static_cast<int>(std::ceil(badge_text_width("Web"))) +
                                    static_cast<int>(std::ceil(badge_text_width("up"))));
}

TEST(BadgeSvg, ShieldsEndpointSchema) {
  const auto document = nlohmann::json::parse(
      badge_shields_json({"Tom & \"Jerry\"", "up", badge_color::kBrightGreen}));
  EXPECT_EQ(document, (nlohmann::json{{"schemaVersion", 1},
                                      {"label", "Tom & \"Jerry\""},
                                      {"message", "up"},
                                      {"color", "brightgreen"}}));
  // Broken UTF-8 in a name does not make the document unreadable.
  EXPECT_NO_THROW(nlohmann::json::parse(badge_shields_json({"a\xff", "up", badge_color::kRed})));
}

TEST(BadgePath, EachEndingNamesOneBadge) {
  struct Case {
    std::string path;
    std::optional<std::string> component;
    BadgeKind kind = BadgeKind::status;
  };
  const std::vector<Case> cases{
      {"/badge/Web/status.svg", "Web", BadgeKind::status},
      {"/badge/Web/uptime/24h.svg", "Web", BadgeKind::uptime_24h},
      {"/badge/Web/uptime/7d.svg", "Web", BadgeKind::uptime_7d},
      {"/badge/Web/uptime/30d.svg", "Web", BadgeKind::uptime_30d},
      {"/badge/Web/latency.svg", "Web", BadgeKind::latency},
      {"/badge/Web/shields.json", "Web", BadgeKind::shields},
      {"/badge/Tom & Jerry/status.svg", "Tom & Jerry", BadgeKind::status},
      {"/badge/a/b/status.svg", "a/b", BadgeKind::status},
      {"/badge/x/uptime/status.svg", "x/uptime", BadgeKind::status},
      {"/badge/x/uptime/uptime/7d.svg", "x/uptime", BadgeKind::uptime_7d},
      {"/badge//status.svg", std::nullopt},
      {"/badge/status.svg", std::nullopt},
      {"/badge/Web/uptime/1h.svg", std::nullopt},
      {"/badge/Web/uptime.svg", std::nullopt},
      {"/badge/Web/status.png", std::nullopt},
      {"/badges/Web/status.svg", std::nullopt},
      {"/badge/Web", std::nullopt},
  };
  for (const Case& c : cases) {
    const auto parsed = parse_badge_path(c.path);
    ASSERT_EQ(parsed.has_value(), c.component.has_value()) << c.path;
    if (!parsed) continue;
    EXPECT_EQ(parsed->component, *c.component) << c.path;
    EXPECT_EQ(parsed->kind, c.kind) << c.path;
  }
}

TEST(BadgeUptime, NeverRoundedUp) {
  EXPECT_EQ(badge_uptime_text(1.0), "100%");
  EXPECT_EQ(badge_uptime_text(0.99999), "99.99%");
  EXPECT_EQ(badge_uptime_text(0.9995), "99.95%");
  EXPECT_EQ(badge_uptime_text(0.5), "50.00%");
  EXPECT_EQ(badge_uptime_text(0.0), "0.00%");
}

// One probe and one job, their live states and history as the feed would hold them.
struct Fixture {
  std::vector<ComponentConfig> probes;
  PageConfig page;
  LiveSnapshot live;
  FeedHistory history;

  Fixture() {
    ComponentConfig web;
    web.name = "web-health";
    web.display_name = "Web";
    web.type = "http";
    ComponentConfig backup;
    backup.kind = ComponentKind::job;
    backup.name = "backup";
    backup.type = "job";
    probes = {web, backup};
    live.probes.resize(2);
    Sample sample;
    sample.status = Status::up;
    sample.latency_us = 42'400;
    live.probes[0].last_sample = sample;
    live.probes[1].last_sample = sample;
    ProbeSummary day{.probe = "web-health", .observed_ms = 100'000, .down_ms = 1'000};
    history.day["web-health"] = day;
    ProbeSummary week{.probe = "web-health", .observed_ms = 1'000'000, .down_ms = 10};
    history.week["web-health"] = week;
  }
  Badge badge(size_t index, BadgeKind kind) const {
    const FeedView view{Audience::public_view, probes, page, live, history, 0};
    return component_badge(view, index, kind);
  }
};

// What a badge says, as one line: "label | message | colour".
std::string said(const Badge& badge) {
  return badge.label + " | " + badge.message + " | " + std::string(badge.color);
}

TEST(ComponentBadge, SaysWhatTheDocumentsSay) {
  Fixture fixture;
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::status)), "Web | up | brightgreen");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::shields)), "Web | up | brightgreen");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::uptime_24h)), "Web uptime 24h | 99.00% | green");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::uptime_7d)), "Web uptime 7d | 99.99% | brightgreen");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::uptime_30d)), "Web uptime 30d | no data | lightgrey");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::latency)), "Web latency | 42 ms | brightgreen");
  EXPECT_EQ(said(fixture.badge(1, BadgeKind::latency)), "backup latency | n/a | lightgrey")
      << "a job has no latency";

  fixture.history.month.summaries.push_back(
      {.probe = "web-health", .observed_ms = 1'000, .down_ms = 1'000});
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::uptime_30d)), "Web uptime 30d | 0.00% | red");

  fixture.live.probes[0].open_brownout_start_ms = 1;
  fixture.live.probes[0].last_sample->status = Status::degraded;
  fixture.live.probes[0].last_sample->latency_us = 1'500'000;
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::status)), "Web | degraded | yellow");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::latency)), "Web latency | 1500 ms | yellow");

  fixture.live.probes[0].open_outage = OutageTransition{};
  fixture.live.probes[0].last_sample->status = Status::down;
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::status)), "Web | down | red");
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::latency)), "Web latency | down | red");

  fixture.live.probes[0].in_maintenance = true;
  EXPECT_EQ(said(fixture.badge(0, BadgeKind::status)), "Web | maintenance | blue");

  fixture.live.probes[1].last_sample.reset();
  EXPECT_EQ(said(fixture.badge(1, BadgeKind::status)), "backup | unknown | lightgrey")
      << "before its first sample";
}

}  // namespace
}  // namespace blip
