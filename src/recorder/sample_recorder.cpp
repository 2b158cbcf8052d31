#include "blip/recorder/sample_recorder.hpp"

#include <spdlog/spdlog.h>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {

SampleRecorder::SampleRecorder(Store& store, const std::vector<ProbeConfig>& configs, bool log_transitions)
    : store_(store), log_transitions_(log_transitions) {
  for (const ProbeConfig& config : configs) {
    probes_.push_back({&config, store_.register_probe(config), OutageTracker(config.confirm),
                       OutageTracker(config.confirm, Status::degraded)});
  }
  // Counters that survive a restart: what the store already holds.
  const auto totals = store_.outage_totals();
  live_.resize(probes_.size());
  for (size_t i = 0; i < probes_.size(); ++i) {
    if (auto found = totals.find(probes_[i].probe_id); found != totals.end()) {
      live_[i].outages_total = found->second.count;
      live_[i].closed_outage_ms = found->second.closed_ms;
    }
  }
}

void SampleRecorder::record(size_t probe_index, const Sample& sample) {
  ProbeTracking& probe = probes_[probe_index];
  store_.add_sample(probe.probe_id, sample);
  live_[probe_index].observe(sample);
  try {
    if (auto transition = probe.outages.observe(sample)) record_outage(probe_index, *transition);
    if (auto transition = probe.brownouts.observe(sample)) record_brownout(probe_index, *transition);
  } catch (const StoreError& error) {
    spdlog::error("store: outage write failed probe={} err={}", probe.config->name, error.what());
  }
}

void SampleRecorder::close_open(int64_t end_ms, const std::string& end_reason) {
  for (ProbeTracking& probe : probes_) {
    if (probe.outages.is_open()) {
      store_.close_outage(probe.open_outage_id, end_ms, probe.outages.consecutive_down(), end_reason);
    }
    if (probe.brownouts.is_open()) {
      store_.close_outage(probe.open_brownout_id, end_ms, probe.brownouts.consecutive_down(), end_reason);
    }
  }
  store_.close_open_outages(end_ms, end_reason);  // and their incidents
}

void SampleRecorder::record_outage(size_t probe_index, const OutageTransition& transition) {
  ProbeTracking& probe = probes_[probe_index];
  ProbeLiveState& live = live_[probe_index];
  ++transitions_;
  if (transition.kind == OutageTransition::Kind::opened) {
    live.open_outage = transition;
    live.state_changed_ms = transition.start_ms;
    ++live.outages_total;
    auto membership = incidents_.outage_opened(probe_index, transition.start_ms);
    incident_start_ms_ = membership.start_ms;
    if (membership.started) {
      incident_id_ = store_.open_incident(membership.start_ms);
    } else {
      store_.update_incident(incident_id_, incident_start_ms_, std::nullopt);
    }
    live.open_outage_incident = incident_id_;
    probe.open_outage_id = 0;  // if the insert fails, the close must not touch an older outage
    probe.open_outage_id = store_.open_outage(probe.probe_id, transition, OutageKind::outage, incident_id_);
    if (log_transitions_) {
      spdlog::warn("outage: opened probe={} start={} error={} detail=\"{}\" incident={}", probe.config->name,
                   format_iso8601_ms(transition.start_ms), to_string(transition.error), transition.detail,
                   incident_id_);
    }
    return;
  }
  live.open_outage.reset();
  live.state_changed_ms = transition.end_ms;
  live.closed_outage_ms += transition.end_ms - transition.start_ms;
  store_.close_outage(probe.open_outage_id, transition.end_ms, transition.down_samples, "recovered");
  if (auto incident_end = incidents_.outage_closed(transition.end_ms)) {
    store_.update_incident(incident_id_, incident_start_ms_, *incident_end);
  }
  if (log_transitions_) {
    spdlog::info("outage: closed probe={} duration={} down_samples={}", probe.config->name,
                 format_duration_brief(transition.end_ms - transition.start_ms), transition.down_samples);
  }
}

void SampleRecorder::record_brownout(size_t probe_index, const OutageTransition& transition) {
  ProbeTracking& probe = probes_[probe_index];
  ProbeLiveState& live = live_[probe_index];
  ++transitions_;
  if (transition.kind == OutageTransition::Kind::opened) {
    live.open_brownout_start_ms = transition.start_ms;
    live.state_changed_ms = transition.start_ms;
    probe.open_brownout_id = 0;
    probe.open_brownout_id = store_.open_outage(probe.probe_id, transition, OutageKind::brownout);
    if (log_transitions_) {
      spdlog::info("brownout: opened probe={} start={}", probe.config->name, format_iso8601_ms(transition.start_ms));
    }
    return;
  }
  live.open_brownout_start_ms.reset();
  live.state_changed_ms = transition.end_ms;
  store_.close_outage(probe.open_brownout_id, transition.end_ms, transition.down_samples, "recovered");
  if (log_transitions_) {
    spdlog::info("brownout: closed probe={} duration={}", probe.config->name,
                 format_duration_brief(transition.end_ms - transition.start_ms));
  }
}

}  // namespace blip
