// Alerts about blip itself: which counters make a message, and how often (once when first
// seen, then at most once per quiet period with what happened since).
#include "blip/alerts/blip_trouble.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "blip/alerts/alert_payload.hpp"
#include "support/alerts.hpp"

namespace blip {
namespace {

constexpr int64_t kQuiet = 600'000;
constexpr int64_t kT0 = 1'800'000'000'000;

BlipCounters rejected(uint64_t points) {
  BlipCounters counters;
  counters.remote_writes.push_back({"http://vm:8428/api/v1/write", points, 0});
  return counters;
}

TEST(BlipTrouble, ARefusingReceiverIsOneMessageAQuietPeriodCountingWhatCameBetween) {
  BlipTroubleWatch watch(kQuiet);
  EXPECT_TRUE(watch.observe(rejected(0), kT0).empty()) << "nothing rejected, nothing to tell";
  auto first = watch.observe(rejected(480), kT0 + 1'000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].kind, AlertEvent::Kind::blip_trouble);
  EXPECT_EQ(first[0].probe, "blip");
  EXPECT_EQ(first[0].trouble, "remote_write_rejected");
  EXPECT_EQ(alert_summary({AlertMessage::Kind::blip_trouble, first[0], kT0 + 1'000}),
            "blip: remote-write to http://vm:8428/api/v1/write rejected 480 points (a 4xx answer "
            "other than 429: those batches are dropped; the log says why)");
  // Every second more are refused: nothing more within the quiet period...
  for (int64_t s = 2; s < kQuiet / 1000; ++s)
    EXPECT_TRUE(watch.observe(rejected(480 * static_cast<uint64_t>(s)), kT0 + s * 1000).empty());
  // ...then one message with everything since the first.
  const uint64_t later = 480 * (kQuiet / 1000 + 1);
  auto second = watch.observe(rejected(later), kT0 + 1'000 + kQuiet);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].text.find(fmt::format("rejected {} points", later - 480)), std::string::npos)
      << second[0].text;
  // It stopped: nothing more, even after the quiet period.
  EXPECT_TRUE(watch.observe(rejected(later), kT0 + 10 * kQuiet).empty());
}

TEST(BlipTrouble, ASenderStartedAgainByAReloadCountsFromZero) {
  BlipTroubleWatch watch(kQuiet);
  ASSERT_EQ(watch.observe(rejected(100), kT0).size(), 1u);
  EXPECT_TRUE(watch.observe(rejected(30), kT0 + 1'000).empty());  // 30 new ones, told later
  auto later = watch.observe(rejected(30), kT0 + kQuiet);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_NE(later[0].text.find("rejected 30 points"), std::string::npos) << later[0].text;
}

TEST(BlipTrouble, EachKindOfTroubleIsToldOnItsOwn) {
  BlipTroubleWatch watch(kQuiet);
  BlipCounters counters;
  counters.store_set_aside_at_ms = kT0 - 5'000;
  counters.store_set_aside_reason = "file is not a database";
  counters.dropped_samples = 12;
  counters.dropped_log_lines = 3;
  counters.remote_writes.push_back({"http://a/api/v1/write", 0, 7});
  auto events = watch.observe(counters, kT0);
  std::vector<std::string> troubles;
  for (const AlertEvent& event : events) troubles.push_back(event.trouble);
  EXPECT_EQ(troubles, (std::vector<std::string>{"store_set_aside", "store_queue_full",
                                                "log_dropped", "remote_write_expired"}));
  EXPECT_NE(events[0].text.find("file is not a database"), std::string::npos);
  EXPECT_TRUE(watch.observe(counters, kT0 + 10 * kQuiet).empty()) << "set aside once: told once";
}

TEST(BlipTrouble, OnlyABlindSpellOverAMinuteIsTold) {
  const BlipTroubleWatch watch(kQuiet);
  EXPECT_FALSE(watch.blind({kT0, kT0 + 60'000, "loop_stall"}, kT0 + 60'000));
  auto event = watch.blind({kT0, kT0 + 95'000, "loop_stall"}, kT0 + 95'000);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->trouble, "loop_blind");
  EXPECT_NE(event->text.find("loop_stall"), std::string::npos) << event->text;
}

TEST(BlipTrouble, EveryKindOfAlertCarriesWhichTrouble) {
  BlipTroubleWatch watch(kQuiet);
  const AlertEvent event = watch.observe(rejected(5), kT0).at(0);
  const AlertMessage message{AlertMessage::Kind::blip_trouble, event, kT0};
  const AlertRequest hook =
      build_alert_request(test::alert_to("w", AlertConfig::Kind::webhook, "http://h/"), message);
  EXPECT_NE(hook.body.find(R"("trouble":"remote_write_rejected")"), std::string::npos) << hook.body;
  EXPECT_NE(hook.body.find(R"("event":"blip_trouble")"), std::string::npos) << hook.body;
  const AlertRequest manager = build_alert_request(
      test::alert_to("am", AlertConfig::Kind::alertmanager, "http://am/"), message);
  EXPECT_NE(manager.body.find(R"("alertname":"BlipTrouble")"), std::string::npos) << manager.body;
  EXPECT_NE(manager.body.find(R"("trouble":"remote_write_rejected")"), std::string::npos)
      << manager.body;
}

}  // namespace
}  // namespace blip
