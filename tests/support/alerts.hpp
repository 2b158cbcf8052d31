#pragma once
#include <cstdint>
#include <string>

#include "blip/alerts/alert_event.hpp"
#include "blip/config/config.hpp"

namespace blip::test {

// The alert and the events the alert suites send: a receiver of `kind` at `url`
// (2 s timeout, retried for 30 s), an HTTP probe's outage opened with a timeout,
// and the same outage closed `duration_ms` after it began.
AlertConfig alert_to(const std::string& name, AlertConfig::Kind kind, const std::string& url);
AlertEvent opened_event(const std::string& probe, int64_t outage_id, int64_t start_ms);
AlertEvent closed_event(const AlertEvent& opened, int64_t duration_ms);

}  // namespace blip::test
