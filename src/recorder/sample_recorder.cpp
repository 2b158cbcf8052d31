#include "blip/recorder/sample_recorder.hpp"

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"

namespace blip {

SampleRecorder::Start SampleRecorder::read_start(Store& store, const std::vector<ProbeConfig>& configs) {
  Start start;
  for (const ProbeConfig& config : configs) start.probe_ids.push_back(store.register_probe(config));
  start.next_outage_id = store.max_outage_id() + 1;
  start.next_incident_id = store.max_incident_id() + 1;
  start.totals = store.outage_totals();
  return start;
}

SampleRecorder::SampleRecorder(const Start& start, RecordSink& sink, const std::vector<ProbeConfig>& configs,
                               bool log_transitions)
    : sink_(sink),
      log_transitions_(log_transitions),
      next_outage_id_(start.next_outage_id),
      next_incident_id_(start.next_incident_id) {
  for (size_t i = 0; i < configs.size(); ++i) {
    const ProbeConfig& config = configs[i];
    probes_.push_back({&config, start.probe_ids.at(i), OutageTracker(config.confirm),
                       OutageTracker(config.confirm, Status::degraded), std::nullopt, std::nullopt});
  }
  // Counters that survive a restart: what the store already holds.
  live_.resize(probes_.size());
  for (size_t i = 0; i < probes_.size(); ++i) {
    if (auto found = start.totals.find(probes_[i].probe_id); found != start.totals.end()) {
      live_[i].outages_total = found->second.count;
      live_[i].closed_outage_ms = found->second.closed_ms;
    }
  }
}

std::vector<int64_t> SampleRecorder::probe_ids() const {
  std::vector<int64_t> ids;
  for (const ProbeTracking& probe : probes_) ids.push_back(probe.probe_id);
  return ids;
}

void SampleRecorder::record(size_t probe_index, const Sample& sample) {
  ProbeTracking& probe = probes_[probe_index];
  live_[probe_index].observe(sample);
  try {
    sink_.add_sample(probe.probe_id, sample);
    if (auto transition = probe.outages.observe(sample)) record_outage(probe_index, *transition);
    if (auto transition = probe.brownouts.observe(sample)) record_brownout(probe_index, *transition);
  } catch (const StoreError& error) {
    log_error("store: write failed probe={} err={}", probe.config->name, error.what());
  }
}

size_t SampleRecorder::add_probe(const ProbeConfig& config, int64_t probe_id) {
  probes_.push_back({&config, probe_id, OutageTracker(config.confirm), OutageTracker(config.confirm, Status::degraded),
                     std::nullopt, std::nullopt});
  live_.emplace_back();
  return probes_.size() - 1;
}

void SampleRecorder::remove_probe(size_t probe_index, int64_t end_ms, const std::string& end_reason) {
  ProbeTracking& probe = probes_.at(probe_index);
  if (probe.open_outage) {
    ++transitions_;
    end_row(probe.open_outage, end_ms, probe.outages.consecutive_down(), end_reason);
    if (auto incident_end = incidents_.outage_closed(end_ms)) {
      incident_.end_ms = *incident_end;
      sink_.write_incident(incident_);
    }
    if (log_transitions_) log_info("outage: closed probe={} end_reason={}", probe.config->name, end_reason);
  }
  end_row(probe.open_brownout, end_ms, probe.brownouts.consecutive_down(), end_reason);
  live_[probe_index] = ProbeLiveState{};
}

void SampleRecorder::close_open(int64_t end_ms, const std::string& end_reason) {
  for (ProbeTracking& probe : probes_) {
    end_row(probe.open_outage, end_ms, probe.outages.consecutive_down(), end_reason);
    end_row(probe.open_brownout, end_ms, probe.brownouts.consecutive_down(), end_reason);
  }
  if (incident_.id != 0 && !incident_.end_ms) {
    incident_.end_ms = std::max(end_ms, incident_.start_ms);
    sink_.write_incident(incident_);
  }
}

void SampleRecorder::end_row(std::optional<OutageRow>& open, int64_t end_ms, int64_t down_samples,
                             const std::string& end_reason) {
  if (!open) return;
  OutageRow row = std::move(*open);
  open.reset();
  row.end_ms = std::max(end_ms, row.start_ms);
  row.down_samples = down_samples;
  row.end_reason = end_reason;
  sink_.write_outage(row);
}

OutageRow SampleRecorder::opened_row(const ProbeTracking& probe, const OutageTransition& transition, OutageKind kind) {
  OutageRow row;
  row.id = next_outage_id_++;
  row.probe_id = probe.probe_id;
  row.kind = kind;
  row.start_ms = transition.start_ms;
  row.error = transition.error;
  row.detail = transition.detail;
  row.down_samples = transition.down_samples;
  return row;
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
    if (membership.started) incident_.id = next_incident_id_++;
    incident_.start_ms = membership.start_ms;
    incident_.end_ms.reset();
    sink_.write_incident(incident_);
    live.open_outage_incident = incident_.id;
    probe.open_outage = opened_row(probe, transition, OutageKind::outage);
    probe.open_outage->incident_id = incident_.id;
    if (hooks_.in_maintenance) probe.open_outage->in_maintenance = hooks_.in_maintenance(*probe.config, transition.start_ms);
    sink_.write_outage(*probe.open_outage);
    if (hooks_.changed) hooks_.changed(probe_index, *probe.open_outage);
    if (log_transitions_) {
      log_warn("outage: opened probe={} start={} error={} detail={} incident={}", probe.config->name,
               format_iso8601_ms(transition.start_ms), to_string(transition.error), transition.detail,
               incident_.id);
    }
    return;
  }
  live.open_outage.reset();
  live.state_changed_ms = transition.end_ms;
  live.closed_outage_ms += transition.end_ms - transition.start_ms;
  std::optional<OutageRow> closed = probe.open_outage;
  end_row(probe.open_outage, transition.end_ms, transition.down_samples, "recovered");
  if (hooks_.changed && closed) {
    closed->end_ms = std::max(transition.end_ms, closed->start_ms);
    closed->down_samples = transition.down_samples;
    closed->end_reason = "recovered";
    hooks_.changed(probe_index, *closed);
  }
  if (auto incident_end = incidents_.outage_closed(transition.end_ms)) {
    incident_.end_ms = *incident_end;
    sink_.write_incident(incident_);
  }
  if (log_transitions_) {
    log_info("outage: closed probe={} duration={} down_samples={}", probe.config->name,
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
    probe.open_brownout = opened_row(probe, transition, OutageKind::brownout);
    sink_.write_outage(*probe.open_brownout);
    if (log_transitions_) {
      log_info("brownout: opened probe={} start={}", probe.config->name, format_iso8601_ms(transition.start_ms));
    }
    return;
  }
  live.open_brownout_start_ms.reset();
  live.state_changed_ms = transition.end_ms;
  end_row(probe.open_brownout, transition.end_ms, transition.down_samples, "recovered");
  if (log_transitions_) {
    log_info("brownout: closed probe={} duration={}", probe.config->name,
             format_duration_brief(transition.end_ms - transition.start_ms));
  }
}

}  // namespace blip
