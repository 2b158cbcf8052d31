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

// Packs one probe's consecutive samples into a compact byte string.
//
// Layout 2 (since issue 22), each column coded on its own: the bytes 0x00 0x22 (a send-time
// delta of 0 and a header byte with bit 5 set, which layout 1 never writes), the sample count,
// then columns of: send-time delta of delta (ms), status, DNS, connect, TLS and first byte,
// then latency less the sum of the phases (10 µs units), and for down samples only their error
// class, detail id and the length of their detail's numbers, then those numbers' bytes. A column is
// one value, runs of values, or the values less their least packed in the fewest bits that
// hold most of them, the rest patched in after (a timeout among 2 ms answers). About 4 bytes
// a sample with four noisy phases (within a bit a column of their order-0 entropy), a fraction
// of a byte for steady numbers.
//
// Layout 1 (older blocks, and a block of more than kMaxColumnarSamples samples): per sample a
// zigzag varint of the change in send-time delta, a header byte (status and which phases are
// non-zero), for down samples the error class and a detail id (and, with header bit 4, the
// detail's numbers as a length-prefixed string), then varints of latency and the non-zero
// phases in 10 µs units; about 6-9 bytes a sample.
// Only down samples carry an error class; others decode as ErrorClass::none.
inline constexpr int64_t kMaxColumnarSamples = 65'536;  // bounds what a corrupt count allocates

class SampleBlockEncoder {
 public:
  enum class Layout : uint8_t { legacy = 1, columnar = 2 };
  explicit SampleBlockEncoder(int64_t base_ms, Layout layout = Layout::columnar)
      : base_ms_(base_ms), layout_(layout) {}
  void append(const Sample& sample, int64_t detail_id, std::string_view detail_numbers = {});
  int64_t base_ms() const { return base_ms_; }
  int64_t count() const { return static_cast<int64_t>(samples_.size()); }
  // Encoded when asked (a columnar block is laid out whole), then kept until the next append.
  const std::string& bytes() const;

 private:
  struct Entry {
    int64_t sent_ms;
    uint64_t latency_units;
    uint64_t phase_units[4];
    Status status;
    ErrorClass error;
    int64_t detail_id;
    std::string detail_numbers;
  };
  void encode_legacy() const;
  void encode_columnar() const;

  int64_t base_ms_;
  Layout layout_;
  std::vector<Entry> samples_;
  mutable std::string bytes_;
  mutable bool encoded_ = true;
};

// Throws std::runtime_error on a truncated or corrupt block.
std::vector<StoredSample> decode_sample_block(int64_t base_ms, std::string_view bytes);
// The same, appended to `out` (a reader's vector, its room kept from block to block); after a
// throw `out` may end with part of the block.
void decode_sample_block(int64_t base_ms, std::string_view bytes, std::vector<StoredSample>& out);

}  // namespace blip
