#pragma once
#include <cstdint>
#include <vector>

#include "blip/analysis/outage_tracker.hpp"
#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"
#include "blip/recorder/live_state.hpp"
#include "blip/store/store.hpp"

namespace blip {

// What `blip run` does with every sample: buffers it in the store, finds
// outages and brownouts as they open and close, groups outages into
// incidents, and writes each transition at once. Samples of one probe must
// come in send order.
class SampleRecorder {
 public:
  // Registers the probes in the store. `log_transitions` logs each outage and brownout.
  SampleRecorder(Store& store, const std::vector<ProbeConfig>& configs, bool log_transitions = true);
  void record(size_t probe_index, const Sample& sample);
  // Ends every outage and brownout still open (blip is stopping), with the
  // number of samples each has seen so far.
  void close_open(int64_t end_ms, const std::string& end_reason);

  // Each probe's live state, in configuration order, for feed snapshots.
  const std::vector<ProbeLiveState>& live() const { return live_; }
  // How many outages and brownouts opened or closed since the recorder started.
  uint64_t transitions() const { return transitions_; }

 private:
  struct ProbeTracking {
    const ProbeConfig* config;
    int64_t probe_id;
    OutageTracker outages;
    OutageTracker brownouts;
    int64_t open_outage_id = 0;
    int64_t open_brownout_id = 0;
  };
  void record_outage(size_t probe_index, const OutageTransition& transition);
  void record_brownout(size_t probe_index, const OutageTransition& transition);

  Store& store_;
  bool log_transitions_;
  std::vector<ProbeTracking> probes_;
  std::vector<ProbeLiveState> live_;
  uint64_t transitions_ = 0;
  IncidentTracker incidents_;
  int64_t incident_id_ = 0;  // the current incident, as stored
  int64_t incident_start_ms_ = 0;
};

}  // namespace blip
