// `blip report --prometheus` against a real Prometheus 2.42 and a real VictoriaMetrics
// on loopback, each fed the same hand-made series of three vantage points by
// remote-write (blip's own encode_write_request): one outage seen from a, b and c, one
// from a alone, one from b alone while c was blind. The same JSON from both engines.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "blip/core/clock.hpp"
#include "blip/fleet/prometheus_source.hpp"
#include "blip/remote/series.hpp"
#include "support/engines.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kSecond = 1'000;
constexpr int64_t kInterval = 250;  // the vantages' probing interval

using Labels = std::vector<std::pair<std::string, std::string>>;

Series probe_series(const std::string& metric, const std::string& probe,
                    const std::string& vantage) {
  return {metric, Labels{{"probe", probe}, {"type", "http"}, {"vantage", vantage}}, {}};
}

// What blip ships for one vantage's outage: 1 at each sample inside it, 0 at its end.
void outage_points(Series& series, int64_t start, int64_t end) {
  for (int64_t ms = start; ms < end; ms += kInterval) series.points.push_back({ms, 1});
  series.points.push_back({end, 0});
}

// The fleet's quarter of an hour from `begin` (a minute's start, some minutes ago:
// Prometheus takes nothing older than about an hour before its newest sample).
struct FleetHistory {
  int64_t begin = 0;
  int64_t quorum_start = 0;  // a, b and c down for 4 s, each from its own sample
  int64_t local_start = 0;   // a alone down for 4 s
  int64_t blind_start = 0;   // c blind for a minute; b alone down inside it
  std::vector<Series> series;

