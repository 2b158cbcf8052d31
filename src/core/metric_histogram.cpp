#include "blip/core/metric_histogram.hpp"

#include <algorithm>

namespace blip {

void MetricHistogram::observe(double seconds) {
  if (counts_.empty()) return;
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  ++counts_[static_cast<size_t>(bucket)];
  sum_ += seconds;
  ++count_;
}

}  // namespace blip
