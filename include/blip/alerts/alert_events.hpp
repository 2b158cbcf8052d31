#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "blip/alerts/alert_event.hpp"
#include "blip/alerts/outage_phase.hpp"
#include "blip/config/config.hpp"
#include "blip/store/store.hpp"

namespace blip {

// Turns what the daemon sees into what an `[[alert]]` may tell: an outage
// row as it opens or closes (with the phase of its start, and the pattern the
// first time one is found) and a job's forecast.
class AlertEvents {
 public:
  // Outages before `watching_since_ms` were not seen: no phase is claimed from them.
  explicit AlertEvents(int64_t watching_since_ms) : watching_since_ms_(watching_since_ms) {}

  // An opened outage, then a pattern_found when its start completes one.
  std::vector<AlertEvent> outage_changed(const ProbeConfig& probe, const OutageRow& row,
                                         int64_t now_ms);
  AlertEvent job_forecast(const ProbeConfig& job, const std::string& text, int64_t now_ms) const;

 private:
  OutagePhaseTracker phases_;
  int64_t watching_since_ms_;
};

}  // namespace blip
