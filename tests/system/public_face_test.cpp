// The two faces of a real `blip run`: the public face (`--public-listen`)
// serves the page and the Statuspage documents with nothing private in any
// byte, while the private face (`--listen`) still shows the operator
// everything; the private face answers only its own Host names and no other
// origin; the page on the public face renders in headless Chromium and asks
// nothing of the private face.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "support/chromium.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Daemon;
using test::TempDir;
using test::wait_until;

// Each private thing the stack below carries, marked so it can be found in any byte.
constexpr const char* kDsnUser = "mkuser7q";  // a DSN's user, also in the server's error text
constexpr const char* kDsnDatabase = "mkdatabase7q";  // a DSN's database
constexpr const char* kDsnPassword = "mkpassword7q";
constexpr const char* kPathToken = "mkpathtoken7q";    // a token in a URL's path (/bot<TOKEN>/)
constexpr const char* kQueryValue = "mkqueryvalue7q";  // a query value under an unlisted name
constexpr const char* kHeaderValue = "mkheader7q";     // a custom header's value
constexpr const char* kJobOutput = "mkjoboutput7q";    // a job's output
constexpr const char* kDbPath = "mkdbpath7q";          // the database file's path
constexpr const char* kTableName = "mktable7q";  // server text: a relation that does not exist
constexpr const char* kJobToken = "mkjobtoken7q-0123456789abcdef0123456789";

const std::vector<std::string> kMarkers{kDsnUser,    kDsnDatabase, kDsnPassword, kPathToken,
                                        kQueryValue, kHeaderValue, kJobOutput,   kDbPath,
                                        kTableName,  kJobToken};

std::string marked_stack(const test::NginxServer& nginx, const test::PostgresServer& postgres,
                         bool show_details) {
  return fmt::format(R"toml([page]
name = "Example status"
show_details = {5}

[[probe]]
name = "web-health"
display_name = "Web"
description = "The instance's web pages"
type = "http"
url = "http://127.0.0.1:{0}/bot{2}/health?ref={3}"
headers = {{ X-Api-Key = "{4}" }}
interval = "250ms"
timeout = "1s"
tags = ["frontend"]

[[probe]]
name = "db-login"
display_name = "Database"
type = "postgres"
dsn = "postgresql://{6}:{7}@127.0.0.1:{1}/{8}"
interval = "250ms"
timeout = "1s"

[[probe]]
name = "db-query"
type = "postgres"
dsn = "{9}"
query = "SELECT * FROM {10}"
interval = "250ms"
timeout = "1s"

[[job]]
name = "backup"
display_name = "Nightly backup"
period = "1h"
token = "{11}"
)toml",
                     nginx.port(), postgres.port(), kPathToken, kQueryValue, kHeaderValue,
                     show_details ? "true" : "false", kDsnUser, kDsnPassword, kDsnDatabase,
                     postgres.dsn(), kTableName, kJobToken);
}

// Every byte an HTTP answer carries, as one text: status, headers and body.
std::string everything(const test::HttpResponse& response) {
  std::string text = std::to_string(response.status) + "\n";
  for (const auto& [name, value] : response.headers) text += name + ": " + value + "\n";
  return text + response.body;
}

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& item : object.items()) keys.insert(item.key());
  return keys;
}

// Every route there is, known or not, with each method: what the public face may be asked.
std::vector<std::pair<std::string, std::string>> public_requests() {
  std::vector<std::pair<std::string, std::string>> requests;
  for (const char* path : {"/",
                           "/index.html",
                           "/status.json",
                           "/api/v2/summary.json",
                           "/api/v2/status.json",
                           "/api/v2/components.json",
                           "/api/v2/incidents.json",
                           "/api/v2/incidents/unresolved.json",
                           "/api/v2/scheduled-maintenances.json",
                           "/healthz",
                           "/metrics",
                           "/ping/",
                           "/nope",
                           "/api/v2/summary.json/",
                           "/../blip.db",
                           "/api/v2/summary.json?x=1",
                           "/badge/Web/status.svg",
                           "/badge/Web/uptime/24h.svg",
                           "/badge/Database/latency.svg",
                           "/badge/db-query/uptime/30d.svg",
                           "/badge/Nightly%20backup/shields.json",
                           "/badge/web-health/status.svg"}) {
    for (const char* method : {"GET", "HEAD", "OPTIONS", "POST", "DELETE"})
      requests.emplace_back(method, path);
  }
  requests.emplace_back("GET", std::string("/ping/") + kJobToken);
  requests.emplace_back("POST", std::string("/ping/") + kJobToken + "/0");
  return requests;
}

