// The wall clock stepped under a running blip, forwards and backwards, while a
// target is down across the steps. The real blip binary runs under libfaketime
// (Debian's faketime package) with a timestamp file the test rewrites: only
// CLOCK_REALTIME moves (FAKETIME_DONT_FAKE_MONOTONIC), as when NTP or an
// operator steps the clock. Linux time namespaces cannot do this: they offset
// CLOCK_MONOTONIC and CLOCK_BOOTTIME, never CLOCK_REALTIME.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "blip/analysis/outage_tracker.hpp"
#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLibfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
constexpr int64_t kHourMs = 3'600'000;

// One setting of the faked clock: from real time `from_ms` on, blip's wall clock reads real +
// offset.
struct ClockPhase {
  int64_t from_ms;
  int64_t offset_ms;
};

TEST(ClockSteps,
     StepsForwardAndBackIntoAnOutageAreBlindWindowsNeverAnInvertedOutageOrAFutureSample) {
  ASSERT_TRUE(std::filesystem::exists(kLibfaketime))
      << "install the faketime package (scripts/install-deps)";
  test::NginxServer steady;
  test::NginxServer flaky;
  test::TempDir dir;
  const std::string clock_file = dir.file("faketime");
  dir.write("faketime", "+0\n");
  const char* inherited = std::getenv("ASAN_OPTIONS");
  const std::string asan =
      "ASAN_OPTIONS=" + (inherited && *inherited ? std::string(inherited) + ":" : std::string()) +
      "verify_asan_link_order=0";  // libfaketime is preloaded ahead of the ASan runtime
  test::Daemon blip(
      dir,
      test::http_config("web", steady.url("/health"), "100ms", "300ms") +
          "[[probe]]\nname = \"port\"\ntype = \"tcp\"\naddress = \"127.0.0.1:" +
          std::to_string(steady.port()) + "\"\ninterval = \"100ms\"\ntimeout = \"300ms\"\n" +
          test::http_config("flaky", flaky.url("/health"), "100ms", "300ms"),
      {}, "",
      {"env", std::string("LD_PRELOAD=") + kLibfaketime, "FAKETIME_TIMESTAMP_FILE=" + clock_file,
       "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", asan});
  std::vector<ClockPhase> phases{{wall_now_ms(), 0}};
  auto step = [&](int64_t offset_ms) {
    // Written whole and renamed: libfaketime rereads the file on every call and must never see it
    // half written.
    dir.write("faketime.next", fmt::format("{:+}\n", offset_ms / 1000));
    std::filesystem::rename(dir.file("faketime.next"), clock_file);
    phases.push_back({wall_now_ms(), offset_ms});
  };
  auto sleep = [](std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); };

  ASSERT_TRUE(test::wait_until([&] { return std::filesystem::exists(blip.db()); }, 20s))
      << blip.log();
  sleep(2s);
  const int64_t freeze_1 = wall_now_ms();
  flaky.freeze();
  sleep(1s);
  step(kHourMs);  // forwards an hour, inside the first outage
  sleep(1s);
  const int64_t thaw_1 = wall_now_ms();
  flaky.thaw();
  sleep(1s);
  const int64_t freeze_2 = wall_now_ms();
  flaky.freeze();
  sleep(1s);
  step(0);  // back an hour, inside the second outage: it would end before it began
  sleep(1s);
  const int64_t thaw_2 = wall_now_ms();
  flaky.thaw();
  sleep(1s);
  step(-kHourMs);  // back another hour, to before blip started
  sleep(2s);
  step(0);  // and forwards again
  sleep(1500ms);
  ASSERT_TRUE(blip.process().running()) << blip.log();
  ASSERT_EQ(blip.stop(), 0) << blip.log();
  const int64_t stopped_ms = wall_now_ms();

  Store store(blip.db(), Store::Mode::read_only);
  // Each step is a clock_jump blind window; a forward one spans the time that never passed.
  const auto blind = store.blind_windows(INT64_MIN / 2, INT64_MAX);
  int jumps = 0;
  for (const BlindWindow& window : blind) {
    SCOPED_TRACE(fmt::format("{} {} .. {}", window.reason, format_iso8601_ms(window.start_ms),
                             format_iso8601_ms(window.end_ms)));
    EXPECT_EQ(window.reason, "clock_jump");
    EXPECT_LE(window.start_ms, window.end_ms);
    jumps += window.reason == "clock_jump";
  }
  EXPECT_EQ(jumps, 4) << blip.log();
  // The forward steps: 0 -> +1 h (phases[1]) and -1 h -> 0 (phases[4]).
  for (size_t forward : {size_t{1}, size_t{4}}) {
    const int64_t step_stamp_ms = phases[forward].from_ms + phases[forward - 1].offset_ms;
    const bool found = std::any_of(blind.begin(), blind.end(), [&](const BlindWindow& window) {
      return std::abs(window.end_ms - window.start_ms - kHourMs) < 2'000 &&
             std::abs(window.start_ms - step_stamp_ms) < 2'000;
    });
    EXPECT_TRUE(found) << "the forward step of phase " << forward << " is a window an hour long";
  }

  // Every sample is stamped with the clock blip read when it sent it: never a
  // time the clock did not show (no sample in the future of its own clock).
  const auto consistent = [&](int64_t sent_ms) {
    for (size_t i = 0; i < phases.size(); ++i) {
      const int64_t from = phases[i].from_ms - 300;
      const int64_t to = (i + 1 < phases.size() ? phases[i + 1].from_ms : stopped_ms) + 300;
      if (sent_ms - phases[i].offset_ms >= from && sent_ms - phases[i].offset_ms <= to) return true;
    }
    return false;
  };
  for (const char* probe : {"web", "port", "flaky"}) {
    SCOPED_TRACE(probe);
    const auto samples = store.samples(probe, INT64_MIN / 2, INT64_MAX);
    ASSERT_GE(samples.size(), 60U);
    for (const Sample& sample : samples) {
      EXPECT_TRUE(consistent(sample.sent_ms)) << format_iso8601_ms(sample.sent_ms);
      EXPECT_LE(sample.latency_us, 300'000 + 50'000)
          << "latency is measured on the monotonic clock";
      if (std::string(probe) != "flaky") {
        EXPECT_EQ(sample.status, Status::up) << sample.detail;
      }
    }
    // The last samples, sent after the clock came back, are not in the future.
    EXPECT_LE(samples.back().sent_ms, stopped_ms);
    EXPECT_GE(samples.back().sent_ms, phases.back().from_ms - 300);
  }

  // No outage from the steps themselves; the target's two outages, neither ending before it began.
  const auto outages = store.outages(INT64_MIN / 2, INT64_MAX);
  ASSERT_EQ(outages.size(), 2U) << blip.log();
  for (const auto& outage : outages) {
    SCOPED_TRACE(fmt::format("{} {} .. {}", outage.probe, format_iso8601_ms(outage.start_ms),
                             outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "open"));
    EXPECT_EQ(outage.probe, "flaky");
    EXPECT_EQ(outage.error, ErrorClass::timeout);
    ASSERT_TRUE(outage.end_ms.has_value());
    EXPECT_GE(*outage.end_ms, outage.start_ms) << "an outage never ends before it began";
    EXPECT_EQ(outage.end_reason, "recovered");
  }
  for (const BlindWindow& window : blind) {
    std::printf("[ clock    ] blind %s %s .. %s (%lld ms)\n", window.reason.c_str(),
                format_iso8601_ms(window.start_ms).c_str(),
                format_iso8601_ms(window.end_ms).c_str(),
                static_cast<long long>(window.end_ms - window.start_ms));
  }
  for (const auto& outage : outages) {
    std::printf("[ clock    ] outage %s %s .. %s (%lld ms)\n", outage.probe.c_str(),
                format_iso8601_ms(outage.start_ms).c_str(),
                format_iso8601_ms(*outage.end_ms).c_str(),
                static_cast<long long>(*outage.end_ms - outage.start_ms));
  }
  // The first began before the forward step and ended after it: the step is inside it, and inside a
  // blind window.
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(freeze_1), 500.0);
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thaw_1 + kHourMs),
              500.0);
  // The second began an hour ahead and its first answer came after the step back: its length is the
  // monotonic clock's, from its start (not cut to nothing, not negative).
  EXPECT_NEAR(static_cast<double>(outages[1].start_ms), static_cast<double>(freeze_2 + kHourMs),
              500.0);
  EXPECT_NEAR(static_cast<double>(*outages[1].end_ms - outages[1].start_ms),
              static_cast<double>(thaw_2 - freeze_2), 600.0);
}

