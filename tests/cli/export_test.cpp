// `blip export` over a store written by hand: the fields of each format, CSV quoting, the
// OpenMetrics series (and promtool reading them), and the usage errors.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "blip/cli/commands.hpp"
#include "blip/store/store.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kSecond = 1'000;
// 2026-11-25T00:00:00Z; the range is the three minutes after it.
constexpr int64_t F = 1'795'564'800'000;
constexpr const char* kFrom = "2026-11-25T00:00:00Z";
constexpr const char* kTo = "2026-11-25T00:03:00Z";
constexpr const char* kDetail = "HTTP 503, body \"Service, Unavailable\"";
constexpr const char* kPromtool = "/usr/bin/promtool";

ProbeConfig probe_named(const std::string& name, const std::string& type) {
  ProbeConfig config;
  config.name = name;
  config.type = type;
  config.interval_ms = kSecond;
  config.target_display = "127.0.0.1:1";
  config.settings = TcpSettings{"127.0.0.1", "1"};
  return config;
}

// The store, as the recorder would have written it (vantage "vantage-a"):
//   web (http)  a sample a second over [F - 1m, F + 4m); down from F+60s to F+69s (error
//               http_status, kDetail), one outage [F+60s, F+70.012s) recovered (the answer
//               to the sample sent at F+70s ends it)
//   db (tcp)    a sample every 10 s over [F, F + 3m), all up
//   blind       loop_stall [F+120s, F+125s)
class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    Store store(db(), Store::Mode::read_write);
    store.set_vantage("vantage-a");
    const int64_t web = store.register_probe(probe_named("web", "http"));
    const int64_t data = store.register_probe(probe_named("db", "tcp"));
    for (int64_t k = -60; k < 240; ++k) {
      Sample sample;
      sample.sent_ms = F + k * kSecond;
      sample.latency_us = 12'340;  // stored in 10 µs units
      sample.phases = {1'000, 2'000, 3'500, 4'250};
      if (k >= 60 && k < 70) {
        sample.status = Status::down;
        sample.error = ErrorClass::http_status;
        sample.detail = kDetail;
      }
      store.add_sample(web, sample);
      if (k >= 0 && k < 180 && k % 10 == 0) {
        Sample up;
        up.sent_ms = F + k * kSecond;
        up.latency_us = 500;
        store.add_sample(data, up);
      }
    }
    OutageRow row;
    row.id = 1;
    row.probe_id = web;
    row.start_ms = F + 60 * kSecond;
    row.end_ms = F + 70 * kSecond + 12;
    row.error = ErrorClass::http_status;
    row.detail = kDetail;
    row.down_samples = 10;
    row.end_reason = "recovered";
    store.write_outage(row);
    store.add_blind_window({F + 120 * kSecond, F + 125 * kSecond, "loop_stall"});
    store.flush(F + 4 * kMinute);
  }

  std::string db() const { return dir_.file("blip.db"); }

  // Runs `blip export` in-process over the three minutes; its stdout, or fails.
  std::string exported(const std::string& format, const std::string& probe = "") {
    ExportOptions options;
    options.db_path = db();
    options.from = kFrom;
    options.to = kTo;
    options.probe = probe;
    options.format = format;
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(run_export(options, out, err), kExitOk) << err.str();
    EXPECT_EQ(err.str(), "");
    return out.str();
  }

  static std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  test::TempDir dir_;
};

