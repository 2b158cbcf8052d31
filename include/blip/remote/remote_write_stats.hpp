#pragma once
#include <cstdint>
#include <string>

namespace blip {

// What /metrics shows of one remote-write endpoint (never its credentials).
struct RemoteWriteStats {
  std::string endpoint;         // endpoint_label(url)
  uint64_t sent = 0;            // points the endpoint acknowledged
  uint64_t retried = 0;         // points in requests that failed and are tried again
  uint64_t rejected = 0;        // points in requests refused with a 4xx (not 429): dropped
  uint64_t expired = 0;         // samples pruned (--retain) before they were sent
  double lag_seconds = 0;       // how old the oldest sample not yet acknowledged is
  int64_t pending_samples = 0;  // stored samples not yet acknowledged (about)
  double cpu_seconds = 0;       // the sender thread's own CPU time
};

}  // namespace blip
