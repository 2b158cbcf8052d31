// The fleet report's merge and quorum on hand-written per-vantage outages: pure
// functions, no server (the engines are tested in tests/system/fleet_report_test.cpp).
#include "blip/fleet/fleet_outages.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "blip/report/report_json.hpp"

namespace blip {
namespace {

// What `blip report --format json` writes.
std::string json_text(const Report& report) {
  std::ostringstream out;
  write_report_json(out, report);
  return out.str();
}

constexpr int64_t kMinute = 60'000;
constexpr int64_t kSecond = 1'000;
// 2026-11-25T00:00:00Z: the range is the hour after it.
constexpr int64_t F = 1'795'564'800'000;
constexpr int64_t T = F + 60 * kMinute;

using Names = std::vector<std::string>;

// Vantages a, b and c, each with samples of `probes` in every minute of the hour.
FleetSeries hour_of(const Names& probes = {"web"}) {
  FleetSeries series;
  series.range = {F, T, T};
  series.vantages = {"a", "b", "c"};
  series.probes = probes;
  for (const std::string& probe : probes) {
    for (const std::string& vantage : series.vantages) {
      auto& minutes = series.minutes[{probe, vantage}];
      for (int m = 0; m < 60; ++m) minutes.push_back({F + m * kMinute, 240});
    }
  }
  return series;
}

void down(FleetSeries& series, const std::string& vantage, int64_t start,
          std::optional<int64_t> end, const std::string& probe = "web") {
  series.outages.push_back({probe, vantage, start, end, 4, end.value_or(start) - 250});
}

TEST(FleetPoints, RunsOfOnesUpToTheZero) {
  const auto runs = runs_from_points({{5, 0}, {10, 1}, {20, 1}, {30, 0}, {40, 1}});
  ASSERT_EQ(runs.size(), 2u);  // the first 0 ends an outage begun before the points
  EXPECT_EQ(runs[0].start_ms, 10);
  EXPECT_EQ(runs[0].end_ms, 30);
  EXPECT_EQ(runs[0].ones, 2);
  EXPECT_EQ(runs[1].start_ms, 40);
  EXPECT_FALSE(runs[1].end_ms);  // still open

  const auto windows =
      blind_windows_from_points({{100, 1}, {160, 1}, {170, 0}, {500, 1}}, "loop_stall", 900);
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_EQ(windows[0].start_ms, 100);
  EXPECT_EQ(windows[0].end_ms, 170);
  EXPECT_EQ(windows[1].end_ms, 900);  // open: until the range's end
  EXPECT_EQ(windows[1].reason, "loop_stall");
}

TEST(FleetMerge, OverlappingOutagesOfThreeVantagesAreOneQuorumOutage) {
  FleetSeries series = hour_of();
  down(series, "a", F + 10 * kSecond, F + 20 * kSecond);
  down(series, "b", F + 10'200, F + 20'100);
  down(series, "c", F + 10'100, F + 19'900);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 1u);
  const FleetOutage& outage = merged[0];
  EXPECT_EQ(outage.sighting.seen_from, (Names{"a", "b", "c"}));
  EXPECT_EQ(outage.sighting.observed_by, (Names{"a", "b", "c"}));
  EXPECT_EQ(outage.sighting.needed, 2);
  EXPECT_TRUE(outage.sighting.quorum);
  // From the second vantage down (c) to the second one up again (a).
  EXPECT_EQ(outage.start_ms, F + 10'100);
  EXPECT_EQ(outage.end_ms, F + 20'000);
  EXPECT_EQ(outage.down_samples, 12);
  ASSERT_EQ(outage.sighting.edges.size(), 3u);
  EXPECT_EQ(outage.sighting.edges[0].vantage, "a");  // by start
  EXPECT_EQ(outage.sighting.edges[1].vantage, "c");
}

TEST(FleetMerge, AnOutageOfOneVantageIsALocalFaultNamedAsOne) {
  FleetSeries series = hour_of();
  down(series, "a", F + 30 * kMinute, F + 30 * kMinute + 12 * kSecond);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_FALSE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].sighting.seen_from, Names{"a"});
  EXPECT_EQ(merged[0].sighting.observed_by, (Names{"a", "b", "c"}));
  EXPECT_EQ(merged[0].start_ms, F + 30 * kMinute);
  EXPECT_EQ(merged[0].end_ms, F + 30 * kMinute + 12 * kSecond);
  EXPECT_EQ(describe_local_fault("web", merged[0].sighting),
            "web: only from vantage a (b and c saw it up) — a fault at a or on its path");
}

TEST(FleetMerge, ABlindVantageOrOneWithoutSamplesDoesNotObserve) {
  FleetSeries series = hour_of();
  // c is blind while a and b see the outage: two of two observing make a quorum.
  series.blind["c"] = {{F + 40 * kMinute, F + 45 * kMinute, "loop_stall"}};
  down(series, "a", F + 41 * kMinute, F + 42 * kMinute);
  down(series, "b", F + 41 * kMinute + 100, F + 42 * kMinute);
  // c stored nothing in minutes 50..54: a alone among a and b is a local fault.
  auto& c_minutes = series.minutes[{"web", "c"}];
  std::erase_if(c_minutes, [](const MinuteCount& minute) {
    return minute.minute_ms >= F + 50 * kMinute && minute.minute_ms < F + 55 * kMinute;
  });
  down(series, "a", F + 51 * kMinute, F + 52 * kMinute);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].sighting.observed_by, (Names{"a", "b"}));
  EXPECT_TRUE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[1].sighting.observed_by, (Names{"a", "b"}));
  EXPECT_EQ(merged[1].sighting.needed, 2);
  EXPECT_FALSE(merged[1].sighting.quorum);
  EXPECT_EQ(describe_local_fault("web", merged[1].sighting),
            "web: only from vantage a (b saw it up) — a fault at a or on its path");
}

