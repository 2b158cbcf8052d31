#pragma once
#include <cstdint>
#include <functional>

#include "blip/core/loop.hpp"
#include "blip/core/metric_histogram.hpp"
#include "blip/core/sample.hpp"

namespace blip {

// Ticks on the loop to measure its own lag, and reports blind windows when
// the loop stalled or the wall clock moved differently from the monotonic one
// (a suspended VM, a clock step).
class LoopWatch {
 public:
  using BlindSink = std::function<void(const BlindWindow&)>;
  LoopWatch(uv_loop_t* loop, BlindSink sink, int64_t tick_ms = 100, int64_t blind_after_ms = 500);
  void stop() { timer_.stop(); }
  int64_t last_lag_us() const { return last_lag_us_; }
  int64_t max_lag_us() const { return max_lag_us_; }
  // Whether the loop stalled at any time after `mono_us`: a stall it recorded
  // since, or one going on now that its next tick has not seen yet.
  bool stalled_since(int64_t mono_us) const;
  // Every tick's lag, for /metrics.
  const MetricHistogram& lag_histogram() const { return lag_histogram_; }

 private:
  void tick();

  BlindSink sink_;
  int64_t tick_ms_;
  int64_t blind_after_ms_;
  int64_t last_mono_us_;
  int64_t last_wall_ms_;
  int64_t last_lag_us_ = 0;
  int64_t max_lag_us_ = 0;
  int64_t last_stall_end_mono_us_ = 0;
  MetricHistogram lag_histogram_{kLoopLagBuckets};
  Timer timer_;
};

}  // namespace blip
