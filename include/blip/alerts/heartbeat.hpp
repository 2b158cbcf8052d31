#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/config/config.hpp"

namespace blip {

// What became of the beats, as `blip_heartbeats_total{result}` counts them: `sent` (a 2xx
// answer), `failed` (any other answer, a network error, or the last beat still unanswered),
// `withheld` (blip was not well: nothing sent, so the far side notices).
struct HeartbeatCounts {
  uint64_t sent = 0;
  uint64_t failed = 0;
  uint64_t withheld = 0;
};

// `[[heartbeat]]`s: blip's own dead-man's switch. Every `every`, a GET to each `url`, made by
// the loop's own timer (a wedged or stopped loop beats no more) and only while blip is well
// (`unwell` says why not: the store not writing). A failed beat is not retried: the next one
// is. One beat in flight per heartbeat; never blocking (curl's multi on the loop). Loop thread
// only.
class Heartbeats {
 public:
  // Why blip should not beat now, or nullopt when it is well.
  using Unwell = std::function<std::optional<std::string>()>;

  Heartbeats(uv_loop_t* loop, CurlMultiUv& curl, const std::vector<HeartbeatConfig>& configs,
             Unwell unwell);
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;
  // Abandons beats in flight.
  ~Heartbeats();

  void stop();
  HeartbeatCounts counts() const { return counts_; }

 private:
  struct Beat;
  void beat(Beat& beat);
  void finished(Beat& beat, CURLcode code);

  CurlMultiUv& curl_;
  Unwell unwell_;
  std::vector<std::unique_ptr<Beat>> beats_;
  HeartbeatCounts counts_;
};

}  // namespace blip
