// LoopWatch on a real libuv loop: a loop blocked on purpose for a measured time
// is a loop_stall of about that length; a stall under the threshold is none; a
// wall clock stepped through the clock's test seam is a clock_jump, not a stall.
#include "blip/core/loop_watch.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

// The daemon's settings (docs/design.md: a tick every 100 ms, one over 500 ms late is a stall).
constexpr int64_t kTickMs = 100;
constexpr int64_t kBlindAfterMs = 500;
// How late the loop may get to a timer on a loaded 2-core machine under ASan
// with nothing else on it: far under the 500 ms that makes a stall, far over
// the microseconds it takes when the machine is idle.
constexpr int64_t kSlackMs = 200;

// Restores the real wall clock however the test ends.
struct WallClockOffset {
  explicit WallClockOffset(int64_t offset_ms) { set_wall_clock_offset_for_testing(offset_ms); }
  ~WallClockOffset() { set_wall_clock_offset_for_testing(0); }
};

struct Watched {
  Watched()
      : watch(
            loop.get(), [this](const BlindWindow& window) { windows.push_back(window); }, kTickMs,
            kBlindAfterMs) {}
  // Runs `action` `at_ms` into the loop, and stops the loop at `stop_ms`.
  void run(int64_t at_ms, const std::function<void()>& action, int64_t stop_ms) {
    Timer act(loop.get(), action);
    act.start(static_cast<uint64_t>(at_ms));
    Timer stop(loop.get(), [this] {
      watch.stop();
      loop.stop();
    });
    stop.start(static_cast<uint64_t>(stop_ms));
    loop.run();
  }
  EventLoop loop;
  std::vector<BlindWindow> windows;
  LoopWatch watch;
};

TEST(LoopWatch, ABlockedLoopIsALoopStallOfAboutTheBlockedTime) {
  constexpr auto kBlock = 1200ms;
  Watched watched;
  int64_t block_start_wall = 0;
  int64_t block_end_wall = 0;
  int64_t block_start_mono = 0;
  bool stalled_before_block = true;
  bool stalled_while_blocked = false;
  watched.run(
      350,
      [&] {
        block_start_wall = wall_now_ms();
        block_start_mono = mono_now_us();
        stalled_before_block = watched.watch.stalled_since(block_start_mono - 1000);
        std::this_thread::sleep_for(kBlock);
        // A stall going on now, which the watch's next tick has not seen yet.
        stalled_while_blocked = watched.watch.stalled_since(block_start_mono - 1000);
        block_end_wall = wall_now_ms();
      },
      2500);

  EXPECT_FALSE(stalled_before_block);
  EXPECT_TRUE(stalled_while_blocked);
  ASSERT_EQ(watched.windows.size(), 1U);
  const BlindWindow& stall = watched.windows[0];
  EXPECT_EQ(stall.reason, "loop_stall");
  // It starts where the next tick was due: after the last tick before the block
  // (so at most one tick after the block began) and at the earliest one tick
  // before it began, plus the slack that tick itself may have been late.
  EXPECT_LE(stall.start_ms, block_start_wall + kTickMs + 1);
  EXPECT_GE(stall.start_ms, block_start_wall - kSlackMs);
  // It ends at the first tick after the block: at once, give or take the slack.
  EXPECT_GE(stall.end_ms, block_end_wall);
  EXPECT_LE(stall.end_ms, block_end_wall + kSlackMs);
  const int64_t blocked_ms = block_end_wall - block_start_wall;
  EXPECT_GE(blocked_ms, 1200);
  EXPECT_GE(stall.end_ms - stall.start_ms, blocked_ms - kTickMs - 1);
  EXPECT_LE(stall.end_ms - stall.start_ms, blocked_ms + kSlackMs);
  // The lag is the same span on the monotonic clock (the two clocks' readings differ by a
  // millisecond).
  EXPECT_NEAR(static_cast<double>(watched.watch.max_lag_us()) / 1000.0,
              static_cast<double>(stall.end_ms - stall.start_ms), 2.0);
}

TEST(LoopWatch, AfterTheStallOnlyAttemptsSentBeforeItEndAreCalledStalled) {
  Watched watched;
  int64_t block_start_mono = 0;
  bool stalled_for_old_attempt = false;
  bool stalled_for_new_attempt = true;
  int64_t new_attempt_mono = 0;
  Timer sent_later(watched.loop.get(), [&] { new_attempt_mono = mono_now_us(); });
  Timer ask(watched.loop.get(), [&] {
    stalled_for_old_attempt = watched.watch.stalled_since(block_start_mono - 1000);
    stalled_for_new_attempt = watched.watch.stalled_since(new_attempt_mono);
  });
  watched.run(
      300,
      [&] {
        block_start_mono = mono_now_us();
        std::this_thread::sleep_for(800ms);  // 800 ms: a stall (over 500 ms)
        uv_update_time(
            watched.loop.get());  // timers from here count from now, not from before the block
        sent_later.start(300);    // well after the tick that sees the stall
        ask.start(600);
      },
      2000);
  ASSERT_EQ(watched.windows.size(), 1U);
  ASSERT_GT(new_attempt_mono, 0);
  EXPECT_TRUE(stalled_for_old_attempt) << "an attempt in flight across the stall";
  EXPECT_FALSE(stalled_for_new_attempt) << "an attempt sent after it";
}

