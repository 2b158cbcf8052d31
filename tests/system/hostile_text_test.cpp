// Text from targets and secrets in targets: a server error message carrying
// ANSI escapes and a spreadsheet formula, and a URL with an access token,
// through every place blip shows them (log, once, report as table, JSON and
// CSV, the feed).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "blip/core/sample.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

TEST(TargetText, ControlCharactersGoInvalidUtf8IsReplacedAndLengthIsCapped) {
  EXPECT_EQ(sanitize_target_text("\x1b[31mred\x1b[0m"), "[31mred[0m");
  EXPECT_EQ(sanitize_target_text("one\r\ntwo\tthree\n"), "one two three");
  EXPECT_EQ(sanitize_target_text("bell\x07 del\x7f nul", 100), "bell del nul");
  EXPECT_EQ(sanitize_target_text(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(sanitize_target_text("C1 \xc2\x9b"
                                 "31m"),
            "C1 31m")
      << "U+009B is a one-character CSI";
  EXPECT_EQ(sanitize_target_text("f\xc3\xbc\x72 gr\xc3\xb6\xc3\x9f\x65"),
            "f\xc3\xbcr gr\xc3\xb6\xc3\x9f"
            "e");
  EXPECT_EQ(sanitize_target_text("bad \xff\xc0\x80 end"),
            "bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_EQ(sanitize_target_text("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd")
      << "a surrogate";
  const std::string long_text(1000, 'x');
  const std::string capped = sanitize_target_text(long_text, 50);
  EXPECT_EQ(capped, std::string(47, 'x') + "\xe2\x80\xa6");
  // Cut on a character boundary: 2-byte characters never split.
  std::string umlauts;
  for (int i = 0; i < 100; ++i) umlauts += "\xc3\xbc";
  const std::string cut = sanitize_target_text(umlauts, 50);
  EXPECT_LE(cut.size(), 50U);
  EXPECT_EQ(cut.substr(cut.size() - 3), "\xe2\x80\xa6");
  EXPECT_EQ(sanitize_target_text(cut), cut) << "valid UTF-8";
  EXPECT_EQ(sanitize_target_text(std::string(50, 'y'), 50), std::string(50, 'y'))
      << "exactly the cap is kept";
}

bool has_control_characters(const std::string& text) {
  for (char c : text) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

TEST(TargetText, HostileDetailsAndSecretTokensAreSafeEverywhereTheyAreShown) {
  test::PostgresServer postgres;
  test::NginxServer nginx;
  test::TempDir dir;
  const std::string token = "TOKEN-4f9a2c-never-shown";
  // The server's error message: an ANSI colour, a bell, a line break and a formula first ($$ is
  // blip's escaped $).
  const std::string config = fmt::format(
      R"([[probe]]
name = "db-evil"
type = "postgres"
dsn = "{dsn}"
query = '''DO $$$$BEGIN RAISE EXCEPTION E'=HYPERLINK("http://evil.example","x")\x1b[31m red\x1b[0m\x07\nsecond line'; END$$$$'''
interval = "100ms"
timeout = "1s"

[[probe]]
name = "web-token"
type = "http"
url = "{url}?access_token={token}&page=2"
expect_status = [200]
interval = "100ms"
timeout = "1s"
)",
      fmt::arg("dsn", postgres.dsn()), fmt::arg("url", nginx.url("/no-such-page")),
      fmt::arg("token", token));
  test::Daemon blip(dir, config);
  std::this_thread::sleep_for(2500ms);
  std::vector<std::string> shown;
  for (const char* path :
       {"/api/v2/summary.json", "/api/v2/components.json", "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json", "/metrics", "/"}) {
    shown.push_back(test::http_request(blip.feed_url(path)).body);
  }
  const std::string summary = shown[0];
  ASSERT_EQ(blip.stop(), 0) << blip.log();
  const std::string log = blip.log();
  EXPECT_NE(log.find("=HYPERLINK"), std::string::npos) << "the detail reaches the log: " << log;
  shown.push_back(log);

  std::string once;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "once", "-c", dir.file("probes.d")}, &once), 1) << once;
  EXPECT_NE(once.find("access_token=***&page=2"), std::string::npos) << once;
  shown.push_back(once);
  std::string table, json, csv;
  for (auto [format, output] :
       {std::pair{"table", &table}, std::pair{"json", &json}, std::pair{"csv", &csv}}) {
    ASSERT_EQ(test::run_command(
                  {BLIP_BINARY, "report", "--db", blip.db(), "--since", "1h", "--format", format},
                  output),
              0)
        << *output;
    shown.push_back(*output);
  }
  EXPECT_NE(table.find("=HYPERLINK"), std::string::npos) << table;
  EXPECT_NE(csv.find("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")[31m red[0m second line"),
            std::string::npos)
      << "the CSV cell starts with an apostrophe, not a formula: " << csv;
  EXPECT_NE(summary.find("web-token"), std::string::npos) << summary;
  for (const std::string& text : shown) {
    EXPECT_EQ(text.find(token), std::string::npos) << text;
    EXPECT_FALSE(has_control_characters(text)) << text;
  }
}

}  // namespace
}  // namespace blip