TEST_F(Export, JsonLinesHoldEverySampleOfTheRangeProbeByProbe) {
  const auto lines = lines_of(exported("jsonl"));
  ASSERT_EQ(lines.size(), 18U + 180U);
  // Probes by name (db before web), each in send order.
  std::vector<nlohmann::json> rows;
  for (const std::string& line : lines) rows.push_back(nlohmann::json::parse(line));
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["probe"], i < 18 ? "db" : "web") << i;
    if (i > 0 && i != 18) {
      EXPECT_GT(rows[i]["sent_ms"].get<int64_t>(), rows[i - 1]["sent_ms"].get<int64_t>());
    }
  }
  const nlohmann::json& first_web = rows[18];
  EXPECT_EQ(first_web["sent_at"], "2026-11-25T00:00:00.000Z");
  EXPECT_EQ(first_web["sent_ms"], F);
  EXPECT_EQ(first_web["type"], "http");
  EXPECT_EQ(first_web["vantage"], "vantage-a");
  EXPECT_EQ(first_web["status"], "up");
  EXPECT_DOUBLE_EQ(first_web["latency_ms"].get<double>(), 12.34);
  EXPECT_EQ(first_web["phases"],
            nlohmann::json(
                {{"dns_ms", 1.0}, {"connect_ms", 2.0}, {"tls_ms", 3.5}, {"first_byte_ms", 4.25}}));
  EXPECT_TRUE(first_web["error"].is_null());
  EXPECT_EQ(first_web["detail"], "");
  const nlohmann::json& down = rows[18 + 60];
  EXPECT_EQ(down["sent_at"], "2026-11-25T00:01:00.000Z");
  EXPECT_EQ(down["status"], "down");
  EXPECT_EQ(down["error"], "http_status");
  EXPECT_EQ(down["detail"], kDetail);
  // The fields in the documented order.
  EXPECT_EQ(lines[18].substr(0, lines[18].find("\"probe\"")),
            fmt::format("{{\"sent_at\":\"2026-11-25T00:00:00.000Z\",\"sent_ms\":{},", F));
  EXPECT_EQ(rows.back()["sent_at"], "2026-11-25T00:02:59.000Z");
  // Only one probe.
  EXPECT_EQ(lines_of(exported("jsonl", "db")).size(), 18U);
}

TEST_F(Export, CsvQuotesDetailsWithCommasAndQuotes) {
  const auto lines = lines_of(exported("csv", "web"));
  ASSERT_EQ(lines.size(), 1U + 180U);
  EXPECT_EQ(lines[0],
            "sent_at,sent_ms,probe,type,vantage,status,latency_ms,dns_ms,connect_ms,tls_ms,"
            "first_byte_ms,error,detail");
  EXPECT_EQ(lines[1], fmt::format("2026-11-25T00:00:00.000Z,{},web,http,vantage-a,up,12.34,1,2,"
                                  "3.5,4.25,,",
                                  F));
  EXPECT_EQ(lines[1 + 60],
            fmt::format("2026-11-25T00:01:00.000Z,{},web,http,vantage-a,down,12.34,1,2,3.5,4.25,"
                        "http_status,\"HTTP 503, body \"\"Service, Unavailable\"\"\"",
                        F + kMinute));
}

TEST_F(Export, OpenMetricsHoldsTheSeriesTheSenderShips) {
  const std::string text = exported("openmetrics");
  const std::string web = "{probe=\"web\",type=\"http\",vantage=\"vantage-a\"}";
  const auto at = [](int64_t ms) { return fmt::format("{}.{:03}", ms / 1000, ms % 1000); };
  // blip_outage: 1 at each sample sent inside the outage (the ten down ones from its start,
  // and the one whose answer ends it), 0 at its end.
  std::string outage;
  for (int64_t k = 60; k <= 70; ++k)
    outage += fmt::format("blip_outage{} 1 {}\n", web, at(F + k * kSecond));
  outage += fmt::format("blip_outage{} 0 {}\n", web, at(F + 70 * kSecond + 12));
  EXPECT_NE(text.find("# TYPE blip_outage gauge\n" + outage + "# HELP blip_minute_samples"),
            std::string::npos)
      << text.substr(text.find("# TYPE blip_outage"), 2000);
  // blip_minute_samples at each minute's end: the three minutes of the range, 60 samples each.
  for (int minute = 1; minute <= 3; ++minute) {
    EXPECT_NE(
        text.find(fmt::format("blip_minute_samples{} 60 {}\n", web, at(F + minute * kMinute))),
        std::string::npos)
        << minute;
  }
  // Not the minute before the range (its samples are not in it), though its count is stamped
  // at the range's start.
  EXPECT_EQ(text.find(fmt::format("blip_minute_samples{} 60 {}\n", web, at(F))), std::string::npos);
  EXPECT_NE(text.find(fmt::format("blip_sample_up{} 0 {}\n", web, at(F + 65 * kSecond))),
            std::string::npos);
  EXPECT_NE(text.find(fmt::format("blip_sample_duration_seconds{} 0.01234 {}\n", web, at(F))),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE blip_blind gauge\n"
                      "blip_blind{reason=\"loop_stall\",vantage=\"vantage-a\"} 1 " +
                      at(F + 120 * kSecond) +
                      "\n"
                      "blip_blind{reason=\"loop_stall\",vantage=\"vantage-a\"} 0 " +
                      at(F + 125 * kSecond) + "\n# EOF\n"),
            std::string::npos);
  size_t up_points = 0;
  for (const std::string& line : lines_of(text)) up_points += line.starts_with("blip_sample_up{");
  EXPECT_EQ(up_points, 18U + 180U);
}