TEST(LoopWatch, AStallUnderTheThresholdIsLagButNoBlindWindow) {
  // Blocked 250 ms: the tick after it is 150..250 ms late (plus whatever the
  // machine adds), which is lag, and under the 500 ms that make a stall.
  Watched watched;
  watched.run(
      350, [] { std::this_thread::sleep_for(250ms); }, 1200);
  EXPECT_TRUE(watched.windows.empty())
      << watched.windows[0].reason << " of "
      << watched.windows[0].end_ms - watched.windows[0].start_ms << " ms";
  EXPECT_GE(watched.watch.max_lag_us(), (250 - kTickMs - 1) * 1000);
  EXPECT_LT(watched.watch.max_lag_us(), kBlindAfterMs * 1000);
}

TEST(LoopWatch, AWallClockStepForwardIsAClockJumpNotAStall) {
  constexpr int64_t kStepMs = 10'000;  // as when blip's VM is frozen for 10 s
  Watched watched;
  int64_t before_step_wall = 0;
  std::optional<WallClockOffset> stepped;
  watched.run(
      350,
      [&] {
        before_step_wall = wall_now_ms();
        stepped.emplace(kStepMs);
      },
      1000);
  ASSERT_EQ(watched.windows.size(), 1U);
  const BlindWindow& jump = watched.windows[0];
  EXPECT_EQ(jump.reason, "clock_jump");
  // From the last tick before the step to the first tick after it, on the wall clock's own
  // readings.
  EXPECT_LE(jump.start_ms, before_step_wall);
  EXPECT_GE(jump.start_ms, before_step_wall - kTickMs - kSlackMs);
  EXPECT_GE(jump.end_ms, before_step_wall + kStepMs);
  EXPECT_LE(jump.end_ms, before_step_wall + kStepMs + kTickMs + kSlackMs);
  EXPECT_LT(watched.watch.max_lag_us(), kBlindAfterMs * 1000) << "the loop itself never stalled";
}

TEST(LoopWatch, AWallClockStepBackIsAClockJumpThatCoversNoTime) {
  // What the code records: a window at the new wall time, of no length (its
  // start is the earlier of the two readings), so no span is taken out of a report twice.
  constexpr int64_t kStepMs = -10'000;
  Watched watched;
  int64_t before_step_wall = 0;
  std::optional<WallClockOffset> stepped;
  watched.run(
      350,
      [&] {
        before_step_wall = wall_now_ms();
        stepped.emplace(kStepMs);
      },
      1000);
  ASSERT_EQ(watched.windows.size(), 1U);
  const BlindWindow& jump = watched.windows[0];
  EXPECT_EQ(jump.reason, "clock_jump");
  EXPECT_EQ(jump.start_ms, jump.end_ms);
  EXPECT_GE(jump.end_ms, before_step_wall + kStepMs);
  EXPECT_LE(jump.end_ms, before_step_wall + kStepMs + kTickMs + kSlackMs);
  EXPECT_LT(watched.watch.max_lag_us(), kBlindAfterMs * 1000);
}

TEST(LoopWatch, AStallWithAClockStepIsOneClockJumpAndStillAStallForAttemptsInFlight) {
  // The loop blocked for 800 ms while the wall clock also stepped 10 s (a VM
  // resumed and its clock corrected): one window, the jump's, covering both; an
  // attempt sent before it was in flight across a stall all the same, so its
  // result says nothing about the target (the scheduler stores it as blind).
  Watched watched;
  int64_t block_start_mono = 0;
  bool stalled_for_old_attempt = false;
  std::optional<WallClockOffset> stepped;
  Timer ask(watched.loop.get(), [&] {
    stalled_for_old_attempt = watched.watch.stalled_since(block_start_mono - 1000);
  });
  watched.run(
      300,
      [&] {
        block_start_mono = mono_now_us();
        std::this_thread::sleep_for(800ms);
        stepped.emplace(10'000);
        uv_update_time(watched.loop.get());
        ask.start(300);  // after the tick that sees both
      },
      1800);
  ASSERT_EQ(watched.windows.size(), 1U);
  EXPECT_EQ(watched.windows[0].reason, "clock_jump");
  EXPECT_GE(watched.windows[0].end_ms - watched.windows[0].start_ms, 10'000);
  EXPECT_TRUE(stalled_for_old_attempt) << "an attempt in flight across the stall";
}

TEST(LoopWatch, AStepUnderTheThresholdIsNoJump) {
  // 300 ms of wall clock against the monotonic one: under the 500 ms of a jump
  // (an NTP slew or a small step); 200 ms of slack before it would count.
  Watched watched;
  std::optional<WallClockOffset> stepped;
  watched.run(
      350, [&] { stepped.emplace(300); }, 1000);
  EXPECT_TRUE(watched.windows.empty()) << watched.windows[0].reason;
}

}  // namespace
}  // namespace blip
