#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace blip {

// A Prometheus-style histogram with fixed upper bounds (in seconds): counts
// per bucket, plus sum and count. Plain data, copied into feed snapshots.
class MetricHistogram {
 public:
  MetricHistogram() = default;
  explicit MetricHistogram(std::span<const double> upper_bounds)
      : bounds_(upper_bounds), counts_(upper_bounds.size() + 1, 0) {}

  void observe(double seconds);
  std::span<const double> upper_bounds() const { return bounds_; }
  // Per bucket, not cumulative; the last is above every bound (+Inf).
  const std::vector<uint64_t>& bucket_counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Buckets for probe durations and flushes: 0.5 ms to 10 s.
inline constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// Buckets for the loop's own lag: 0.1 ms to 5 s.
inline constexpr double kLoopLagBuckets[] = {0.0001, 0.0005, 0.001, 0.005, 0.01,
                                             0.05,   0.1,    0.5,   1,     5};

}  // namespace blip