TEST(FleetMerge, AFixedQuorumDecidesInsteadOfTheMajority) {
  FleetSeries series = hour_of();
  down(series, "a", F + 5 * kMinute, F + 6 * kMinute);
  down(series, "b", F + 5 * kMinute, F + 6 * kMinute);
  EXPECT_TRUE(merge_fleet_outages(series, std::nullopt)[0].sighting.quorum);
  const auto merged = merge_fleet_outages(series, 3);
  EXPECT_FALSE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].sighting.needed, 3);
  EXPECT_EQ(describe_local_fault("web", merged[0].sighting),
            "web: only from vantages a and b (c saw it up) — a fault at a and b or on their paths");
  EXPECT_TRUE(merge_fleet_outages(series, 1)[0].sighting.quorum);
}

TEST(FleetMerge, AQuorumMeansDownAtOnceNotOneAfterAnother) {
  FleetSeries series = hour_of();
  // A chain: a and b overlap, b and c overlap, a and c never do.
  down(series, "a", F + 10 * kMinute, F + 12 * kMinute);
  down(series, "b", F + 11 * kMinute, F + 14 * kMinute);
  down(series, "c", F + 13 * kMinute, F + 16 * kMinute);
  auto merged = merge_fleet_outages(series, std::nullopt);
  // Two down at once from 11m to 12m (a and b), and from 13m to 14m (b and c): between
  // them only b saw it down.
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_TRUE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].start_ms, F + 11 * kMinute);
  EXPECT_EQ(merged[0].end_ms, F + 12 * kMinute);
  EXPECT_EQ(merged[0].sighting.seen_from, (Names{"a", "b"}));
  EXPECT_EQ(merged[1].start_ms, F + 13 * kMinute);
  EXPECT_EQ(merged[1].end_ms, F + 14 * kMinute);
  EXPECT_EQ(merged[1].sighting.seen_from, (Names{"b", "c"}));
  merged = merge_fleet_outages(series, 3);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_FALSE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].start_ms, F + 10 * kMinute);  // a local fault spans every vantage's outage
  EXPECT_EQ(merged[0].end_ms, F + 16 * kMinute);
  EXPECT_EQ(
      describe_local_fault("web", merged[0].sighting),
      "web: from vantages a, b and c, but never 3 at once — faults at each or on their paths");
}

TEST(FleetMerge, ALongLocalOutageDoesNotStretchAShortQuorumOne) {
  FleetSeries series = hour_of();
  down(series, "a", F, F + 50 * kMinute);
  down(series, "b", F + 20 * kMinute, F + 21 * kMinute);
  down(series, "c", F + 20 * kMinute + 300, F + 21 * kMinute);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_TRUE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].start_ms, F + 20 * kMinute);
  EXPECT_EQ(merged[0].end_ms, F + 21 * kMinute);
  EXPECT_EQ(merged[0].sighting.seen_from, (Names{"a", "b", "c"}));
}

