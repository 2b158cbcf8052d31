#include "support/alerts.hpp"

namespace blip::test {

AlertConfig alert_to(const std::string& name, AlertConfig::Kind kind, const std::string& url) {
  AlertConfig alert;
  alert.name = name;
  alert.kind = kind;
  alert.url = url;
  alert.timeout_ms = 2000;
  alert.retry_for_ms = 30'000;
  return alert;
}

AlertEvent opened_event(const std::string& probe, int64_t outage_id, int64_t start_ms) {
  AlertEvent event;
  event.kind = AlertEvent::Kind::outage_opened;
  event.probe = probe;
  event.probe_type = "http";
  event.tags = {"web"};
  event.outage_id = outage_id;
  event.start_ms = start_ms;
  event.error = ErrorClass::timeout;
  event.detail = "no answer within 1s";
  event.at_ms = start_ms + 500;
  return event;
}

AlertEvent closed_event(const AlertEvent& opened, int64_t duration_ms) {
  AlertEvent event = opened;
  event.kind = AlertEvent::Kind::outage_closed;
  event.end_ms = opened.start_ms + duration_ms;
  event.at_ms = event.end_ms;
  event.text.clear();
  return event;
}

}  // namespace blip::test