  explicit FleetHistory(int64_t begin_ms) : begin(begin_ms) {
    quorum_start = begin + 3 * kMinute;
    local_start = begin + 8 * kMinute + 37;
    blind_start = begin + 11 * kMinute;
    for (const std::string vantage : {"a", "b", "c"}) {
      for (const std::string probe : {"db", "web"}) {
        Series minutes = probe_series("blip_minute_samples", probe, vantage);
        for (int m = 0; m < 15; ++m) minutes.points.push_back({begin + (m + 1) * kMinute, 240});
        series.push_back(std::move(minutes));
      }
    }
    Series a = probe_series("blip_outage", "web", "a");
    Series b = probe_series("blip_outage", "web", "b");
    Series c = probe_series("blip_outage", "web", "c");
    outage_points(a, quorum_start + 120, quorum_start + 4'120);
    outage_points(b, quorum_start + 250, quorum_start + 4'250);
    outage_points(c, quorum_start + 180, quorum_start + 4'180);
    outage_points(a, local_start, local_start + 4 * kSecond);
    outage_points(b, blind_start + 10 * kSecond + 5, blind_start + 14 * kSecond + 5);
    series.push_back(std::move(a));
    series.push_back(std::move(b));
    series.push_back(std::move(c));
    Series blind{"blip_blind", Labels{{"reason", "loop_stall"}, {"vantage", "c"}}, {}};
    blind.points = {{blind_start, 1}, {blind_start + kMinute, 0}};
    series.push_back(std::move(blind));
  }

  std::vector<std::string> report_args(const std::string& url, const std::string& format) const {
    return {BLIP_BINARY,    "report",
            "--prometheus", url,
            "--from",       format_iso8601_ms(begin),
            "--to",         format_iso8601_ms(begin + 15 * kMinute),
            "--format",     format};
  }
};

int64_t minute_start(int64_t ms) { return ms - ms % kMinute; }

nlohmann::json report_json(const std::vector<std::string>& args) {
  std::string output;
  const int status = test::run_command(args, &output);
  if (status != 0) return {{"exit", status}, {"output", output}};
  return nlohmann::json::parse(output, nullptr, false);
}

// Reports until the engine shows every outage (VictoriaMetrics makes new samples
// searchable after a flush), then the last answer.
nlohmann::json settled_report(const FleetHistory& history, const std::string& url) {
  nlohmann::json json;
  test::wait_until(
      [&] {
        json = report_json(history.report_args(url, "json"));
        return json.contains("outages") && json["outages"].size() == 3 &&
               json["vantages"].size() == 3 && json["probes"].size() == 2;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(500));
  return json;
}

void expect_fleet(const nlohmann::json& json, const FleetHistory& history) {
  ASSERT_TRUE(json.contains("outages")) << json.dump(2);
  ASSERT_EQ(json["outages"].size(), 3u) << json.dump(2);
  const nlohmann::json& quorum = json["outages"][0];
  EXPECT_EQ(quorum["probe"], "web");
  EXPECT_EQ(quorum["quorum"], true);
  EXPECT_EQ(quorum["seen_from"], nlohmann::json({"a", "b", "c"}));
  EXPECT_EQ(quorum["observed_by"], nlohmann::json({"a", "b", "c"}));
  // Down from two vantages at once (c's sample at +180 ms) until two were up again (+4180 ms).
  EXPECT_EQ(quorum["start"], format_iso8601_ms(history.quorum_start + 180));
  EXPECT_EQ(quorum["end"], format_iso8601_ms(history.quorum_start + 4'180));
  EXPECT_EQ(quorum["duration_ms"], 4'000);
  ASSERT_EQ(quorum["vantage_outages"].size(), 3u);
  EXPECT_EQ(quorum["vantage_outages"][0]["start"], format_iso8601_ms(history.quorum_start + 120));
  EXPECT_EQ(quorum["vantage_outages"][2]["end"], format_iso8601_ms(history.quorum_start + 4'250));

  const nlohmann::json& local = json["outages"][1];
  EXPECT_EQ(local["quorum"], false);
  EXPECT_EQ(local["seen_from"], nlohmann::json({"a"}));
  EXPECT_EQ(local["observed_by"], nlohmann::json({"a", "b", "c"}));
  EXPECT_EQ(local["start"], format_iso8601_ms(history.local_start));
  EXPECT_EQ(local["end"], format_iso8601_ms(history.local_start + 4 * kSecond));
  EXPECT_EQ(local["note"],
            "web: only from vantage a (b and c saw it up) — a fault at a or on its path");

  const nlohmann::json& while_blind = json["outages"][2];
  EXPECT_EQ(while_blind["quorum"], false);
  EXPECT_EQ(while_blind["seen_from"], nlohmann::json({"b"}));
  EXPECT_EQ(while_blind["observed_by"], nlohmann::json({"a", "b"}));  // c was blind
  EXPECT_EQ(while_blind["start"], format_iso8601_ms(history.blind_start + 10 * kSecond + 5));

  // Uptime runs on the quorum outage alone.
  ASSERT_EQ(json["probes"].size(), 2u);
  EXPECT_EQ(json["probes"][1]["probe"], "web");
  EXPECT_EQ(json["probes"][1]["outages"], 1);
  EXPECT_EQ(json["probes"][1]["down_ms"], 4'000);
  EXPECT_EQ(json["probes"][1]["observed_ms"], 15 * kMinute);
  EXPECT_EQ(json["probes"][0]["outages"], 0);
  ASSERT_EQ(json["vantages"].size(), 3u);
  EXPECT_EQ(json["vantages"][0]["local_faults"], 1);
  EXPECT_EQ(json["vantages"][2]["blind_ms"], kMinute);
  EXPECT_EQ(json["vantages"][2]["samples"], 2 * 15 * 240);
}

class FleetReport : public ::testing::Test {
 protected:
  // Minutes ago, so that every minute of it has been shipped.
  FleetHistory history_{minute_start(wall_now_ms()) - 20 * kMinute};
};

TEST_F(FleetReport, PrometheusAndVictoriaMetricsGiveTheSameFleetReport) {
  test::Engine prometheus(test::prometheus_receiver());
  test::Engine victoria(test::victoria_metrics());
  ASSERT_EQ(test::remote_write(prometheus.write_url(), history_.series), 204);
  ASSERT_EQ(test::remote_write(victoria.write_url(), history_.series), 204);

  const nlohmann::json from_prometheus = settled_report(history_, prometheus.url());
  const nlohmann::json from_victoria = settled_report(history_, victoria.url());
  expect_fleet(from_prometheus, history_);
  expect_fleet(from_victoria, history_);
  // The whole report, not only the fields above, except where it came from.
  nlohmann::json a = from_prometheus;
  nlohmann::json b = from_victoria;
  a.erase("source");
  b.erase("source");
  EXPECT_EQ(a, b) << "prometheus:\n" << a.dump(2) << "\nvictoria-metrics:\n" << b.dump(2);

  // Up to now (--since): the minute going on and the evaluation time in the future of the
  // last minute's count are no trouble to either engine.
  for (const std::string& url : {prometheus.url(), victoria.url()}) {
    const nlohmann::json recent = report_json(
        {BLIP_BINARY, "report", "--prometheus", url, "--since", "30m", "--format", "json"});
    EXPECT_EQ(recent["outages"], from_prometheus["outages"]) << url << "\n" << recent.dump(2);
  }

  // A range that begins inside the quorum outage: its start is found before the range.
  auto late = history_.report_args(victoria.url(), "json");
  late[5] = format_iso8601_ms(history_.quorum_start + 2 * kSecond);
  for (const std::string& url : {prometheus.url(), victoria.url()}) {
    late[3] = url;
    const nlohmann::json json = report_json(late);
    ASSERT_EQ(json["outages"].size(), 3u) << json.dump(2);
    EXPECT_EQ(json["outages"][0]["start"], format_iso8601_ms(history_.quorum_start + 180));
    EXPECT_EQ(json["probes"][1]["down_ms"], 2'180) << url;
    EXPECT_EQ(json["minute_of_hour"]["outage_starts"][(history_.quorum_start / kMinute) % 60], 0);
  }

  // Raw points read a minute at a time: the minute counts sit exactly on the chunks' edges
  // (Prometheus 2.42 includes a range's start, VictoriaMetrics does not); each comes once.
  for (const std::string& url : {prometheus.url(), victoria.url()}) {
    PrometheusSource source(url);
    const auto minutes = source.raw_points("blip_minute_samples{vantage=\"b\",probe=\"web\"}",
                                           history_.begin, history_.begin + 15 * kMinute, kMinute);
    ASSERT_EQ(minutes.size(), 1u) << url;
    ASSERT_EQ(minutes[0].points.size(), 15u) << url;
    EXPECT_EQ(minutes[0].points.front().ms, history_.begin + kMinute);
    EXPECT_EQ(minutes[0].points.back().ms, history_.begin + 15 * kMinute);
    const auto outage = source.raw_points("blip_outage{vantage=\"a\"}", history_.begin,
                                          history_.begin + 15 * kMinute, 7 * kSecond);
    ASSERT_EQ(outage.size(), 1u) << url;
    EXPECT_EQ(outage[0].points.size(), 16u + 1 + 16 + 1) << url;
    EXPECT_EQ(outage[0].metric, "blip_outage");
  }

  // The table names the local fault; csv has the columns.
  std::string table;
  ASSERT_EQ(test::run_command(history_.report_args(victoria.url(), "table"), &table), 0);
  EXPECT_NE(
      table.find("web: only from vantage a (b and c saw it up) — a fault at a or on its path"),
      std::string::npos)
      << table;
  EXPECT_NE(table.find("[seen from a,b,c of a,b,c]"), std::string::npos) << table;
  std::string csv;
  ASSERT_EQ(test::run_command(history_.report_args(prometheus.url(), "csv"), &csv), 0);
  EXPECT_NE(csv.find(",seen_from,observed_by,quorum\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",a b c,a b c,true\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",a,a b c,false\n"), std::string::npos) << csv;

  // --vantages a,b: c does not count; --quorum 3: the outage a and b saw is a local fault.
  auto args = history_.report_args(prometheus.url(), "json");
  args.insert(args.end(), {"--vantages", "a,b", "--quorum", "3"});
  const nlohmann::json restricted = report_json(args);
  ASSERT_EQ(restricted["vantages"].size(), 2u) << restricted.dump(2);
  EXPECT_EQ(restricted["outages"][0]["seen_from"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(restricted["outages"][0]["observed_by"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(restricted["outages"][0]["quorum"], false);
  EXPECT_EQ(restricted["quorum"], 3);
}

// Remote read (Prometheus) and range selectors (VictoriaMetrics, or Prometheus asked by a
// string) give the same points.
TEST_F(FleetReport, RemoteReadGivesThePointsRangeSelectorsGive) {
  test::Engine prometheus(test::prometheus_receiver());
  test::Engine victoria(test::victoria_metrics());
  ASSERT_EQ(test::remote_write(prometheus.write_url(), history_.series), 204);
  ASSERT_EQ(test::remote_write(victoria.write_url(), history_.series), 204);
  settled_report(history_, prometheus.url());
  settled_report(history_, victoria.url());
  const PrometheusSource from_prometheus(prometheus.url());
  const PrometheusSource from_victoria(victoria.url());
  const SeriesSelector outage{"blip_outage", {{"vantage", "a|c", true}}};
  const int64_t after = history_.begin;
  const int64_t until = history_.begin + 15 * kMinute;
  ASSERT_TRUE(from_prometheus.remote_read(outage, after, until).has_value());
  EXPECT_FALSE(from_victoria.remote_read(outage, after, until).has_value());
  for (const int64_t chunk : {7 * kSecond, kMinute, 15 * kMinute}) {
    const auto by_read = from_prometheus.raw_points(outage, after, until, chunk);
    EXPECT_TRUE(from_prometheus.remote_read_enabled());
    const auto by_query = from_prometheus.raw_points(outage.promql(), after, until, chunk);
    const auto by_victoria = from_victoria.raw_points(outage, after, until, chunk);
    ASSERT_EQ(by_read.size(), 2u);
    for (const auto* other : {&by_query, &by_victoria}) {
      ASSERT_EQ(other->size(), by_read.size());
      for (size_t i = 0; i < by_read.size(); ++i) {
        EXPECT_EQ((*other)[i].metric, by_read[i].metric);
        EXPECT_EQ((*other)[i].labels, by_read[i].labels);
        ASSERT_EQ((*other)[i].points.size(), by_read[i].points.size()) << chunk;
        for (size_t k = 0; k < by_read[i].points.size(); ++k) {
          EXPECT_EQ((*other)[i].points[k].ms, by_read[i].points[k].ms);
          EXPECT_EQ((*other)[i].points[k].value, by_read[i].points[k].value);
        }
      }
    }
  }
}

// blip_hour_samples stands for an hour's minute points where it has the hour before it too:
// the same report from Prometheus holding the hours as from VictoriaMetrics without them.
// Vantage a's history begins in the middle of an hour (its first hour point speaks for minutes
// it never shipped); b lacks three minutes (no point for that hour); c has every minute.
TEST_F(FleetReport, HourPointsGiveTheReportTheMinutesGive) {
  constexpr int64_t kHour = 60 * kMinute;
  const int64_t end = (wall_now_ms() - 20 * kMinute) / kHour * kHour;
  const int64_t begin = end - 4 * kHour;
  const int64_t shipped_from = begin + 30 * kMinute;
  const int64_t gap = begin + 100 * kMinute;  // b's missing minutes: [gap, gap + 3m)
  std::vector<Series> with_hours;
  std::vector<Series> without_hours;
  for (const std::string vantage : {"a", "b", "c"}) {
    Series minutes = probe_series("blip_minute_samples", "web", vantage);
    Series hours = probe_series("blip_hour_samples", "web", vantage);
    for (int64_t minute = shipped_from; minute < end; minute += kMinute) {
      if (vantage == "b" && minute >= gap && minute < gap + 3 * kMinute) continue;
      minutes.points.push_back({minute + kMinute, 240});
    }
    // What the store held: every minute (b: but its three).
    for (int64_t hour = begin; hour < end; hour += kHour) {
      if (hour + kHour <= shipped_from) continue;
      if (vantage == "b" && gap < hour + kHour && gap + 3 * kMinute > hour) continue;
      hours.points.push_back({hour + kHour, 240 * 60});
    }
    with_hours.push_back(minutes);
    without_hours.push_back(std::move(minutes));
    with_hours.push_back(std::move(hours));
  }
  Series down = probe_series("blip_outage", "web", "a");
  outage_points(down, begin + 2 * kHour + 7 * kSecond, begin + 2 * kHour + 20 * kSecond);
  with_hours.push_back(down);
  without_hours.push_back(std::move(down));

  test::Engine prometheus(test::prometheus_receiver());
  test::Engine victoria(test::victoria_metrics());
  ASSERT_EQ(test::remote_write(prometheus.write_url(), with_hours), 204);
  ASSERT_EQ(test::remote_write(victoria.write_url(), without_hours), 204);
  for (const int64_t from : {begin, begin + 25 * kMinute, begin + kHour}) {
    auto args = [&](const std::string& url) {
      return std::vector<std::string>{BLIP_BINARY,    "report",
                                      "--prometheus", url,
                                      "--from",       format_iso8601_ms(from),
                                      "--to",         format_iso8601_ms(end),
                                      "--format",     "json"};
    };
    nlohmann::json a;
    nlohmann::json b;
    test::wait_until(
        [&] {
          a = report_json(args(prometheus.url()));
          b = report_json(args(victoria.url()));
          return a.contains("vantages") && b.contains("vantages") && a["vantages"].size() == 3 &&
                 b["vantages"].size() == 3 && a["vantages"][0]["samples"] > 0 &&
                 a["vantages"][0]["samples"] == b["vantages"][0]["samples"] &&
                 a["vantages"][1]["samples"] == b["vantages"][1]["samples"] &&
                 // VictoriaMetrics makes each series searchable after its own flush: the
                 // outage's may come a moment after the minutes'.
                 a["outages"].size() == b["outages"].size();
        },
        std::chrono::seconds(30), std::chrono::milliseconds(500));
    const int64_t minutes = (end - std::max(from, shipped_from)) / kMinute;
    EXPECT_EQ(a["vantages"][0]["samples"], minutes * 240) << a.dump(2);
    EXPECT_EQ(a["vantages"][1]["samples"], (minutes - 3) * 240) << a.dump(2);
    EXPECT_EQ(a["vantages"][2]["samples"], minutes * 240) << a.dump(2);
    a.erase("source");
    b.erase("source");
    EXPECT_EQ(a, b) << "with hours:\n" << a.dump(2) << "\nwithout:\n" << b.dump(2);
  }
}

TEST_F(FleetReport, AServerThatCannotAnswerIsAClearErrorWithExitTwo) {
  std::string output;
  // Nothing listens there.
  EXPECT_EQ(test::run_command(
                history_.report_args(fmt::format("http://127.0.0.1:{}", test::free_port()), "json"),
                &output),
            2);
  EXPECT_NE(output.find("--prometheus: cannot query http://127.0.0.1:"), std::string::npos)
      << output;
  // Something that is not the API: VictoriaMetrics under a wrong prefix.
  test::Engine victoria(test::victoria_metrics());
  EXPECT_EQ(test::run_command(history_.report_args(victoria.url() + "/nothing", "json"), &output),
            2);
  EXPECT_NE(output.find("/nothing/api/v1/query answered HTTP 4"), std::string::npos) << output;
  // A probe the server holds nothing of.
  auto args = history_.report_args(victoria.url(), "json");
  args.insert(args.end(), {"--probe", "web"});
  EXPECT_EQ(test::run_command(args, &output), 2);
  EXPECT_NE(output.find("holds no series of a probe named \"web\""), std::string::npos) << output;
  EXPECT_EQ(test::run_command(history_.report_args("ftp://127.0.0.1", "json"), &output), 2);
  EXPECT_NE(output.find("is not an http:// or https:// URL"), std::string::npos) << output;
}

}  // namespace
}  // namespace blip
