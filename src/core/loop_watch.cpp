#include "blip/core/loop_watch.hpp"

#include <algorithm>
#include <cstdlib>

#include "blip/core/clock.hpp"

namespace blip {

LoopWatch::LoopWatch(uv_loop_t* loop, BlindSink sink, int64_t tick_ms, int64_t blind_after_ms)
    : sink_(std::move(sink)),
      tick_ms_(tick_ms),
      blind_after_ms_(blind_after_ms),
      last_mono_us_(mono_now_us()),
      last_wall_ms_(wall_now_ms()),
      timer_(loop, [this] { tick(); }) {
  timer_.start(static_cast<uint64_t>(tick_ms_), static_cast<uint64_t>(tick_ms_));
}

void LoopWatch::tick() {
  const int64_t mono_us = mono_now_us();
  const int64_t wall_ms = wall_now_ms();
  const int64_t mono_gap_ms = (mono_us - last_mono_us_) / 1000;
  const int64_t wall_gap_ms = wall_ms - last_wall_ms_;
  last_lag_us_ = std::max<int64_t>(0, mono_us - last_mono_us_ - tick_ms_ * 1000);
  max_lag_us_ = std::max(max_lag_us_, last_lag_us_);
  lag_histogram_.observe(static_cast<double>(last_lag_us_) / 1e6);
  const bool stalled = last_lag_us_ / 1000 > blind_after_ms_;
  // A stall the wall clock also jumped across is reported as the jump, and is
  // still a stall for the attempts that were in flight across it.
  if (stalled) last_stall_end_mono_us_ = mono_us;
  if (std::abs(wall_gap_ms - mono_gap_ms) > blind_after_ms_) {
    sink_({std::min(last_wall_ms_, wall_ms), wall_ms, "clock_jump"});
  } else if (stalled) {
    sink_({last_wall_ms_ + tick_ms_, wall_ms, "loop_stall"});
  }
  last_mono_us_ = mono_us;
  last_wall_ms_ = wall_ms;
}

bool LoopWatch::stalled_since(int64_t mono_us) const {
  if (last_stall_end_mono_us_ > mono_us) return true;
  return mono_now_us() - last_mono_us_ > (tick_ms_ + blind_after_ms_) * 1000;
}

}  // namespace blip
