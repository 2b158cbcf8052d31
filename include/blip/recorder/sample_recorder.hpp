#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "blip/analysis/outage_tracker.hpp"
#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"
#include "blip/recorder/live_state.hpp"
#include "blip/store/store.hpp"

namespace blip {

// What `blip run` does with every sample: hands it to the store, finds
// outages and brownouts as they open and close, groups outages into
// incidents, writes each transition at once, and keeps each probe's live
// state. Samples of one probe must come in send order.
class SampleRecorder {
 public:
  // What the recorder takes from the store before it starts: the probes'
  // ids (registered now), where outage and incident ids go on, and each
  // probe's outage totals so far.
  struct Start {
    std::vector<int64_t> probe_ids;
    int64_t next_outage_id = 1;
    int64_t next_incident_id = 1;
    std::map<int64_t, OutageTotals> totals;
  };
  static Start read_start(Store& store, const std::vector<ProbeConfig>& configs);
  // Writes through `sink` (a StoreWriter, or the store itself).
  SampleRecorder(const Start& start, RecordSink& sink, const std::vector<ProbeConfig>& configs,
                 bool log_transitions = true);
  SampleRecorder(Store& store, RecordSink& sink, const std::vector<ProbeConfig>& configs, bool log_transitions = true)
      : SampleRecorder(read_start(store, configs), sink, configs, log_transitions) {}
  SampleRecorder(Store& store, const std::vector<ProbeConfig>& configs, bool log_transitions = true)
      : SampleRecorder(store, store, configs, log_transitions) {}
  void record(size_t probe_index, const Sample& sample);
  // A probe added while running (a reload), under its id in the store; returns its index.
  size_t add_probe(const ProbeConfig& config, int64_t probe_id);
  // A probe removed while running: its open outage and brownout end at `end_ms`
  // with `end_reason`; it records nothing more.
  void remove_probe(size_t probe_index, int64_t end_ms, const std::string& end_reason);
  // Ends every outage, brownout and incident still open (blip is stopping),
  // with the number of samples each has seen so far.
  void close_open(int64_t end_ms, const std::string& end_reason);

  // What `blip run` adds to outages: whether one began in a maintenance window
  // (marked on its row), and who hears of each as it opens and closes (alerts).
  struct OutageHooks {
    std::function<bool(const ProbeConfig&, int64_t start_ms)> in_maintenance;
    std::function<void(size_t probe_index, const OutageRow& row)> changed;  // closed: end_ms is set
  };
  void set_outage_hooks(OutageHooks hooks) { hooks_ = std::move(hooks); }

  // Each probe's live state, in configuration order, for feed snapshots.
  const std::vector<ProbeLiveState>& live() const { return live_; }
  // How many outages and brownouts opened or closed since the recorder started.
  uint64_t transitions() const { return transitions_; }
  // Each probe's id in the store, in configuration order.
  std::vector<int64_t> probe_ids() const;

 private:
  struct ProbeTracking {
    const ProbeConfig* config;
    int64_t probe_id;
    OutageTracker outages;
    OutageTracker brownouts;
    std::optional<OutageRow> open_outage;
    std::optional<OutageRow> open_brownout;
  };
  void record_outage(size_t probe_index, const OutageTransition& transition);
  void record_brownout(size_t probe_index, const OutageTransition& transition);
  OutageRow opened_row(const ProbeTracking& probe, const OutageTransition& transition, OutageKind kind);
  // Writes an open row as ended there; nothing when none is open.
  void end_row(std::optional<OutageRow>& open, int64_t end_ms, int64_t down_samples, const std::string& end_reason);

  RecordSink& sink_;
  bool log_transitions_;
  OutageHooks hooks_;
  std::vector<ProbeTracking> probes_;
  std::vector<ProbeLiveState> live_;
  uint64_t transitions_ = 0;
  IncidentTracker incidents_;
  IncidentRow incident_;  // the current incident, as written
  int64_t next_outage_id_;
  int64_t next_incident_id_;
};

}  // namespace blip
