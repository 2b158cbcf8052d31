#include "blip/analysis/outage_tracker.hpp"

#include <algorithm>

namespace blip {

std::optional<OutageTransition> OutageTracker::observe(const Sample& sample) {
  // blip could not watch this attempt: it neither continues a run nor ends one.
  if (sample.status == Status::blind) return std::nullopt;
  if (sample.status == counted_) {
    if (consecutive_down_++ == 0) {
      first_down_ms_ = sample.sent_ms;
      first_down_mono_us_ = sample.sent_mono_us;
      first_error_ = sample.error;
      first_detail_ = sample.detail;
    }
    if (!open_ && consecutive_down_ >= confirm_) {
      open_ = true;
      return OutageTransition{OutageTransition::Kind::opened,
                              first_down_ms_,
                              0,
                              first_error_,
                              first_detail_,
                              consecutive_down_};
    }
    return std::nullopt;
  }
  const int64_t down_samples = consecutive_down_;
  consecutive_down_ = 0;
  if (!open_) return std::nullopt;
  open_ = false;
  int64_t end_ms = sample.completed_ms();
  // The wall clock stepped back during the outage: its answer came "before" it began. Its length on
  // the monotonic clock, from its start, is what is known; a forward step is a clock_jump blind
  // window inside it.
  if (end_ms < first_down_ms_ && sample.sent_mono_us > 0 && first_down_mono_us_ > 0) {
    end_ms =
        first_down_ms_ + (sample.sent_mono_us + sample.latency_us - first_down_mono_us_) / 1000;
  }
  return OutageTransition{OutageTransition::Kind::closed,
                          first_down_ms_,
                          std::max(end_ms, first_down_ms_),
                          first_error_,
                          first_detail_,
                          down_samples};
}

IncidentTracker::Membership IncidentTracker::outage_opened(size_t probe, int64_t start_ms) {
  const bool member = std::find(probes_.begin(), probes_.end(), probe) != probes_.end();
  const bool joins =
      incident_ > 0 && (open_outages_ > 0 || (!member && start_ms <= end_ms_ + join_gap_ms_));
  if (joins) {
    start_ms_ = std::min(start_ms_, start_ms);
  } else {
    ++incident_;
    start_ms_ = start_ms;
    end_ms_ = start_ms;
    probes_.clear();
  }
  if (!member || !joins) probes_.push_back(probe);
  ++open_outages_;
  return {incident_, !joins, start_ms_};
}

std::optional<int64_t> IncidentTracker::outage_closed(int64_t end_ms) {
  if (open_outages_ == 0) return std::nullopt;
  end_ms_ = std::max(end_ms_, end_ms);
  if (--open_outages_ > 0) return std::nullopt;
  return end_ms_;
}

}  // namespace blip
