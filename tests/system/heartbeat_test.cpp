// `[[heartbeat]]`, blip's dead-man's switch, against a second blip's ping endpoint: while the
// first runs, the second's job stays up; SIGSTOP the first (a frozen blip or host) and the
// second's job goes late; SIGCONT it and the job is back. The same while its database is locked.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <climits>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

constexpr const char* kToken = "heartbeat-token-5e8d1c0b7a2f4936";

std::vector<OutageRecord> outages_of(const test::Daemon& blip, const std::string& job) {
  const Store store(blip.db(), Store::Mode::read_only);
  return store.outages(0, INT64_MAX, job);
}

TEST(Heartbeat, AFrozenBlipIsNoticedByTheBlipItBeatsTo) {
  // The watcher: a job that expects a check-in every 3 s (late 2 s after that).
  test::TempDir watcher_dir;
  test::Daemon watcher(
      watcher_dir,
      fmt::format("[[job]]\nname = \"a-alive\"\nperiod = \"3s\"\ngrace = \"2s\"\ntoken = \"{}\"\n",
                  kToken));
  ASSERT_TRUE(
      wait_until([&] { return watcher.log().find("run: started") != std::string::npos; }, 20s))
      << watcher.log();
  // The watched: probes the watcher's port and beats to its ping endpoint every second.
  test::TempDir dir;
  test::Daemon blip(
      dir, fmt::format("[[probe]]\nname = \"port\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{}\"\n"
                       "interval = \"1s\"\ntimeout = \"1s\"\n\n"
                       "[[heartbeat]]\nurl = \"{}\"\nevery = \"1s\"\ntimeout = \"1s\"\n",
                       watcher.feed_port(), watcher.feed_url(fmt::format("/ping/{}", kToken))));
  ASSERT_TRUE(
      wait_until([&] { return blip.metric("blip_heartbeats_total{result=\"sent\"}") >= 3; }, 20s))
      << blip.log();
  EXPECT_TRUE(outages_of(watcher, "a-alive").empty()) << "beating: the job is on time";

  // Frozen: no beats. Late once period + grace have passed since the last one.
  const int64_t frozen_ms = wall_now_ms();
  ASSERT_EQ(kill(blip.process().pid(), SIGSTOP), 0);
  const bool late = wait_until([&] { return !outages_of(watcher, "a-alive").empty(); }, 15s);
  ASSERT_EQ(kill(blip.process().pid(), SIGCONT), 0);
  ASSERT_TRUE(late) << watcher.log();
  // Thawed: it beats again and the job's outage ends.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto outages = outages_of(watcher, "a-alive");
        return outages.size() == 1 && outages[0].end_ms.has_value();
      },
      15s))
      << watcher.log();
  const OutageRecord outage = outages_of(watcher, "a-alive").at(0);
  EXPECT_EQ(outage.error, ErrorClass::late);
  // The last beat came at most a second (plus a busy machine's slack) before the freeze.
  EXPECT_GE(outage.start_ms, frozen_ms + 5'000 - 2'500);
  EXPECT_LE(outage.start_ms, frozen_ms + 5'000 + 1'500);
  EXPECT_EQ(blip.metric("blip_heartbeats_total{result=\"withheld\"}"), 0) << "the store writes";

  // A blip whose store cannot write beats no more either: another process holds its database's
  // write lock for 26 s. Withheld once samples have waited 15 s; late 5 s after the last beat.
  const int64_t locked_ms = wall_now_ms();
  test::ChildProcess locker(
      {"sh", "-c",
       "printf 'BEGIN EXCLUSIVE;\\nINSERT OR REPLACE INTO meta(key, value) VALUES(\"lock\", 1);"
       "\\n.shell sleep 26\\nROLLBACK;\\n' | sqlite3 " +
           blip.db()});
  EXPECT_TRUE(wait_until([&] { return outages_of(watcher, "a-alive").size() == 2; }, 30s))
      << watcher.log();
  EXPECT_GE(blip.metric("blip_heartbeats_total{result=\"withheld\"}"), 1) << blip.log();
  ASSERT_EQ(locker.wait(30'000), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        const auto outages = outages_of(watcher, "a-alive");
        return outages.size() == 2 && outages[1].end_ms.has_value();
      },
      20s))
      << watcher.log();
  EXPECT_GE(outages_of(watcher, "a-alive")[1].start_ms, locked_ms + 15'000 + 4'000 - 1'500);

  EXPECT_EQ(blip.stop(), 0) << blip.log();
  EXPECT_EQ(watcher.stop(), 0) << watcher.log();
  EXPECT_EQ(blip.log().find(kToken), std::string::npos) << "a heartbeat's URL reached the log";
}

}  // namespace
}  // namespace blip