TEST(PublicFace, NoPrivateByteOnAnyRouteWhileThePrivateFaceShowsItAll) {
  test::NginxServer nginx;
  test::PostgresServer postgres;
  TempDir dir;
  std::filesystem::create_directories(dir.file(kDbPath));
  Daemon blip(dir, marked_stack(nginx, postgres, false), {"--allowed-hosts", "blip"},
              dir.file(std::string(kDbPath) + "/blip.db"));
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s));
  // A job run whose output carries a marker, through the private face.
  dir.write("output", fmt::format("dumping...\n{} done\n", kJobOutput));
  std::string curl;
  ASSERT_EQ(test::run_command(
                {"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                 "@" + dir.file("output"), blip.feed_url(fmt::format("/ping/{}/0", kJobToken))},
                &curl),
            0);
  EXPECT_EQ(curl, "200");

  // The operator's view has it all: targets, server text, job output.
  json summary;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto response = test::http_request(blip.feed_url("/api/v2/summary.json"));
        if (response.status != 200) return false;
        summary = json::parse(response.body);
        const std::string text = response.body;
        return summary["incidents"].size() == 1 && text.find(kJobOutput) != std::string::npos &&
               text.find(std::string("relation \\\"") + kTableName) != std::string::npos;
      },
      15s))
      << summary.dump(2);
  const std::string private_text = summary.dump();
  for (const char* shown : {kDsnUser, kDsnDatabase, kPathToken, kJobOutput, kTableName}) {
    EXPECT_NE(private_text.find(shown), std::string::npos) << shown << " is the operator's to see";
  }
  for (const char* secret : {kDsnPassword, kHeaderValue, kJobToken}) {
    EXPECT_EQ(private_text.find(secret), std::string::npos) << secret << " is no one's to see";
  }

  // The public view: every route, every method, errors included.
  for (const auto& [method, path] : public_requests()) {
    const auto response = test::http_request(blip.public_url(path), method);
    ASSERT_NE(response.status, 0) << method << " " << path << ": " << response.error;
    const std::string text = everything(response);
    for (const std::string& marker : kMarkers) {
      EXPECT_EQ(text.find(marker), std::string::npos)
          << method << " " << path << " shows " << marker << ":\n"
          << text;
    }
    EXPECT_EQ(text.find("not_running"), std::string::npos)
        << "a blind window's reason: " << method << " " << path;
  }
  for (const char* private_only : {"/healthz", "/metrics", "/ping/x"}) {
    EXPECT_EQ(test::http_request(blip.public_url(private_only)).status, 404) << private_only;
  }
  // A badge names a component as the public knows it; the probe's own name is the operator's.
  EXPECT_EQ(test::http_request(blip.public_url("/badge/Web/status.svg")).status, 200);
  EXPECT_EQ(test::http_request(blip.public_url("/badge/web-health/status.svg")).status, 404);
  const json open = json::parse(test::http_request(blip.public_url("/api/v2/summary.json")).body);
  EXPECT_EQ(keys_of(open["blip"]),
            (std::set<std::string>{"generated_at", "probes", "recent_incidents", "notices",
                                   "blind_windows", "days_from", "timeline", "minute_of_hour",
                                   "hour_of_week", "pattern"}));
  std::set<std::string> names;
  for (const json& component : open["components"]) {
    names.insert(component["name"]);
    if (component["name"] == "Web") {
      EXPECT_EQ(component["description"], "The instance's web pages");
    } else {
      EXPECT_TRUE(component["description"].is_null()) << component;
    }
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"frontend", "Web", "Database", "db-query", "Nightly backup"}));
  for (const json& probe : open["blip"]["probes"]) {
    std::set<std::string> allowed{"component_id",  "name",   "state",    "uptime",
                                  "first_seen_at", "outage", "brownout", "days"};
    for (const std::string& key : keys_of(probe))
      EXPECT_TRUE(allowed.contains(key)) << key << " in " << probe;
    if (probe["outage"].is_object()) {
      EXPECT_EQ(keys_of(probe["outage"]), (std::set<std::string>{"start", "duration_ms"}));
    }
  }
  for (const json& row : open["blip"]["timeline"]["outages"]) {
    EXPECT_EQ(keys_of(row), (std::set<std::string>{"component_id", "start", "end"})) << row;
  }
  ASSERT_EQ(open["incidents"].size(), 1U);
  for (const json& update : open["incidents"][0]["incident_updates"]) {
    EXPECT_TRUE(
        std::regex_match(update["body"].get<std::string>(),
                         std::regex(R"([A-Za-z -]+ went down( too, .+ after [A-Za-z -]+)?\.)")))
        << update["body"] << ": names and times only";
  }

  // The private face: no CORS, and only its own Host names (a DNS-rebinding guard).
  const auto private_answer = test::http_request(blip.feed_url("/api/v2/status.json"));
  EXPECT_EQ(private_answer.header("access-control-allow-origin"), "");
  EXPECT_EQ(
      test::http_request(blip.feed_url("/healthz"), "GET", {"Host: attacker.example:9185"}).status,
      421);
  EXPECT_EQ(test::http_request(blip.feed_url(std::string("/ping/") + kJobToken), "GET",
                               {"Host: attacker.example"})
                .status,
            421);
  EXPECT_EQ(test::http_request(blip.feed_url("/healthz"), "GET", {"Host: blip:9185"}).status, 200);
  EXPECT_EQ(test::http_request(blip.feed_url("/healthz"), "GET", {"Host: LOCALHOST"}).status, 200);
  EXPECT_EQ(test::http_request(blip.feed_url("/healthz"), "GET", {"Host: [::1]:9185"}).status, 200);
  // The public face is meant for any name a proxy gives it.
  const auto public_answer = test::http_request(blip.public_url("/api/v2/status.json"), "GET",
                                                {"Host: status.example.org"});
  EXPECT_EQ(public_answer.status, 200);
  EXPECT_EQ(public_answer.header("access-control-allow-origin"), "*");
  const std::string metrics = test::http_request(blip.feed_url("/metrics")).body;
  EXPECT_NE(metrics.find("blip_feed_refused_total{face=\"private\",reason=\"host\"} 2"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

TEST(PublicFace, ShowDetailsAddsErrorClassesButNeverServerText) {
  test::NginxServer nginx;
  test::PostgresServer postgres;
  TempDir dir;
  Daemon blip(dir, marked_stack(nginx, postgres, true));
  json open;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto response = test::http_request(blip.public_url("/api/v2/summary.json"));
        if (response.status != 200) return false;
        open = json::parse(response.body);
        return open["blip"]["timeline"]["outages"].size() >= 3;
      },
      15s))
      << open.dump(2);
  std::set<std::string> errors;
  for (const json& row : open["blip"]["timeline"]["outages"]) errors.insert(row["error"]);
  EXPECT_EQ(errors, (std::set<std::string>{"http_status", "auth", "query"}))
      << open["blip"]["timeline"];
  std::set<std::string> bodies;
  for (const json& update : open["incidents"][0]["incident_updates"]) bodies.insert(update["body"]);
  EXPECT_TRUE(std::any_of(bodies.begin(), bodies.end(), [](const std::string& body) {
    return body.ends_with(": http_status.") || body.ends_with(": auth.") ||
           body.ends_with(": query.");
  })) << json(bodies);
  const std::string text = open.dump();
  for (const std::string& marker : kMarkers)
    EXPECT_EQ(text.find(marker), std::string::npos) << marker;
  EXPECT_EQ(text.find("does not exist"), std::string::npos) << "server text";
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

