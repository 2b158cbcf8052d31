#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "blip/core/sample.hpp"

namespace blip {

// An outage opening or closing, as seen by OutageTracker.
struct OutageTransition {
  enum class Kind { opened, closed } kind;
  int64_t start_ms;           // send time of the first down sample
  int64_t end_ms = 0;         // completion time of the first up sample after it (closed only)
  ErrorClass error;           // of the first down sample
  std::string detail;         // of the first down sample
  int64_t down_samples = 0;   // so far (opened) or in all (closed)
};

// Finds outages online: a run of at least `confirm` consecutive down samples,
// fed in send order. Degraded samples count as answered (not down).
class OutageTracker {
 public:
  explicit OutageTracker(int confirm) : confirm_(confirm) {}

  std::optional<OutageTransition> observe(const Sample& sample);
  bool is_open() const { return open_; }
  int64_t consecutive_down() const { return consecutive_down_; }

 private:
  int confirm_;
  bool open_ = false;
  int64_t consecutive_down_ = 0;
  int64_t first_down_ms_ = 0;
  ErrorClass first_error_ = ErrorClass::none;
  std::string first_detail_;
};

}  // namespace blip
