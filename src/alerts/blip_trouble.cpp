#include "blip/alerts/blip_trouble.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

// A one-off trouble's words: the first occurrence's, and how many there were.
std::function<std::string(uint64_t)> once_words(std::string first) {
  return [first = std::move(first)](uint64_t n) {
    return n <= 1 ? first : fmt::format("{} ({} times in this spell)", first, n);
  };
}

}  // namespace

uint64_t BlipTroubleWatch::grown(const std::string& key, uint64_t counter) {
  uint64_t& counted = counted_[key];
  const uint64_t growth = counter >= counted ? counter - counted : counter;
  counted = counter;
  return growth;
}

void BlipTroubleWatch::happened(std::vector<AlertEvent>& events, const std::string& key,
                                std::string trouble, uint64_t n, Words words, int64_t now_ms) {
  if (spell_id_ == 0) spell_id_ = -now_ms;
  auto [found, created] = open_.try_emplace(key);
  Open& open = found->second;
  open.total += n;
  open.last_ms = now_ms;
  if (!created) return;  // told at the spell's end, with the rest of it
  AlertEvent& event = open.opened;
  event.kind = AlertEvent::Kind::outage_opened;
  event.probe = kBlipComponent;
  event.probe_type = kBlipComponent;
  event.outage_id = next_outage_id_--;
  event.incident_id = spell_id_;
  event.start_ms = now_ms;
  event.detail = words(n);
  event.trouble = std::move(trouble);
  event.at_ms = now_ms;
  open.words = std::move(words);
  events.push_back(event);
}

std::vector<AlertEvent> BlipTroubleWatch::observe(const BlipCounters& counters, int64_t now_ms) {
  std::vector<AlertEvent> events;
  if (counters.store_set_aside_at_ms != 0 && !set_aside_told_) {
    set_aside_told_ = true;
    happened(events, "store_set_aside", "store_set_aside", 1,
             once_words(fmt::format("the database was damaged ({}) and set aside at start-up; a "
                                    "new one was started, the old file is kept beside it",
                                    counters.store_set_aside_reason)),
             now_ms);
  }
  // blip's counters of trouble, each with its words for a spell's total.
  struct Counted {
    const char* trouble;
    std::string endpoint;  // per remote-write endpoint, or ""
    uint64_t counter;
    std::string (*words)(const std::string& endpoint, uint64_t total);
  };
  std::vector<Counted> counted{
      {"store_queue_full", "", counters.dropped_samples,
       [](const std::string&, uint64_t total) {
         return fmt::format(
             "{} samples dropped: the store's queue was full (the disk or the database "
             "file is not keeping up)",
             total);
       }},
      {"log_dropped", "", counters.dropped_log_lines, [](const std::string&, uint64_t total) {
         return fmt::format(
             "{} log lines dropped (the log's queue overran, or stderr would not take them)",
             total);
       }}};
  for (const BlipCounters::RemoteWrite& remote : counters.remote_writes) {
    counted.push_back({"remote_write_rejected", remote.endpoint, remote.rejected,
                       [](const std::string& endpoint, uint64_t total) {
                         return fmt::format(
                             "remote-write to {} rejected {} points (a 4xx answer other than "
                             "429: those batches are dropped; the log says why)",
                             endpoint, total);
                       }});
    counted.push_back({"remote_write_expired", remote.endpoint, remote.expired,
                       [](const std::string& endpoint, uint64_t total) {
                         return fmt::format(
                             "remote-write to {}: {} samples were pruned (--retain) before "
                             "they could be sent",
                             endpoint, total);
                       }});
  }
  for (Counted& kind : counted) {
    const std::string key =
        kind.endpoint.empty() ? kind.trouble : fmt::format("{} {}", kind.trouble, kind.endpoint);
    if (uint64_t n = grown(key, kind.counter)) {
      happened(
          events, key, kind.trouble, n,
          [words = kind.words, endpoint = std::move(kind.endpoint)](uint64_t total) {
            return words(endpoint, total);
          },
          now_ms);
    }
  }
  int64_t last_ms = 0;
  for (const auto& [key, open] : open_) last_ms = std::max(last_ms, open.last_ms);
  if (!open_.empty() && now_ms - last_ms >= settle_ms_) {
    // Quiet long enough: each kind closes at its last occurrence, with its whole count.
    for (auto& [key, open] : open_) {
      AlertEvent closed = std::move(open.opened);
      closed.kind = AlertEvent::Kind::outage_closed;
      closed.end_ms = open.last_ms;
      closed.detail = open.words(open.total);
      closed.at_ms = now_ms;
      events.push_back(std::move(closed));
    }
    open_.clear();
    spell_id_ = 0;
  }
  return events;
}

std::vector<AlertEvent> BlipTroubleWatch::blind(const BlindWindow& window, int64_t now_ms) {
  std::vector<AlertEvent> events;
  const int64_t lasted = window.end_ms - window.start_ms;
  if (lasted <= kLongBlindMs) return events;
  happened(events, "loop_blind", "loop_blind", 1,
           once_words(fmt::format("blind for {} from {} ({}): nothing was probed",
                                  format_duration_brief(lasted), format_iso8601_ms(window.start_ms),
                                  window.reason)),
           now_ms);
  return events;
}

}  // namespace blip
