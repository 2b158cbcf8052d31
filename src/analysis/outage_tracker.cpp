#include "blip/analysis/outage_tracker.hpp"

namespace blip {

std::optional<OutageTransition> OutageTracker::observe(const Sample& sample) {
  if (sample.status == Status::down) {
    if (consecutive_down_++ == 0) {
      first_down_ms_ = sample.sent_ms;
      first_error_ = sample.error;
      first_detail_ = sample.detail;
    }
    if (!open_ && consecutive_down_ >= confirm_) {
      open_ = true;
      return OutageTransition{OutageTransition::Kind::opened, first_down_ms_, 0, first_error_,
                              first_detail_, consecutive_down_};
    }
    return std::nullopt;
  }
  const int64_t down_samples = consecutive_down_;
  consecutive_down_ = 0;
  if (!open_) return std::nullopt;
  open_ = false;
  return OutageTransition{OutageTransition::Kind::closed, first_down_ms_, sample.completed_ms(),
                          first_error_, first_detail_, down_samples};
}

}  // namespace blip
