#include "blip/analysis/outage_tracker.hpp"

#include <gtest/gtest.h>

#include "blip/analysis/histogram.hpp"

namespace blip {
namespace {

Sample at(int64_t sent_ms, Status status, int64_t latency_ms = 5) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.latency_us = latency_ms * 1000;
  sample.status = status;
  if (status == Status::down) {
    sample.error = ErrorClass::timeout;
    sample.detail = "no answer within 1s";
  }
  return sample;
}

// Feeds one sample per 250 ms from a pattern like "uu-ddd-u" (u up, d down, g degraded).
std::vector<OutageTransition> run(OutageTracker& tracker, const std::string& pattern,
                                  int64_t latency_ms = 5) {
  std::vector<OutageTransition> transitions;
  int64_t t = 1'000'000;
  for (char c : pattern) {
    Status status = c == 'd' ? Status::down : c == 'g' ? Status::degraded : Status::up;
    if (auto transition = tracker.observe(at(t, status, latency_ms)))
      transitions.push_back(*transition);
    t += 250;
  }
  return transitions;
}

TEST(OutageTracker, OneDownSampleBelowConfirmIsNoOutage) {
  OutageTracker tracker(2);
  EXPECT_TRUE(run(tracker, "uuduudu").empty());
  EXPECT_FALSE(tracker.is_open());
}

TEST(OutageTracker, OpensAtConfirmWithTheFirstDownSampleAsStart) {
  OutageTracker tracker(3);
  auto transitions = run(tracker, "uudddd");
  ASSERT_EQ(transitions.size(), 1U);
  EXPECT_EQ(transitions[0].kind, OutageTransition::Kind::opened);
  EXPECT_EQ(transitions[0].start_ms, 1'000'500);  // third sample, not the confirming one
  EXPECT_EQ(transitions[0].error, ErrorClass::timeout);
  EXPECT_TRUE(tracker.is_open());
}

TEST(OutageTracker, ClosesAtTheCompletionOfTheFirstUpSample) {
  OutageTracker tracker(2);
  // The first up sample after the outage was sent into a frozen server and
  // answered 900 ms later: the outage lasts until that answer.
  auto transitions = run(tracker, "udddu", 900);
  ASSERT_EQ(transitions.size(), 2U);
  EXPECT_EQ(transitions[1].kind, OutageTransition::Kind::closed);
  EXPECT_EQ(transitions[1].start_ms, 1'000'250);
  EXPECT_EQ(transitions[1].end_ms, 1'001'000 + 900);
  EXPECT_EQ(transitions[1].down_samples, 3);
  EXPECT_FALSE(tracker.is_open());
}

TEST(OutageTracker, DegradedSamplesEndAnOutage) {
  OutageTracker tracker(2);
  auto transitions = run(tracker, "ddgdd");
  ASSERT_EQ(transitions.size(), 3U);
  EXPECT_EQ(transitions[1].kind, OutageTransition::Kind::closed);
  EXPECT_EQ(transitions[2].kind, OutageTransition::Kind::opened);
}

TEST(OutageTracker, ConfirmOfOneOpensOnTheFirstDownSample) {
  OutageTracker tracker(1);
  auto transitions = run(tracker, "ud");
  ASSERT_EQ(transitions.size(), 1U);
  EXPECT_EQ(transitions[0].start_ms, 1'000'250);
}

TEST(OutageTracker, BrownoutsAreRunsOfDegradedSamples) {
  OutageTracker brownouts(2, Status::degraded);
  auto transitions = run(brownouts, "ugggudgg");
  ASSERT_EQ(transitions.size(), 3U);
  EXPECT_EQ(transitions[0].kind, OutageTransition::Kind::opened);
  EXPECT_EQ(transitions[0].start_ms, 1'000'250);
  EXPECT_EQ(transitions[1].kind, OutageTransition::Kind::closed);
  EXPECT_EQ(transitions[1].down_samples, 3);
  EXPECT_EQ(transitions[2].start_ms, 1'001'500) << "a down sample ends a brownout run too";
}

TEST(IncidentTracker, OverlappingOutagesShareAnIncidentWithTheEarliestStart) {
  IncidentTracker incidents(10'000);
  auto db = incidents.outage_opened(0, 100'000);
  EXPECT_TRUE(db.started);
  // web's outage is detected later but began earlier: the incident starts with it.
  auto web = incidents.outage_opened(1, 99'000);
  EXPECT_FALSE(web.started);
  EXPECT_EQ(web.incident, db.incident);
  EXPECT_EQ(web.start_ms, 99'000);
  EXPECT_EQ(incidents.outage_closed(105'000), std::nullopt) << "web is still down";
  EXPECT_EQ(incidents.outage_closed(104'000), std::optional<int64_t>(105'000));
}

TEST(IncidentTracker, JoinGapDecidesBetweenOneIncidentAndTwo) {
  IncidentTracker incidents(10'000);
  int64_t first = incidents.outage_opened(0, 0).incident;
  incidents.outage_closed(5'000);
  auto soon = incidents.outage_opened(1, 14'000);
  EXPECT_EQ(soon.incident, first) << "another probe, within 10 s of the end";
  incidents.outage_closed(20'000);
  auto later = incidents.outage_opened(2, 31'000);
  EXPECT_TRUE(later.started);
  EXPECT_EQ(later.incident, first + 1);
  incidents.outage_closed(32'000);
  auto again = incidents.outage_opened(2, 35'000);
  EXPECT_TRUE(again.started) << "the same probe down again is a new incident";
}

TEST(MinuteOfHourHistogram, BinsByUtcMinuteAndRendersEveryNonEmptyBin) {
  MinuteOfHourHistogram histogram;
  histogram.add(0);                        // :00
  histogram.add(20 * 60'000 + 59'999);     // :20
  histogram.add(3'600'000 + 20 * 60'000);  // :20 of the next hour
  EXPECT_EQ(histogram.bins[0], 1);
  EXPECT_EQ(histogram.bins[20], 2);
  EXPECT_EQ(histogram.total(), 3);
  std::string drawn = histogram.render("starts");
  EXPECT_NE(drawn.find("|▄"), std::string::npos) << drawn;  // :00 at half the peak
  EXPECT_NE(drawn.find("peak 2 at minute :20"), std::string::npos) << drawn;
}

}  // namespace
}  // namespace blip
