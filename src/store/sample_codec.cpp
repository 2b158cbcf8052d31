#include "blip/store/sample_codec.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace blip {
namespace {

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

uint64_t zigzag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}
int64_t unzigzag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return position_ >= bytes_.size(); }
  uint8_t byte() {
    if (done()) throw std::runtime_error("sample block truncated");
    return static_cast<uint8_t>(bytes_[position_++]);
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
    }
    throw std::runtime_error("sample block has an overlong varint");
  }
  // A duration stored in `unit_us` units, in microseconds (a corrupt count
  // must not overflow the multiplication).
  int64_t time_us(int64_t unit_us) {
    const uint64_t units = varint();
    if (units > static_cast<uint64_t>(INT64_MAX / unit_us)) {
      throw std::runtime_error("sample block has an out-of-range duration");
    }
    return static_cast<int64_t>(units) * unit_us;
  }
  std::string bytes(uint64_t count) {
    if (count > bytes_.size() - position_) throw std::runtime_error("sample block truncated");
    std::string out(bytes_.substr(position_, count));
    position_ += count;
    return out;
  }

 private:
  std::string_view bytes_;
  size_t position_ = 0;
};

}  // namespace

// Times are stored in 10 µs units: finer than any network phase we care about,
// and it keeps a loopback sample's numbers within one varint byte.
constexpr int64_t kTimeUnitUs = 10;
// A sample is sent within a century of its block's minute: clocks step, but
// not that far, and a corrupt delta stops here instead of overflowing.
constexpr int64_t kMaxSampleOffsetMs = int64_t{100} * 365 * 86'400'000;
// Header bit 4: the detail's numbers follow its id (older blocks never set it).
constexpr uint8_t kNumbersBit = 0x10;

uint64_t to_units(int64_t us) {
  return static_cast<uint64_t>((std::max<int64_t>(0, us) + kTimeUnitUs / 2) / kTimeUnitUs);
}

std::string detail_template(std::string_view detail, std::string& numbers) {
  std::string template_text;
  numbers.clear();
  auto digit = [&](size_t at) {
    return at < detail.size() && detail[at] >= '0' && detail[at] <= '9';
  };
  for (size_t at = 0; at < detail.size();) {
    if (!digit(at)) {
      template_text += detail[at++];
      continue;
    }
    const size_t start = at;
    while (digit(at)) ++at;
    if (at + 1 < detail.size() && detail[at] == '.' && digit(at + 1)) {
      ++at;
      while (digit(at)) ++at;
    }
    if (template_text.find(kDetailNumber) != std::string::npos) numbers += ',';
    numbers.append(detail.substr(start, at - start));
    template_text += kDetailNumber;
  }
  return template_text;
}

std::string detail_from_template(std::string_view template_text, std::string_view numbers) {
  std::string detail;
  for (char c : template_text) {
    if (c != kDetailNumber) {
      detail += c;
      continue;
    }
    const size_t comma = numbers.find(',');
    detail.append(numbers.substr(0, comma));
    numbers = comma == std::string_view::npos ? std::string_view() : numbers.substr(comma + 1);
  }
  return detail;
}

void SampleBlockEncoder::append(const Sample& sample, int64_t detail_id,
                                std::string_view detail_numbers) {
  // Delta of delta: a probe firing on its interval costs one byte for its time.
  const int64_t delta = sample.sent_ms - previous_ms_;
  put_varint(bytes_, zigzag(delta - previous_delta_));
  previous_ms_ = sample.sent_ms;
  previous_delta_ = delta;
  const Phases& p = sample.phases;
  const int64_t phases[] = {p.dns_us, p.connect_us, p.tls_us, p.first_byte_us};
  const bool down = sample.status == Status::down;
  uint8_t header = static_cast<uint8_t>(static_cast<uint8_t>(sample.status) << 6);
  for (int i = 0; i < 4; ++i) {
    if (to_units(phases[i]) > 0) header |= static_cast<uint8_t>(1 << i);
  }
  if (down && !detail_numbers.empty()) header |= kNumbersBit;
  bytes_.push_back(static_cast<char>(header));
  if (down) {
    bytes_.push_back(static_cast<char>(sample.error));
    put_varint(bytes_, static_cast<uint64_t>(detail_id));
    if (header & kNumbersBit) {
      put_varint(bytes_, detail_numbers.size());
      bytes_.append(detail_numbers);
    }
  }
  put_varint(bytes_, to_units(sample.latency_us));
  for (int i = 0; i < 4; ++i) {
    if (header & (1 << i)) put_varint(bytes_, to_units(phases[i]));
  }
  ++count_;
}

std::vector<StoredSample> decode_sample_block(int64_t base_ms, std::string_view bytes) {
  std::vector<StoredSample> out;
  decode_sample_block(base_ms, bytes, out);
  return out;
}

void decode_sample_block(int64_t base_ms, std::string_view bytes, std::vector<StoredSample>& out) {
  Reader reader(bytes);
  int64_t previous_ms = base_ms;
  int64_t previous_delta = 0;
  while (!reader.done()) {
    // Decoded in place: a Sample is large enough that moving each one in shows in a profile.
    StoredSample& stored = out.emplace_back();
    Sample& s = stored.sample;
    int64_t delta = 0;
    int64_t offset_ms = 0;
    if (__builtin_add_overflow(previous_delta, unzigzag(reader.varint()), &delta) ||
        __builtin_add_overflow(previous_ms, delta, &s.sent_ms) ||
        __builtin_sub_overflow(s.sent_ms, base_ms, &offset_ms) || offset_ms > kMaxSampleOffsetMs ||
        offset_ms < -kMaxSampleOffsetMs) {
      throw std::runtime_error("sample block has an out-of-range send time");
    }
    previous_ms = s.sent_ms;
    previous_delta = delta;
    const uint8_t header = reader.byte();
    if ((header & 0x20) != 0) throw std::runtime_error("sample block has an invalid header");
    s.status = static_cast<Status>(header >> 6);
    if (s.status == Status::down) {
      uint8_t error = reader.byte();
      if (error >= kErrorClassCount)
        throw std::runtime_error("sample block has an invalid error class");
      s.error = static_cast<ErrorClass>(error);
      stored.detail_id = static_cast<int64_t>(reader.varint());
      if (header & kNumbersBit) stored.detail_numbers = reader.bytes(reader.varint());
    }
    s.latency_us = reader.time_us(kTimeUnitUs);
    int64_t* phases[] = {&s.phases.dns_us, &s.phases.connect_us, &s.phases.tls_us,
                         &s.phases.first_byte_us};
    for (int i = 0; i < 4; ++i) {
      if (header & (1 << i)) *phases[i] = reader.time_us(kTimeUnitUs);
    }
  }
}

}  // namespace blip
