#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blip/core/sample.hpp"

namespace blip {

// A stored sample; its down-sample detail is an id into the details table
// (the detail's text with each number as kDetailNumber) plus its numbers.
struct StoredSample {
  Sample sample;
  int64_t detail_id = 0;       // 0: none
  std::string detail_numbers;  // comma-separated, in order
};

// Where a number stood in a stored detail template (details never hold control characters).
inline constexpr char kDetailNumber = '\x1f';
// "replay 1.2 MB behind for 31s" -> "replay \x1f MB behind for \x1fs", numbers "1.2,31".
std::string detail_template(std::string_view detail, std::string& numbers);
std::string detail_from_template(std::string_view template_text, std::string_view numbers);

// Packs one probe's consecutive samples into a compact byte string. Per
// sample: a zigzag varint of the change in send-time delta, a header byte
// (status and which phases are non-zero), for down samples the error class
// and a detail id (and, with header bit 4, the detail's numbers as a
// length-prefixed string), then varints of latency and the non-zero phases in 10 µs
// units. About 6-9 bytes a sample, against ~25 for a plain SQLite row.
// Only down samples carry an error class; others decode as ErrorClass::none.
class SampleBlockEncoder {
 public:
  explicit SampleBlockEncoder(int64_t base_ms) : base_ms_(base_ms), previous_ms_(base_ms) {}
  // Continues a block already stored (blip restarted within its minute).
  SampleBlockEncoder(int64_t base_ms, std::string existing, int64_t count, int64_t last_sent_ms,
                     int64_t last_delta_ms)
      : base_ms_(base_ms),
        previous_ms_(last_sent_ms),
        previous_delta_(last_delta_ms),
        count_(count),
        bytes_(std::move(existing)) {}
  void append(const Sample& sample, int64_t detail_id, std::string_view detail_numbers = {});
  int64_t base_ms() const { return base_ms_; }
  int64_t count() const { return count_; }
  const std::string& bytes() const { return bytes_; }

 private:
  int64_t base_ms_;
  int64_t previous_ms_;
  int64_t previous_delta_ = 0;
  int64_t count_ = 0;
  std::string bytes_;
};

// Throws std::runtime_error on a truncated or corrupt block.
std::vector<StoredSample> decode_sample_block(int64_t base_ms, std::string_view bytes);
// The same, appended to `out` (a reader's vector, its room kept from block to block); after a
// throw `out` may end with part of the block.
void decode_sample_block(int64_t base_ms, std::string_view bytes, std::vector<StoredSample>& out);

}  // namespace blip
