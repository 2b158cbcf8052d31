#include "blip/alerts/alert_events.hpp"

namespace blip {
namespace {

AlertEvent event_of(AlertEvent::Kind kind, const ComponentConfig& config, int64_t now_ms) {
  AlertEvent event;
  event.kind = kind;
  event.probe = config.name;
  event.probe_kind = config.kind;
  event.probe_type = config.type;
  event.tags = config.tags;
  event.at_ms = now_ms;
  return event;
}

}  // namespace

std::vector<AlertEvent> AlertEvents::outage_changed(const ComponentConfig& component,
                                                    const OutageRow& row, int64_t now_ms) {
  AlertEvent event =
      event_of(row.end_ms ? AlertEvent::Kind::outage_closed : AlertEvent::Kind::outage_opened,
               component, now_ms);
  event.outage_id = row.id;
  event.incident_id = row.incident_id.value_or(0);
  event.start_ms = row.start_ms;
  event.end_ms = row.end_ms.value_or(0);
  event.error = row.error;
  event.detail = row.detail;
  if (row.end_ms) return {std::move(event)};
  auto observation = phases_.opened(component.name, row.start_ms, watching_since_ms_);
  event.text = std::move(observation.phase_text);
  std::vector<AlertEvent> events{event};
  if (observation.newly_found) {
    AlertEvent found = std::move(event);
    found.kind = AlertEvent::Kind::pattern_found;
    found.text = std::move(*observation.newly_found);
    events.push_back(std::move(found));
  }
  return events;
}

AlertEvent AlertEvents::job_forecast(const ComponentConfig& job, const std::string& text,
                                     int64_t now_ms) const {
  AlertEvent event = event_of(AlertEvent::Kind::job_forecast, job, now_ms);
  event.text = text;
  return event;
}

}  // namespace blip
