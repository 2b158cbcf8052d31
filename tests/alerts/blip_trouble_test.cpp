// Alerts about blip itself: which counters make trouble, how a spell of it opens, gathers its
// kinds, counts, and ends once nothing more has happened for the settle period.
#include "blip/alerts/blip_trouble.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "blip/alerts/alert_payload.hpp"
#include "support/alerts.hpp"

namespace blip {
namespace {

constexpr int64_t kSettle = 600'000;
constexpr int64_t kT0 = 1'800'000'000'000;

BlipCounters rejected(uint64_t points) {
  BlipCounters counters;
  counters.remote_writes.push_back({"http://vm:8428/api/v1/write", points, 0});
  return counters;
}

TEST(BlipTrouble, ARefusingReceiverIsOneOutageOfBlipThatEndsWithItsWholeCount) {
  BlipTroubleWatch watch(kSettle);
  EXPECT_TRUE(watch.observe(rejected(0), kT0).empty()) << "nothing rejected, nothing to tell";
  auto first = watch.observe(rejected(480), kT0 + 1'000);
  ASSERT_EQ(first.size(), 1u);
  const AlertEvent opened = first[0];
  EXPECT_EQ(opened.kind, AlertEvent::Kind::outage_opened);
  EXPECT_EQ(opened.probe, "blip");
  EXPECT_TRUE(is_blip_trouble(opened.probe_type));
  EXPECT_EQ(opened.trouble, "remote_write_rejected");
  EXPECT_EQ(opened.start_ms, kT0 + 1'000);
  EXPECT_EQ(opened.incident_id, -(kT0 + 1'000)) << "never a store incident's id";
  EXPECT_LT(opened.outage_id, -(int64_t{1} << 40)) << "never a store's or a restored outage's";
  EXPECT_EQ(alert_summary({AlertMessage::Kind::opened, opened, kT0 + 1'000}),
            "blip trouble: remote-write to http://vm:8428/api/v1/write rejected 480 points (a "
            "4xx answer other than 429: those batches are dropped; the log says why)");
  // Every second more are refused, for longer than the settle period: nothing more to tell.
  const int64_t seconds = 2 * kSettle / 1000;
  for (int64_t s = 2; s <= seconds; ++s)
    EXPECT_TRUE(watch.observe(rejected(480 * static_cast<uint64_t>(s)), kT0 + s * 1000).empty());
  const uint64_t total = 480 * static_cast<uint64_t>(seconds);
  // It stopped: still open until the settle period has passed since the last refusal...
  const int64_t last = kT0 + seconds * 1000;
  EXPECT_TRUE(watch.observe(rejected(total), last + kSettle - 1).empty());
  // ...then it closes at that last refusal, with everything counted over the spell.
  auto closed = watch.observe(rejected(total), last + kSettle);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].kind, AlertEvent::Kind::outage_closed);
  EXPECT_EQ(closed[0].outage_id, opened.outage_id);
  EXPECT_EQ(closed[0].incident_id, opened.incident_id);
  EXPECT_EQ(closed[0].end_ms, last);
  EXPECT_NE(closed[0].detail.find(fmt::format("rejected {} points", total)), std::string::npos)
      << closed[0].detail;
  EXPECT_TRUE(watch.observe(rejected(total), last + 3 * kSettle).empty());
  // The next refusal is a new spell: a new incident.
  auto again = watch.observe(rejected(total + 1), last + 4 * kSettle);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].incident_id, -(last + 4 * kSettle));
  EXPECT_NE(again[0].outage_id, opened.outage_id);
  EXPECT_NE(again[0].detail.find("rejected 1 points"), std::string::npos) << again[0].detail;
}

TEST(BlipTrouble, ASenderStartedAgainByAReloadCountsFromZero) {
  BlipTroubleWatch watch(kSettle);
  ASSERT_EQ(watch.observe(rejected(100), kT0).size(), 1u);
  EXPECT_TRUE(watch.observe(rejected(30), kT0 + 1'000).empty());  // 30 new ones
  auto closed = watch.observe(rejected(30), kT0 + 1'000 + kSettle);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_NE(closed[0].detail.find("rejected 130 points"), std::string::npos) << closed[0].detail;
}

TEST(BlipTrouble, EachKindIsAnOutageOfOneSpellThatEndsTogether) {
  BlipTroubleWatch watch(kSettle);
  BlipCounters counters;
  counters.store_set_aside_at_ms = kT0 - 5'000;
  counters.store_set_aside_reason = "file is not a database";
  counters.dropped_samples = 12;
  auto events = watch.observe(counters, kT0);
  // A kind that starts later in the spell joins its incident.
  counters.dropped_log_lines = 3;
  counters.remote_writes.push_back({"http://a/api/v1/write", 0, 7});
  for (const AlertEvent& event : watch.observe(counters, kT0 + 60'000)) events.push_back(event);
  std::vector<std::string> troubles;
  for (const AlertEvent& event : events) {
    troubles.push_back(event.trouble);
    EXPECT_EQ(event.kind, AlertEvent::Kind::outage_opened);
    EXPECT_EQ(event.incident_id, -kT0) << event.trouble;
  }
  EXPECT_EQ(troubles, (std::vector<std::string>{"store_set_aside", "store_queue_full",
                                                "log_dropped", "remote_write_expired"}));
  EXPECT_NE(events[0].detail.find("file is not a database"), std::string::npos);
  // The spell ends settle after its last trouble: all four close, each at its own last.
  EXPECT_TRUE(watch.observe(counters, kT0 + 60'000 + kSettle - 1).empty());
  auto closed = watch.observe(counters, kT0 + 60'000 + kSettle);
  ASSERT_EQ(closed.size(), 4u);
  for (const AlertEvent& event : closed) {
    EXPECT_EQ(event.kind, AlertEvent::Kind::outage_closed);
    EXPECT_EQ(event.end_ms,
              event.trouble == "store_set_aside" || event.trouble == "store_queue_full"
                  ? kT0
                  : kT0 + 60'000)
        << event.trouble;
  }
  EXPECT_TRUE(watch.observe(counters, kT0 + 10 * kSettle).empty()) << "set aside once: told once";
}

TEST(BlipTrouble, OnlyABlindSpellOverAMinuteIsTroubleAndRepeatsAreCounted) {
  BlipTroubleWatch watch(kSettle);
  EXPECT_TRUE(watch.blind({kT0, kT0 + 60'000, "loop_stall"}, kT0 + 60'000).empty());
  auto first = watch.blind({kT0, kT0 + 95'000, "loop_stall"}, kT0 + 95'000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].trouble, "loop_blind");
  EXPECT_NE(first[0].detail.find("loop_stall"), std::string::npos) << first[0].detail;
  EXPECT_TRUE(watch.blind({kT0 + 200'000, kT0 + 300'000, "suspended"}, kT0 + 300'000).empty());
  auto closed = watch.observe({}, kT0 + 300'000 + kSettle);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].end_ms, kT0 + 300'000);
  EXPECT_NE(closed[0].detail.find("(2 times in this spell)"), std::string::npos)
      << closed[0].detail;
}

TEST(BlipTrouble, EveryKindOfAlertCarriesWhichTrouble) {
  BlipTroubleWatch watch(kSettle);
  const AlertEvent event = watch.observe(rejected(5), kT0).at(0);
  const AlertMessage message{AlertMessage::Kind::opened, event, kT0};
  const AlertRequest hook =
      build_alert_request(test::alert_to("w", AlertConfig::Kind::webhook, "http://h/"), message);
  EXPECT_NE(hook.body.find(R"("trouble":"remote_write_rejected")"), std::string::npos) << hook.body;
  EXPECT_NE(hook.body.find(R"("event":"outage_opened")"), std::string::npos) << hook.body;
  const AlertRequest manager = build_alert_request(
      test::alert_to("am", AlertConfig::Kind::alertmanager, "http://am/"), message);
  EXPECT_NE(manager.body.find(R"("alertname":"BlipTrouble")"), std::string::npos) << manager.body;
  EXPECT_NE(manager.body.find(R"("trouble":"remote_write_rejected")"), std::string::npos)
      << manager.body;
  const AlertRequest ntfy =
      build_alert_request(test::alert_to("n", AlertConfig::Kind::ntfy, "http://n/t"), message);
  EXPECT_NE(std::find(ntfy.headers.begin(), ntfy.headers.end(), "Title: blip needs attention"),
            ntfy.headers.end());
}

}  // namespace
}  // namespace blip