using test::run_chromium;

TEST(PublicFace, ThePageRendersInChromiumAndAsksNothingOfThePrivateFace) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, fmt::format(R"toml([page]
name = "Example status"

[[probe]]
name = "web-health"
display_name = "Web"
type = "http"
url = "{0}"
interval = "250ms"
tags = ["frontend"]

[[probe]]
name = "streaming-port"
display_name = "Streaming"
type = "tcp"
address = "127.0.0.1:{1}"
interval = "250ms"
tags = ["frontend"]
)toml",
                               nginx.url("/health"), test::free_port()));
  ASSERT_TRUE(wait_until(
      [&] {
        const auto response = test::http_request(blip.public_url("/api/v2/summary.json"));
        return response.status == 200 &&
               json::parse(response.body)["blip"]["recent_incidents"].size() == 1;
      },
      15s));
  const std::string net_log = dir.file("net-log.json");
  std::string dom;
  ASSERT_EQ(run_chromium(dir, blip.public_url("/"), "--dump-dom", net_log, &dom), 0) << dom;
  EXPECT_NE(dom.find("data-ready=\"1\""), std::string::npos) << "the page rendered summary.json\n"
                                                             << dom;
  EXPECT_NE(dom.find("data-indicator=\"critical\""), std::string::npos) << dom;
  EXPECT_NE(dom.find("data-component=\"Web\" data-status=\"operational\""), std::string::npos)
      << dom;
  EXPECT_NE(dom.find("data-component=\"Streaming\" data-status=\"major_outage\""),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("data-component=\"frontend\" data-status=\"partial_outage\""),
            std::string::npos)
      << dom;
  EXPECT_NE(dom.find("first down: Streaming"), std::string::npos)
      << "the incident, by its component's public name";
  EXPECT_EQ(dom.find("streaming-port"), std::string::npos)
      << "the probe's own name is the operator's";
  const std::string requests = test::read_file(net_log);
  EXPECT_NE(requests.find(blip.public_url("/api/v2/summary.json")), std::string::npos)
      << "the net log shows the page's fetch";
  EXPECT_EQ(requests.find(fmt::format(":{}/", blip.feed_port())), std::string::npos)
      << "a request to the private face";
  std::string screenshot_output;
  EXPECT_EQ(run_chromium(dir, blip.public_url("/"), "--screenshot=" + dir.file("public.png"),
                         dir.file("net-log-2.json"), &screenshot_output),
            0)
      << screenshot_output;

  // A widget on another origin reads the public face, and cannot read the private one.
  const int widget_port = test::free_port();
  dir.write("widget/index.html",
            fmt::format(
                R"html(<!doctype html><html><body><div id="public">…</div><div id="private">…</div>
<script>
async function read(url, id) {{
  try {{
    const response = await fetch(url);
    document.getElementById(id).textContent = "read " + (await response.json()).status.indicator;
  }} catch (error) {{
    document.getElementById(id).textContent = "refused";
  }}
}}
read("{0}", "public");
read("{1}", "private");
</script></body></html>)html",
                blip.public_url("/api/v2/status.json"), blip.feed_url("/api/v2/status.json")));
  test::ChildProcess widget_server({"python3", "-m", "http.server", std::to_string(widget_port),
                                    "--bind", "127.0.0.1", "--directory", dir.file("widget")});
  ASSERT_TRUE(test::wait_for_port(widget_port));
  ASSERT_EQ(run_chromium(dir, fmt::format("http://127.0.0.1:{}/index.html", widget_port),
                         "--dump-dom", dir.file("net-log-3.json"), &dom),
            0)
      << dom;
  EXPECT_NE(dom.find("<div id=\"public\">read critical</div>"), std::string::npos) << dom;
  EXPECT_NE(dom.find("<div id=\"private\">refused</div>"), std::string::npos) << dom;
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

}  // namespace
}  // namespace blip
