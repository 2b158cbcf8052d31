#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blip/core/sample.hpp"

namespace blip {

// An outage opening or closing, as seen by OutageTracker.
struct OutageTransition {
  enum class Kind { opened, closed } kind;
  int64_t start_ms;          // send time of the first down sample
  int64_t end_ms = 0;        // completion time of the first up sample after it (closed only)
  ErrorClass error;          // of the first down sample
  std::string detail;        // of the first down sample
  int64_t down_samples = 0;  // so far (opened) or in all (closed)
};

// Finds outages online: a run of at least `confirm` consecutive down samples,
// fed in send order. Degraded samples count as answered (not down). With
// `counted = Status::degraded` it finds brownouts the same way: runs of
// degraded samples, ended by any sample that is not degraded.
class OutageTracker {
 public:
  explicit OutageTracker(int confirm, Status counted = Status::down)
      : confirm_(confirm), counted_(counted) {}

  std::optional<OutageTransition> observe(const Sample& sample);
  bool is_open() const { return open_; }
  int64_t consecutive_down() const { return consecutive_down_; }

 private:
  int confirm_;
  Status counted_;
  bool open_ = false;
  int64_t consecutive_down_ = 0;
  int64_t first_down_ms_ = 0;
  int64_t first_down_mono_us_ = 0;
  ErrorClass first_error_ = ErrorClass::none;
  std::string first_detail_;
};

// Groups outages of different probes into incidents, online: an outage joins
// the current incident while any of its outages is still open, or when it
// starts within `join_gap_ms` of the incident's end and its probe is not in
// the incident yet (a probe that goes down again later is a new incident, or
// a flapping probe would chain everything into one). Incidents are numbered
// from 1 in the order they begin.
class IncidentTracker {
 public:
  explicit IncidentTracker(int64_t join_gap_ms = 5'000) : join_gap_ms_(join_gap_ms) {}

  struct Membership {
    int64_t incident;  // its number
    bool started;      // this outage began a new incident
    int64_t start_ms;  // the incident's start so far (the earliest outage start)
  };
  Membership outage_opened(size_t probe, int64_t start_ms);
  // The incident's end when this was its last open outage (it may still be
  // extended by an outage starting within the join gap).
  std::optional<int64_t> outage_closed(int64_t end_ms);
  bool has_open_outages() const { return open_outages_ > 0; }

 private:
  int64_t join_gap_ms_;
  int64_t incident_ = 0;
  int64_t start_ms_ = 0;
  int64_t end_ms_ = 0;
  int open_outages_ = 0;
  std::vector<size_t> probes_;  // in the current incident
};

}  // namespace blip