TEST(FleetMerge, EachTimeAQuorumWasDownIsAnOutageOfItsOwn) {
  FleetSeries series = hour_of();
  down(series, "a", F, F + 50 * kMinute);
  down(series, "b", F + 10 * kMinute, F + 11 * kMinute);
  down(series, "c", F + 10 * kMinute, F + 11 * kMinute);
  down(series, "b", F + 30 * kMinute, F + 31 * kMinute);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].start_ms, F + 10 * kMinute);
  EXPECT_EQ(merged[0].end_ms, F + 11 * kMinute);
  EXPECT_EQ(merged[0].sighting.seen_from, (Names{"a", "b", "c"}));
  EXPECT_EQ(merged[1].start_ms, F + 30 * kMinute);
  EXPECT_EQ(merged[1].sighting.seen_from, (Names{"a", "b"}));
  EXPECT_TRUE(merged[1].sighting.quorum);
}

TEST(FleetMerge, AVantageThatWentSilentEndsItsOpenOutageAtItsLastPoint) {
  FleetSeries series = hour_of();
  // a went down at 10m and stopped shipping at 11m: its outage has no 0.
  series.outages.push_back(
      {"web", "a", F + 10 * kMinute, std::nullopt, 120, F + 10 * kMinute + 30 * kSecond});
  std::erase_if(series.minutes[{"web", "a"}],
                [](const MinuteCount& minute) { return minute.minute_ms >= F + 11 * kMinute; });
  down(series, "b", F + 40 * kMinute, F + 41 * kMinute);
  down(series, "c", F + 40 * kMinute, F + 41 * kMinute);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_FALSE(merged[0].sighting.quorum);
  EXPECT_EQ(merged[0].end_ms, F + 10 * kMinute + 30 * kSecond);
  EXPECT_TRUE(merged[1].sighting.quorum);
  EXPECT_EQ(merged[1].sighting.seen_from, (Names{"b", "c"}));
  EXPECT_EQ(merged[1].sighting.observed_by, (Names{"b", "c"}));  // a was not watching then
}

TEST(FleetMerge, OpenOutagesStayOpenAndOnlyCountedVantagesCount) {
  FleetSeries series = hour_of();
  down(series, "a", F + 58 * kMinute, std::nullopt);
  down(series, "b", F + 58 * kMinute + 50, std::nullopt);
  down(series, "c", F + 30 * kMinute, F + 31 * kMinute);
  auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_TRUE(merged[1].sighting.quorum);
  EXPECT_FALSE(merged[1].end_ms);
  // --vantages a,b: c's outage is not looked at, nor is c observing.
  series.vantages = {"a", "b"};
  merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].sighting.observed_by, (Names{"a", "b"}));
}

TEST(FleetMerge, TheMinuteNotShippedYetStillCountsAsWatched) {
  FleetSeries series = hour_of();
  series.range.to_ms = T + 90 * kSecond;  // minute 60 is going on: nobody shipped its count
  down(series, "a", T + 10 * kSecond, std::nullopt);
  const auto merged = merge_fleet_outages(series, std::nullopt);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].sighting.observed_by, (Names{"a", "b", "c"}));
  EXPECT_FALSE(merged[0].sighting.quorum);
}

