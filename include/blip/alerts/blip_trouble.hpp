#pragma once
#include <cstdint>
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
// than a minute. A trouble is told when first seen, then at most once per `quiet_ms` while it
// goes on, each message counting what happened since the one before: a receiver that refuses
// every batch is one message, not one a second. Loop thread only.
class BlipTroubleWatch {
 public:
  static constexpr int64_t kDefaultQuietMs = 30 * 60'000;
  static constexpr int64_t kLongBlindMs = 60'000;

  explicit BlipTroubleWatch(int64_t quiet_ms = kDefaultQuietMs) : quiet_ms_(quiet_ms) {}

  // The events the counters' growth since the last call makes (counters that start again
  // from zero, a reloaded remote-write sender's, count from zero).
  std::vector<AlertEvent> observe(const BlipCounters& counters, int64_t now_ms);
  // A blind window as the loop watch closes it: an event when it lasted over a minute.
  std::optional<AlertEvent> blind(const BlindWindow& window, int64_t now_ms) const;

 private:
  struct Trouble {
    uint64_t counted = 0;  // the counter when last read
    uint64_t untold = 0;   // growth not yet in a message
    int64_t quiet_until_ms = 0;
  };
  // Reads one counter: how much to tell now (something untold, and the trouble not quiet).
  std::optional<uint64_t> count(const std::string& key, uint64_t counter, int64_t now_ms);

  int64_t quiet_ms_;
  std::map<std::string, Trouble> troubles_;  // by key: the `trouble` field and endpoint
  bool set_aside_told_ = false;
};

}  // namespace blip