// The same rule on hand-made samples: an answer stamped before the outage began.
TEST(ClockSteps, OutageClosedAfterAStepBackTakesItsMonotonicLength) {
  OutageTracker tracker(2);
  auto sample = [](int64_t sent_ms, int64_t sent_mono_us, Status status) {
    Sample s;
    s.sent_ms = sent_ms;
    s.sent_mono_us = sent_mono_us;
    s.latency_us = 2'000;
    s.status = status;
    s.error = status == Status::down ? ErrorClass::timeout : ErrorClass::none;
    return s;
  };
  constexpr int64_t t = 1'800'000'000'000;
  EXPECT_FALSE(tracker.observe(sample(t, 10'000'000, Status::down)));
  ASSERT_TRUE(tracker.observe(sample(t + 100, 10'100'000, Status::down)));
  // 3 s later on the monotonic clock, but the wall clock went back an hour meanwhile.
  auto closed = tracker.observe(sample(t + 3'000 - kHourMs, 13'000'000, Status::up));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->start_ms, t);
  EXPECT_EQ(closed->end_ms, t + 3'002);
  // Without monotonic times (samples from elsewhere) the end is never before the start.
  OutageTracker plain(1);
  ASSERT_TRUE(plain.observe(sample(t, 0, Status::down)));
  auto cut = plain.observe(sample(t - kHourMs, 0, Status::up));
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->end_ms, t);
}

}  // namespace
}  // namespace blip
