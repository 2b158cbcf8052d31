// The log's values: hostile text (a target's error with quotes, '=', line
// breaks, "level=error", invalid UTF-8) stays one value of one field, in the
// text format and in JSON; through the formatter directly and through the real
// daemon with a Redis that answers with such an error.
#include "blip/core/logging.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "blip/core/sample.hpp"
#include "support/daemon.hpp"
#include "support/process.hpp"
#include "support/webhook_receiver.hpp"

namespace blip {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

TEST(LogValue, PlainWordsAsTheyAreEverythingElseAJsonString) {
  struct Case {
    const char* name;
    std::string given;
    std::string shown;
  };
  const std::vector<Case> cases = {
      {"a word", "web-health", "web-health"},
      {"a URL without '='", "http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"},
      {"empty (key= then a space)", "", ""},
      {"a space", "no answer", "\"no answer\""},
      {"a quote", "x\" y", "\"x\\\" y\""},
      {"an equals sign", "level=error", "\"level=error\""},
      {"a backslash", "C:\\temp", "\"C:\\\\temp\""},
      {"a line break and a tab", "one\ntwo\tthree\r", "\"one\\ntwo\\tthree\\r\""},
      {"ANSI and a bell", "\x1b[31mred\a", "\"\\u001b[31mred\\u0007\""},
      {"DEL", "a\x7f", "\"a\\u007f\""},
      {"UTF-8 kept", "caf\xc3\xa9", "\"caf\xc3\xa9\""},
      {"invalid UTF-8 replaced", "a\xff\xc3", "\"a\xef\xbf\xbd\xef\xbf\xbd\""},
      {"an overlong '/' replaced", "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
      {"C1 NEL escaped", "a\xc2\x85z", "\"a\\u0085z\""},
      {"RIGHT-TO-LEFT OVERRIDE escaped",
       "\xe2\x80\xae"
       "evil",
       "\"\\u202eevil\""},
      {"LINE SEPARATOR escaped", "a\xe2\x80\xa8z", "\"a\\u2028z\""},
  };
  for (const Case& c : cases) {
    const std::string shown = log_value(c.given);
    EXPECT_EQ(shown, c.shown) << c.name;
    if (!shown.empty() && shown.front() == '"') {
      // A quoted value is a JSON string literal: anything that reads JSON reads it back.
      const json parsed = json::parse(shown, nullptr, false);
      ASSERT_TRUE(parsed.is_string()) << c.name;
    }
  }
}

// What a hostile detail may look like, and what the detail field must then hold.
struct HostileDetail {
  const char* name;
  std::string detail;
  std::string expected;  // the same, but valid UTF-8
};

std::vector<HostileDetail> hostile_details() {
  return {
      {"a quote then fields", "no answer\" level=error probe=forged",
       "no answer\" level=error probe=forged"},
      {"fields alone", "a=b c=d", "a=b c=d"},
      {"level=error", "level=error", "level=error"},
      {"a quoted field", "\" detail=\"forged\" incident=99", "\" detail=\"forged\" incident=99"},
      {"a lone quote", "\"", "\""},
      {"a trailing backslash", "ends in \\", "ends in \\"},
      {"a backslash before a quote", "\\\" probe=forged", "\\\" probe=forged"},
      {"a line break with a forged line",
       "first\n2026-01-01T00:00:00.000Z error outage: opened probe=forged",
       "first\n2026-01-01T00:00:00.000Z error outage: opened probe=forged"},
      {"spaces and tabs", "  many   spaces\tand\ttabs  ", "  many   spaces\tand\ttabs  "},
      {"a JSON object", "{\"probe\":\"forged\",\"level\":\"error\"}",
       "{\"probe\":\"forged\",\"level\":\"error\"}"},
      {"invalid UTF-8", "bad \xff\xfe bytes \xc3",
       "bad \xef\xbf\xbd\xef\xbf\xbd bytes \xef\xbf\xbd"},
      {"Slack's control sequences", "<!channel> <https://evil.example|click> &amp;",
       "<!channel> <https://evil.example|click> &amp;"},
      {"empty", "", ""},
      {"ANSI", "\x1b[2J\x1b[31mred", "\x1b[2J\x1b[31mred"},
  };
}

std::vector<std::string> keys_of(const nlohmann::ordered_json& object) {
  std::vector<std::string> keys;
  for (const auto& item : object.items()) keys.push_back(item.key());
  return keys;
}

TEST(JsonLog, AHostileDetailNeverAddsRemovesOrChangesAField) {
  for (const HostileDetail& hostile : hostile_details()) {
    SCOPED_TRACE(hostile.name);
    const std::string message =
        log_message("outage: opened probe={} start={} error={} detail={} incident={}", "web",
                    "2026-11-25T14:00:03.250Z", "refused", hostile.detail, 7);
    // The text format's line: one line, whatever the detail held.
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find('\r'), std::string::npos) << message;
    const std::string line = json_log_line(spdlog::level::warn, 1'764'079'203'250, message);
    ASSERT_EQ(line.find('\n'), line.size() - 1) << "one JSON object, one line: " << line;
    auto parsed = nlohmann::ordered_json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << line;
    EXPECT_EQ(keys_of(parsed),
              (std::vector<std::string>{"time", "level", "component", "event", "probe", "start",
                                        "error", "detail", "incident", "message"}))
        << line;
    EXPECT_EQ(parsed["time"], "2025-11-25T14:00:03.250Z");
    EXPECT_EQ(parsed["level"], "warning");
    EXPECT_EQ(parsed["component"], "outage");
    EXPECT_EQ(parsed["event"], "opened");
    EXPECT_EQ(parsed["probe"], "web");
    EXPECT_EQ(parsed["start"], "2026-11-25T14:00:03.250Z");
    EXPECT_EQ(parsed["error"], "refused");
    EXPECT_EQ(parsed["detail"], hostile.expected) << line;
    EXPECT_EQ(parsed["incident"], "7");
    EXPECT_EQ(parsed["message"], message);
  }
}

TEST(JsonLog, AHostileValueInTheTextNeverBecomesAField) {
  for (const HostileDetail& hostile : hostile_details()) {
    SCOPED_TRACE(hostile.name);
    const std::string message =
        log_message("store: writing to a new database file {} as asked", hostile.detail);
    auto parsed = nlohmann::ordered_json::parse(json_log_line(spdlog::level::warn, 0, message),
                                                nullptr, false);
    ASSERT_TRUE(parsed.is_object());
    EXPECT_EQ(keys_of(parsed),
              (std::vector<std::string>{"time", "level", "component", "event", "message"}))
        << parsed.dump();
    EXPECT_EQ(parsed["event"], "writing");
  }
  // A value where the event would be is not the event.
  const auto parsed = json::parse(
      json_log_line(spdlog::level::err, 0, log_message("reload: {}", "opened probe=forged")));
  EXPECT_FALSE(parsed.contains("event")) << parsed.dump();
  EXPECT_FALSE(parsed.contains("probe")) << parsed.dump();
}

TEST(JsonLog, NumbersKeepTheirFormatAndTextTakesNoSpec) {
  EXPECT_EQ(
      log_message("store: wrote samples={} seconds={:.3f} ok={}", size_t{12}, 0.0123456, true),
      "store: wrote samples=12 seconds=0.012 ok=true");
  EXPECT_EQ(log_message("dns: cannot watch socket {}", -1), "dns: cannot watch socket -1");
  // A char is text, not a number.
  EXPECT_EQ(log_message("x: y c={}", '"'), "x: y c=\"\\\"\"");
}

// Every line blip logs is made by log_debug/info/warn/error or log_at, whose
// values go through log_value(); spdlog's own calls would let raw text in. And
// each format string starts with "component: event", never with a value.
TEST(Sources, EveryLogCallQuotesItsValuesAndStartsWithComponentAndEvent) {
  const std::regex spdlog_call(R"(spdlog::(trace|debug|info|warn|error|critical|log)\s*\()");
  const std::regex log_call(R"(\blog_(debug|info|warn|error|at)\s*\()");
  const std::regex literal_start(R"re(^"[a-z_]+: [a-z(])re");
  size_t calls = 0;
  for (const char* folder : {"src", "include"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(
             std::string(BLIP_SOURCE_DIR) + "/" + folder)) {
      const std::string extension = entry.path().extension().string();
      if (extension != ".cpp" && extension != ".hpp") continue;
      const std::string name = entry.path().filename().string();
      std::ifstream in(entry.path());
      std::stringstream buffer;
      buffer << in.rdbuf();
      const std::string text = buffer.str();
      if (name != "logging.cpp" && name != "logging.hpp") {
        EXPECT_FALSE(std::regex_search(text, spdlog_call))
            << entry.path() << " logs through spdlog directly";
      }
      if (name == "logging.hpp") continue;  // the functions' own definitions
      for (auto it = std::sregex_iterator(text.begin(), text.end(), log_call);
           it != std::sregex_iterator(); ++it) {
        const size_t quote = text.find('"', static_cast<size_t>(it->position() + it->length()));
        ASSERT_NE(quote, std::string::npos);
        const std::string start = text.substr(quote, 40);
        EXPECT_TRUE(std::regex_search(start, literal_start))
            << entry.path() << ": a log line must start with \"component: event\", not " << start;
        ++calls;
      }
    }
  }
  EXPECT_GT(calls, 40u) << "the scan found the call sites";
}

// ---- through the real daemon ------------------------------------------------

// A "Redis" that answers every read with the reply given in hex (an error with hostile text).
constexpr const char* kFakeRedis = R"py(
import socketserver, sys
reply = bytes.fromhex(sys.argv[2])
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while self.request.recv(4096):
            self.request.sendall(reply)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
)py";

std::string hex(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(JsonLog, AHostileRedisErrorStaysOneFieldInTheDaemonsLogAndTextInSlack) {
  test::TempDir dir;
  const std::string error_text =
      "ERR x\" level=error probe=forged detail= <!channel> <https://evil.example|click> & \xff\xfe "
      "end";
  const int redis_port = test::free_port();
  dir.write("redis.py", kFakeRedis);
  test::ChildProcess redis({"python3", dir.file("redis.py"), std::to_string(redis_port),
                            hex("-" + error_text + "\r\n")});
  test::WebhookReceiver receiver(dir);
  const int receiver_port = receiver.port();
  ASSERT_TRUE(test::wait_for_port(redis_port));
  const std::string config = fmt::format(
      "[[probe]]\nname = \"cache\"\ntype = \"redis\"\naddress = \"127.0.0.1:{}\"\ninterval = "
      "\"100ms\"\n\n"
      "[[alert]]\nname = \"chat\"\nkind = \"slack\"\ngroup = \"probe\"\nurl = "
      "\"http://127.0.0.1:{}/services/T0/B0/x\"\n",
      redis_port, receiver_port);
  test::Daemon blip(dir, config, {"--log-format", "json"});
  ASSERT_TRUE(test::wait_until([&] { return !receiver.received().empty(); }, 10s)) << blip.log();
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  const std::string expected_detail = sanitize_target_text("PING: " + error_text);
  size_t opened_lines = 0;
  for (const std::string& line : lines_of(blip.log())) {
    auto parsed = nlohmann::ordered_json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << "not one JSON object: " << line;
    EXPECT_FALSE(parsed.contains("forged")) << line;
    if (parsed.value("component", "") != "outage" || parsed.value("event", "") != "opened")
      continue;
    ++opened_lines;
    EXPECT_EQ(keys_of(parsed),
              (std::vector<std::string>{"time", "level", "component", "event", "probe", "start",
                                        "error", "detail", "incident", "message"}))
        << line;
    EXPECT_EQ(parsed["level"], "warning");
    EXPECT_EQ(parsed["probe"], "cache");
    EXPECT_EQ(parsed["detail"], expected_detail) << line;
  }
  EXPECT_EQ(opened_lines, 1u) << blip.log();

  const auto received = receiver.received();
  ASSERT_FALSE(received.empty());
  const json& slack = received[0].body;
  const std::string text = slack["text"];
  EXPECT_NE(text.find("&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; "),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find_first_of("<>"), std::string::npos)
      << "a mention or link reached Slack: " << text;
}

}  // namespace
}  // namespace blip