TEST_F(Export, PromtoolBuildsBlocksFromTheOpenMetrics) {
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " is not installed";
  dir_.write("export.om", exported("openmetrics"));
  std::string output;
  ASSERT_EQ(test::run_command({kPromtool, "tsdb", "create-blocks-from", "openmetrics",
                               dir_.file("export.om"), dir_.file("blocks")},
                              &output),
            0)
      << output;
  size_t blocks = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.file("blocks"))) {
    if (entry.is_directory() && std::filesystem::exists(entry.path() / "meta.json")) ++blocks;
  }
  EXPECT_GE(blocks, 1U) << output;
}

TEST_F(Export, UsageErrorsSayWhatIsWrongAndExitTwo) {
  const auto run = [&](ExportOptions options, std::string* message) {
    std::ostringstream out;
    std::ostringstream err;
    const int code = run_export(options, out, err);
    *message = err.str();
    EXPECT_EQ(out.str(), "");
    return code;
  };
  std::string message;
  ExportOptions missing;
  missing.db_path = dir_.file("missing.db");
  EXPECT_EQ(run(missing, &message), kExitUsage);
  EXPECT_NE(message.find("missing.db"), std::string::npos) << message;
  ExportOptions bad_time;
  bad_time.db_path = db();
  bad_time.from = "yesterday";
  EXPECT_EQ(run(bad_time, &message), kExitUsage);
  EXPECT_NE(message.find("--from: cannot read \"yesterday\""), std::string::npos) << message;
  ExportOptions bad_since;
  bad_since.db_path = db();
  bad_since.since = "soon";
  EXPECT_EQ(run(bad_since, &message), kExitUsage);
  EXPECT_TRUE(message.starts_with("--since: ")) << message;
  ExportOptions unknown;
  unknown.db_path = db();
  unknown.probe = "mail";
  EXPECT_EQ(run(unknown, &message), kExitUsage);
  EXPECT_NE(message.find("no probe named \"mail\""), std::string::npos) << message;
  EXPECT_NE(message.find("(known: db, web)"), std::string::npos) << message;
  ExportOptions format;
  format.db_path = db();
  format.format = "xml";
  EXPECT_EQ(run(format, &message), kExitUsage);
  EXPECT_NE(message.find("--format"), std::string::npos) << message;
}

// The command as installed: registered, its options read, its exit status.
TEST_F(Export, TheBinaryExportsAndRefusesAMissingDatabase) {
  std::string output;
  ASSERT_EQ(test::run_command({BLIP_BINARY, "export", "--db", db(), "--from", kFrom, "--to", kTo,
                               "--probe", "db", "--format", "csv"},
                              &output),
            0)
      << output;
  EXPECT_EQ(lines_of(output).size(), 1U + 18U) << output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "export", "--db", dir_.file("missing.db")}, &output),
            2);
  EXPECT_NE(output.find("missing.db"), std::string::npos) << output;
  EXPECT_EQ(test::run_command(
                {BLIP_BINARY, "export", "--db", db(), "--since", "1h", "--from", kFrom}, &output),
            2);
}

}  // namespace
}  // namespace blip
