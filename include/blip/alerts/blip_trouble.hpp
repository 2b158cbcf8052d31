#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "blip/alerts/alert_event.hpp"
#include "blip/core/sample.hpp"

namespace blip {

// blip's own counters of what it lost or could not do, as the loop reads them.
struct BlipCounters {
  struct RemoteWrite {
    std::string endpoint;   // endpoint_label: never a credential
    uint64_t rejected = 0;  // points refused with a 4xx other than 429, dropped
    uint64_t expired = 0;   // samples pruned (--retain) before they were sent
  };
  uint64_t dropped_samples = 0;    // the store's queue was full
  uint64_t dropped_log_lines = 0;  // the log's queue overran, or stderr would not take them
  int64_t store_set_aside_at_ms = 0;
  std::string store_set_aside_reason;
  std::vector<RemoteWrite> remote_writes;
};

// Alerts about blip itself, under the component `blip` (DESIGN: "Alerts about blip itself"):
// the database set aside as damaged, samples dropped from a full store queue, log lines
// dropped, remote-write points rejected or a backlog pruned unsent, the loop blind for more
// than a minute. They are grouped as outages are: a spell of trouble is one incident of the
// `blip` component (its id is minus its start in ms, so it never meets a store incident's),
// each kind of trouble in it one "outage" (opened when first seen, carrying the words), and the
// spell ends when nothing more has happened for `settle_ms`: then each kind closes, at its last
// occurrence, with what it counted over the whole spell. A receiver that refuses every batch
// is one opened and one resolved message, however long it goes on. Loop thread only.
class BlipTroubleWatch {
 public:
  static constexpr int64_t kDefaultSettleMs = 10 * 60'000;
  static constexpr int64_t kLongBlindMs = 60'000;

  explicit BlipTroubleWatch(int64_t settle_ms = kDefaultSettleMs) : settle_ms_(settle_ms) {}

  // The events the counters' growth since the last call makes (counters that start again
  // from zero, a reloaded remote-write sender's, count from zero), and the spell's end once
  // nothing has happened for `settle_ms`.
  std::vector<AlertEvent> observe(const BlipCounters& counters, int64_t now_ms);
  // A blind window as the loop watch closes it: trouble when it lasted over a minute.
  std::vector<AlertEvent> blind(const BlindWindow& window, int64_t now_ms);

 private:
  // blip's own outage ids: below any a restored incident uses (-1, -2, …), never a store id.
  static constexpr int64_t kFirstOutageId = -(int64_t{1} << 50);
  using Words = std::function<std::string(uint64_t)>;
  // One kind of trouble in the open spell.
  struct Open {
    AlertEvent opened;
    uint64_t total = 0;  // over the spell: counted things, or occurrences of a one-off
    Words words;         // what `total` of it means, for the closing event
    int64_t last_ms = 0;
  };
  // `n` of trouble `key` happened now: opens the spell, or that kind in it, or adds to it.
  void happened(std::vector<AlertEvent>& events, const std::string& key, std::string trouble,
                uint64_t n, Words words, int64_t now_ms);
  // How much a counter grew since it was last read.
  uint64_t grown(const std::string& key, uint64_t counter);

  int64_t settle_ms_;
  std::map<std::string, uint64_t> counted_;  // each counter as last read, by key
  std::map<std::string, Open> open_;         // the open spell's troubles, by key
  int64_t spell_id_ = 0;                     // 0: no spell open
  int64_t next_outage_id_ = kFirstOutageId;
  bool set_aside_told_ = false;
};

}  // namespace blip
