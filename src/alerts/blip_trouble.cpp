#include "blip/alerts/blip_trouble.hpp"

#include <fmt/format.h>

#include <utility>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

// The component every alert about blip itself is under: an `[[alert]]` selects it as
// `probes = ["blip"]`, or gets it with no selector.
constexpr const char* kComponent = "blip";

AlertEvent trouble_event(std::string trouble, std::string text, int64_t now_ms) {
  AlertEvent event;
  event.kind = AlertEvent::Kind::blip_trouble;
  event.probe = kComponent;
  event.probe_type = kComponent;
  event.trouble = std::move(trouble);
  event.text = std::move(text);
  event.at_ms = now_ms;
  return event;
}

}  // namespace

std::optional<uint64_t> BlipTroubleWatch::count(const std::string& key, uint64_t counter,
                                                int64_t now_ms) {
  Trouble& trouble = troubles_[key];
  trouble.untold += counter >= trouble.counted ? counter - trouble.counted : counter;
  trouble.counted = counter;
  if (trouble.untold == 0 || now_ms < trouble.quiet_until_ms) return std::nullopt;
  trouble.quiet_until_ms = now_ms + quiet_ms_;
  return std::exchange(trouble.untold, 0);
}

std::vector<AlertEvent> BlipTroubleWatch::observe(const BlipCounters& counters, int64_t now_ms) {
  std::vector<AlertEvent> events;
  if (counters.store_set_aside_at_ms != 0 && !set_aside_told_) {
    set_aside_told_ = true;
    events.push_back(trouble_event(
        "store_set_aside",
        fmt::format("the database was damaged ({}) and set aside at start-up; a new one was "
                    "started, the old file is kept beside it",
                    counters.store_set_aside_reason),
        now_ms));
  }
  if (auto n = count("store_queue_full", counters.dropped_samples, now_ms)) {
    events.push_back(trouble_event(
        "store_queue_full",
        fmt::format("{} samples dropped: the store's queue was full (the disk or the database "
                    "file is not keeping up)",
                    *n),
        now_ms));
  }
  if (auto n = count("log_dropped", counters.dropped_log_lines, now_ms)) {
    events.push_back(trouble_event(
        "log_dropped",
        fmt::format("{} log lines dropped (the log's queue overran, or stderr would not take them)",
                    *n),
        now_ms));
  }
  for (const BlipCounters::RemoteWrite& remote : counters.remote_writes) {
    if (auto n = count("remote_write_rejected " + remote.endpoint, remote.rejected, now_ms)) {
      events.push_back(trouble_event(
          "remote_write_rejected",
          fmt::format("remote-write to {} rejected {} points (a 4xx answer other than 429: those "
                      "batches are dropped; the log says why)",
                      remote.endpoint, *n),
          now_ms));
    }
    if (auto n = count("remote_write_expired " + remote.endpoint, remote.expired, now_ms)) {
      events.push_back(trouble_event(
          "remote_write_expired",
          fmt::format("remote-write to {}: {} samples were pruned (--retain) before they could "
                      "be sent",
                      remote.endpoint, *n),
          now_ms));
    }
  }
  return events;
}

std::optional<AlertEvent> BlipTroubleWatch::blind(const BlindWindow& window, int64_t now_ms) const {
  const int64_t lasted = window.end_ms - window.start_ms;
  if (lasted <= kLongBlindMs) return std::nullopt;
  return trouble_event(
      "loop_blind",
      fmt::format("blind for {} from {} ({}): nothing was probed", format_duration_brief(lasted),
                  format_iso8601_ms(window.start_ms), window.reason),
      now_ms);
}

}  // namespace blip
