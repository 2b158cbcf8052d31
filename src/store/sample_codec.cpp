#include "blip/store/sample_codec.hpp"

#include <algorithm>
#include <stdexcept>

namespace blip {
namespace {

enum PhaseBits : uint8_t { kDns = 1, kConnect = 2, kTls = 4, kFirstByte = 8 };

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
  int64_t signed_varint() { return static_cast<int64_t>(varint()); }

 private:
  std::string_view bytes_;
  size_t position_ = 0;
};

}  // namespace

void SampleBlockEncoder::append(const Sample& sample, int64_t detail_id) {
  put_varint(bytes_, zigzag(sample.sent_ms - previous_ms_));
  previous_ms_ = sample.sent_ms;
  bytes_.push_back(static_cast<char>((static_cast<uint8_t>(sample.status) << 6) |
                                     (static_cast<uint8_t>(sample.error) & 0x3f)));
  put_varint(bytes_, static_cast<uint64_t>(std::max<int64_t>(0, sample.latency_us)));
  const Phases& p = sample.phases;
  uint8_t present = (p.dns_us > 0 ? kDns : 0) | (p.connect_us > 0 ? kConnect : 0) |
                    (p.tls_us > 0 ? kTls : 0) | (p.first_byte_us > 0 ? kFirstByte : 0);
  bytes_.push_back(static_cast<char>(present));
  for (int64_t phase : {p.dns_us, p.connect_us, p.tls_us, p.first_byte_us}) {
    if (phase > 0) put_varint(bytes_, static_cast<uint64_t>(phase));
  }
  if (sample.status == Status::down) put_varint(bytes_, static_cast<uint64_t>(detail_id));
  ++count_;
}

std::vector<StoredSample> decode_sample_block(int64_t base_ms, std::string_view bytes) {
  std::vector<StoredSample> out;
  Reader reader(bytes);
  int64_t previous_ms = base_ms;
  while (!reader.done()) {
    StoredSample stored;
    Sample& s = stored.sample;
    s.sent_ms = previous_ms + unzigzag(reader.varint());
    previous_ms = s.sent_ms;
    uint8_t status_error = reader.byte();
    if ((status_error >> 6) > 2 || (status_error & 0x3f) >= kErrorClassCount) {
      throw std::runtime_error("sample block has an invalid status");
    }
    s.status = static_cast<Status>(status_error >> 6);
    s.error = static_cast<ErrorClass>(status_error & 0x3f);
    s.latency_us = reader.signed_varint();
    uint8_t present = reader.byte();
    if (present & kDns) s.phases.dns_us = reader.signed_varint();
    if (present & kConnect) s.phases.connect_us = reader.signed_varint();
    if (present & kTls) s.phases.tls_us = reader.signed_varint();
    if (present & kFirstByte) s.phases.first_byte_us = reader.signed_varint();
    if (s.status == Status::down) stored.detail_id = reader.signed_varint();
    out.push_back(std::move(stored));
  }
  return out;
}

}  // namespace blip
