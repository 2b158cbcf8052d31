#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"

namespace blip {

// Something an `[[alert]]` may tell a person, as the loop sees it happen.
struct AlertEvent {
  enum class Kind {
    outage_opened,  // after `confirm` down samples (a job: late, overrunning or failed)
    outage_closed,
    pattern_found,  // a periodic pattern first found; `text` says it
    job_forecast,   // a job's runs will exceed max_run soon; `text` says when
  };
  Kind kind = Kind::outage_opened;
  std::string probe;                                // the probe's or job's name
  ComponentKind probe_kind = ComponentKind::probe;  // which of the two `probe` names
  std::string probe_type;         // as the store shows it: the probe's type, or the job type
  std::vector<std::string> tags;  // the probe's, for selectors
  int64_t outage_id = 0;          // outages: the store's id (pairs opened with closed)
  int64_t incident_id = 0;        // outages: the store's incident (overlapping outages); 0: none
  int64_t start_ms = 0;           // outages: first down sample's send time
  int64_t end_ms = 0;             // closed: when it ended
  ErrorClass error = ErrorClass::none;
  std::string detail;   // already cleaned target text, never a secret
  std::string text;     // extra words: the phase finding, the forecast, blip's trouble
  std::string trouble;  // blip's own trouble: store_set_aside, store_queue_full, log_dropped,
                        // remote_write_rejected, remote_write_expired, loop_blind
  int64_t at_ms = 0;    // when the loop saw it
};

// blip's own trouble comes as outages of the component kBlipComponent (its probe and its
// type): a spell of trouble is an incident of its own, with one "outage" per kind in it.
inline bool is_blip_trouble(std::string_view probe_type) { return probe_type == kBlipComponent; }

}  // namespace blip