// The report model runs on the quorum outages only: uptime, incidents, the pattern.
TEST(FleetReport, QuorumOutagesFeedTheReportModelAndLocalFaultsStayApart) {
  FleetSeries series = hour_of({"db", "web"});
  down(series, "a", F + 10 * kSecond, F + 20 * kSecond);
  down(series, "b", F + 10 * kSecond, F + 20 * kSecond);
  down(series, "a", F + 12 * kSecond, F + 30 * kSecond, "db");
  down(series, "c", F + 13 * kSecond, F + 30 * kSecond, "db");
  down(series, "a", F + 30 * kMinute, F + 30 * kMinute + 12 * kSecond);  // local
  series.source = "http://127.0.0.1:9090";
  const Report report = build_fleet_report(series, std::nullopt);
  ASSERT_EQ(report.outages.size(), 2u);
  ASSERT_TRUE(report.fleet);
  ASSERT_EQ(report.fleet->local_faults.size(), 1u);
  ASSERT_EQ(report.summaries.size(), 2u);
  const ProbeSummary& web = report.summaries[1];
  EXPECT_EQ(web.probe, "web");
  EXPECT_EQ(web.outages, 1);
  EXPECT_EQ(web.down_ms, 10 * kSecond);
  EXPECT_EQ(web.observed_ms, 60 * kMinute);
  EXPECT_EQ(web.samples, 3 * 60 * 240);
  // One incident across db and web, web first.
  ASSERT_EQ(report.incidents.size(), 1u);
  EXPECT_EQ(report.incidents[0].first_down_probe(), "web");
  EXPECT_EQ(report.outage_starts.bins[0], 2);
  ASSERT_EQ(report.fleet->vantages.size(), 3u);
  EXPECT_EQ(report.fleet->vantages[0].local_faults, 1);
  EXPECT_EQ(report.fleet->vantages[0].outages, 3);

  const nlohmann::json json = report_json(report);
  ASSERT_EQ(json["outages"].size(), 3u);
  EXPECT_EQ(json["outages"][0]["probe"], "web");
  EXPECT_EQ(json["outages"][0]["seen_from"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(json["outages"][0]["quorum"], true);
  EXPECT_EQ(json["outages"][2]["quorum"], false);
  EXPECT_EQ(json["outages"][2]["observed_by"], nlohmann::json({"a", "b", "c"}));
  EXPECT_EQ(json["outages"][2]["start"], "2026-11-25T00:30:00.000Z");
  EXPECT_EQ(json["vantages"][1]["vantage"], "b");
  EXPECT_EQ(json["quorum"], "majority");
  EXPECT_EQ(json_text(report), json.dump(2));  // what `blip report` writes
  EXPECT_EQ(json_text(build_fleet_report(series, 2)),
            report_json(build_fleet_report(series, 2)).dump(2));
}

// The same minutes as runs (what the source makes of whole days from count_over_time and
// sum_over_time): the same observers, the same report as minute by minute.
TEST(FleetReport, RunsOfMinutesGiveWhatTheirMinutesGive) {
  FleetSeries minutes = hour_of({"db", "web"});
  std::erase_if(minutes.minutes[{"web", "c"}], [](const MinuteCount& minute) {
    return minute.minute_ms >= F + 50 * kMinute && minute.minute_ms < F + 55 * kMinute;
  });
  minutes.blind["c"] = {{F + 40 * kMinute + 5 * kSecond, F + 45 * kMinute, "loop_stall"}};
  down(minutes, "a", F + 10 * kSecond, F + 20 * kSecond);
  down(minutes, "b", F + 10 * kSecond, F + 20 * kSecond);
  down(minutes, "a", F + 41 * kMinute, F + 42 * kMinute);
  down(minutes, "a", F + 51 * kMinute, F + 52 * kMinute);
  FleetSeries runs = minutes;
  for (auto& [key, counts] : runs.minutes) {
    std::vector<MinuteCount> joined;
    for (const MinuteCount& minute : counts) {
      if (!joined.empty() && joined.back().end_ms() == minute.minute_ms) {
        joined.back().samples += minute.samples;
        ++joined.back().span;
      } else {
        joined.push_back(minute);
      }
    }
    counts = joined;
  }
  EXPECT_EQ((runs.minutes[{"web", "a"}].size()), 1u);
  EXPECT_EQ((runs.minutes[{"web", "c"}].size()), 2u);
  for (int64_t from : {F, F + 30 * kSecond, F + 50 * kMinute + 1}) {
    minutes.range.from_ms = runs.range.from_ms = from;
    EXPECT_EQ(report_json(build_fleet_report(runs, std::nullopt)),
              report_json(build_fleet_report(minutes, std::nullopt)))
        << from;
    const RollupTotals a = fleet_rollup_totals(runs, "web", from, T);
    const RollupTotals b = fleet_rollup_totals(minutes, "web", from, T);
    EXPECT_EQ(a.minutes, b.minutes);
    EXPECT_EQ(a.samples, b.samples);
    EXPECT_EQ(a.first_minute_ms, b.first_minute_ms);
    EXPECT_EQ(a.last_minute_ms, b.last_minute_ms);
    for (const std::string vantage : {"a", "b", "c"}) {
      for (int64_t at : {F + 41 * kMinute, F + 51 * kMinute, F + 53 * kMinute + 7}) {
        EXPECT_EQ(observed(runs, "web", vantage, at, at + kSecond),
                  observed(minutes, "web", vantage, at, at + kSecond))
            << vantage << " " << at;
      }
    }
  }
}

}  // namespace
}  // namespace blip
