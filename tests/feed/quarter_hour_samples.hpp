#pragma once
// A long, plain history for the feed's hour-cache tests: every probe up, a sample
// every 15 minutes (an hour_totals row each hour), flushed once a simulated day.
#include <cstdint>
#include <vector>

#include "blip/store/store.hpp"

namespace blip::test {

inline void write_quarter_hour_samples(Store& store, const std::vector<int64_t>& probe_ids,
                                       int64_t from_ms, int64_t to_ms) {
  constexpr int64_t kQuarterHourMs = 900'000;
  for (int64_t t = from_ms; t < to_ms; t += kQuarterHourMs) {
    for (int64_t id : probe_ids) {
      Sample sample;
      sample.sent_ms = t;
      sample.status = Status::up;
      sample.latency_us = 1000;
      store.add_sample(id, sample);
    }
    if ((t / kQuarterHourMs) % 96 == 0) store.flush(t);
  }
  store.flush(to_ms);
}

}  // namespace blip::test
