#include "blip/store/sample_codec.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
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
  std::string bytes(uint64_t count) { return std::string(view(count)); }
  std::string_view view(uint64_t count) {
    if (count > bytes_.size() - position_) throw std::runtime_error("sample block truncated");
    std::string_view out = bytes_.substr(position_, count);
    position_ += count;
    return out;
  }
  size_t left() const { return bytes_.size() - position_; }

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

// Rounded to the nearest unit, and at most what decodes back within int64 (adding the half
// unit first overflowed for a latency near INT64_MAX).
uint64_t to_units(int64_t us) {
  if (us <= 0) return 0;
  const int64_t units = us / kTimeUnitUs + (us % kTimeUnitUs >= kTimeUnitUs / 2 ? 1 : 0);
  return static_cast<uint64_t>(std::min(units, INT64_MAX / kTimeUnitUs));
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

namespace {

// A layout-2 block begins 0x00 0x22: a delta of 0, then a header byte with bit 5 set, which
// layout 1 rejects (so a blip from before reads a new block as corrupt, not as wrong samples).
constexpr char kColumnarMark[2] = {'\x00', '\x22'};
constexpr int64_t kMaxUnits = INT64_MAX / kTimeUnitUs;

// How a column is coded: one value; runs of values; or the values less their least, packed.
constexpr uint8_t kConstant = 0;
constexpr uint8_t kRuns = 1;
constexpr uint8_t kPacked = 2;
// Packed values are read with one unaligned 64-bit load each: at most 57 bits a value.
constexpr int kMaxPackedBits = 57;

size_t varint_size(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

size_t runs_size(const std::vector<uint64_t>& values) {
  size_t size = 0;
  size_t runs = 0;
  for (size_t i = 0; i < values.size();) {
    size_t j = i + 1;
    while (j < values.size() && values[j] == values[i]) ++j;
    size += varint_size(values[i]) + varint_size(j - i);
    ++runs;
    i = j;
  }
  return size + varint_size(runs);
}

void put_runs(std::string& out, const std::vector<uint64_t>& values) {
  size_t runs = 0;
  for (size_t i = 0; i < values.size(); ++runs) {
    size_t j = i + 1;
    while (j < values.size() && values[j] == values[i]) ++j;
    i = j;
  }
  out.push_back(static_cast<char>(kRuns));
  put_varint(out, runs);
  for (size_t i = 0; i < values.size();) {
    size_t j = i + 1;
    while (j < values.size() && values[j] == values[i]) ++j;
    put_varint(out, values[i]);
    put_varint(out, j - i);
    i = j;
  }
}

void put_column(std::string& out, const std::vector<uint64_t>& values) {
  if (values.empty()) return;  // no values, no bytes
  const auto [least, most] = std::minmax_element(values.begin(), values.end());
  const uint64_t base = *least;
  if (*most == base) {
    out.push_back(static_cast<char>(kConstant));
    put_varint(out, base);
    return;
  }
  // The width that costs least: each value wider than it is patched in after, as its
  // index gap (about a byte) and its high bits.
  size_t count_at_width[65] = {};
  for (uint64_t value : values) ++count_at_width[std::bit_width(value - base)];
  const int widest = std::bit_width(*most - base);  // no wider width need be tried
  const size_t n = values.size();
  int width = 0;
  size_t packed = SIZE_MAX;
  for (int w = 0; w <= std::min(widest, kMaxPackedBits); ++w) {
    size_t size = (n * static_cast<size_t>(w) + 7) / 8;
    size_t patches = 0;
    for (int b = w + 1; b <= widest; ++b) {
      patches += count_at_width[b];
      size += count_at_width[b] * (1 + static_cast<size_t>(b - w + 6) / 7);
    }
    size += varint_size(patches);
    if (size < packed) {
      packed = size;
      width = w;
    }
  }
  if (runs_size(values) <= packed + varint_size(base) + 1) return put_runs(out, values);
  out.push_back(static_cast<char>(kPacked));
  put_varint(out, base);
  out.push_back(static_cast<char>(width));
  const uint64_t mask = (uint64_t{1} << width) - 1;
  uint64_t bits = 0;
  int filled = 0;
  size_t patches = 0;
  for (uint64_t value : values) {
    bits |= ((value - base) & mask) << filled;
    filled += width;
    while (filled >= 8) {
      out.push_back(static_cast<char>(bits & 0xff));
      bits >>= 8;
      filled -= 8;
    }
    if ((value - base) >> width) ++patches;
  }
  if (filled > 0) out.push_back(static_cast<char>(bits & 0xff));
  put_varint(out, patches);
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t high = (values[i] - base) >> width;
    if (high == 0) continue;
    put_varint(out, i - next);
    put_varint(out, high);
    next = i + 1;
  }
}

// Reads a column of n values (n > 0) into `out`.
void get_column(Reader& reader, size_t n, uint64_t* out) {
  const uint8_t mode = reader.byte();
  if (mode == kConstant) {
    std::fill(out, out + n, reader.varint());
    return;
  }
  if (mode == kRuns) {
    const uint64_t runs = reader.varint();
    size_t at = 0;
    for (uint64_t run = 0; run < runs; ++run) {
      const uint64_t value = reader.varint();
      const uint64_t length = reader.varint();
      if (length == 0 || length > n - at) throw std::runtime_error("sample block has a bad run");
      std::fill(out + at, out + at + length, value);
      at += length;
    }
    if (at != n) throw std::runtime_error("sample block has runs short of its count");
    return;
  }
  if (mode != kPacked) throw std::runtime_error("sample block has an unknown column coding");
  const uint64_t base = reader.varint();
  const int width = reader.byte();
  if (width > kMaxPackedBits) throw std::runtime_error("sample block has an invalid bit width");
  const std::string_view packed = reader.view((n * static_cast<size_t>(width) + 7) / 8);
  const auto* data = reinterpret_cast<const uint8_t*>(packed.data());
  const uint64_t mask = (uint64_t{1} << width) - 1;
  // base + value wraps modulo 2^64, as the encoder's value - base did: a column holding -1 and
  // -3 (base 2^64 - 3, width 2) reads back as written.
  if (width == 0) {
    std::fill(out, out + n, base);
  } else {
    const auto w = static_cast<size_t>(width);
    // Whole 8-byte loads while they stay inside the column, then the last few byte by byte.
    const size_t whole = packed.size() < 8 ? 0 : std::min(n, ((packed.size() - 8) * 8) / w + 1);
    size_t bit = 0;
    size_t i = 0;
    for (; i < whole; ++i, bit += w) {
      uint64_t word;
      std::memcpy(&word, data + (bit >> 3), 8);
      if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
      out[i] = base + ((word >> (bit & 7)) & mask);
    }
    for (; i < n; ++i, bit += w) {
      const size_t at = bit >> 3;
      uint64_t word = 0;
      std::memcpy(&word, data + at, std::min<size_t>(8, packed.size() - at));
      if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
      out[i] = base + ((word >> (bit & 7)) & mask);
    }
  }
  const uint64_t patches = reader.varint();
  if (patches > n) throw std::runtime_error("sample block has too many patches");
  size_t next = 0;
  for (uint64_t p = 0; p < patches; ++p) {
    const uint64_t gap = reader.varint();
    if (gap >= n - next) throw std::runtime_error("sample block has a patch past its count");
    const size_t index = next + gap;
    const uint64_t high = reader.varint();
    // The packed low bits were added to base already; the high bits go on top (modulo 2^64,
    // as the column's base).
    if (high == 0 || high > (UINT64_MAX >> width))
      throw std::runtime_error("sample block has an out-of-range patch");
    out[index] += high << width;
    next = index + 1;
  }
}

// Layout 1's per-sample send time, kept for its blocks and the columnar one alike.
int64_t next_sent_ms(int64_t base_ms, uint64_t coded, int64_t& previous_ms,
                     int64_t& previous_delta) {
  int64_t delta = 0;
  int64_t sent_ms = 0;
  int64_t offset_ms = 0;
  if (__builtin_add_overflow(previous_delta, unzigzag(coded), &delta) ||
      __builtin_add_overflow(previous_ms, delta, &sent_ms) ||
      __builtin_sub_overflow(sent_ms, base_ms, &offset_ms) || offset_ms > kMaxSampleOffsetMs ||
      offset_ms < -kMaxSampleOffsetMs) {
    throw std::runtime_error("sample block has an out-of-range send time");
  }
  previous_ms = sent_ms;
  previous_delta = delta;
  return sent_ms;
}

void decode_legacy(int64_t base_ms, std::string_view bytes, std::vector<StoredSample>& out) {
  Reader reader(bytes);
  int64_t previous_ms = base_ms;
  int64_t previous_delta = 0;
  while (!reader.done()) {
    // Decoded in place: a Sample is large enough that moving each one in shows in a profile.
    StoredSample& stored = out.emplace_back();
    Sample& s = stored.sample;
    s.sent_ms = next_sent_ms(base_ms, reader.varint(), previous_ms, previous_delta);
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

void decode_columnar(int64_t base_ms, Reader& reader, std::vector<StoredSample>& out) {
  const uint64_t count = reader.varint();
  if (count == 0 || count > static_cast<uint64_t>(kMaxColumnarSamples))
    throw std::runtime_error("sample block has an out-of-range sample count");
  const auto n = static_cast<size_t>(count);
  // The columns first, then one pass over the samples: a StoredSample is large, and a pass
  // per column over a block of them costs more than the columns' decoding.
  constexpr size_t kColumns = 7;  // time, status, four phases, latency
  // Room kept from block to block, never cleared: each column is written whole before it is read.
  thread_local std::unique_ptr<uint64_t[]> columns;
  thread_local size_t room = 0;
  if (room < kColumns * n) {
    room = kColumns * std::max<size_t>(n, 1024);
    columns.reset(new uint64_t[room]);
  }
  uint64_t* column[kColumns];
  for (size_t c = 0; c < kColumns; ++c) {
    column[c] = columns.get() + c * n;
    get_column(reader, n, column[c]);
  }
  const size_t first = out.size();
  out.resize(first + n);
  StoredSample* samples = out.data() + first;
  int64_t previous_ms = base_ms;
  int64_t previous_delta = 0;
  size_t down = 0;
  for (size_t i = 0; i < n; ++i) {
    Sample& s = samples[i].sample;
    s.sent_ms = next_sent_ms(base_ms, column[0][i], previous_ms, previous_delta);
    if (column[1][i] > 3) throw std::runtime_error("sample block has an invalid status");
    s.status = static_cast<Status>(column[1][i]);
    down += s.status == Status::down;
    const uint64_t dns = column[2][i], connect = column[3][i], tls = column[4][i],
                   first_byte = column[5][i];
    if (std::max({dns, connect, tls, first_byte}) > static_cast<uint64_t>(kMaxUnits)) {
      throw std::runtime_error("sample block has an out-of-range duration");
    }
    s.phases.dns_us = static_cast<int64_t>(dns) * kTimeUnitUs;
    s.phases.connect_us = static_cast<int64_t>(connect) * kTimeUnitUs;
    s.phases.tls_us = static_cast<int64_t>(tls) * kTimeUnitUs;
    s.phases.first_byte_us = static_cast<int64_t>(first_byte) * kTimeUnitUs;
    // The latency is what the attempt took beyond its phases (each at most kMaxUnits, so
    // their sum fits).
    const auto phase_units = static_cast<int64_t>(dns + connect + tls + first_byte);
    int64_t units = 0;
    if (__builtin_add_overflow(phase_units, unzigzag(column[6][i]), &units) || units < 0 ||
        units > kMaxUnits) {
      throw std::runtime_error("sample block has an out-of-range duration");
    }
    s.latency_us = units * kTimeUnitUs;
  }
  if (down == 0) return;
  uint64_t* values = columns.get();  // the columns are read: reused for the down samples'
  // The down samples' error classes, detail ids and numbers, in their order.
  std::vector<StoredSample*> downs;
  downs.reserve(down);
  for (size_t i = 0; i < n; ++i) {
    if (samples[i].sample.status == Status::down) downs.push_back(&samples[i]);
  }
  get_column(reader, down, values);
  for (size_t i = 0; i < down; ++i) {
    if (values[i] >= kErrorClassCount)
      throw std::runtime_error("sample block has an invalid error class");
    downs[i]->sample.error = static_cast<ErrorClass>(values[i]);
  }
  get_column(reader, down, values);
  for (size_t i = 0; i < down; ++i) downs[i]->detail_id = static_cast<int64_t>(values[i]);
  get_column(reader, down, values);
  for (size_t i = 0; i < down; ++i) downs[i]->detail_numbers = reader.bytes(values[i]);
}

}  // namespace

void SampleBlockEncoder::append(const Sample& sample, int64_t detail_id,
                                std::string_view detail_numbers) {
  const Phases& p = sample.phases;
  const bool down = sample.status == Status::down;
  samples_.push_back(Entry{
      sample.sent_ms,
      to_units(sample.latency_us),
      {to_units(p.dns_us), to_units(p.connect_us), to_units(p.tls_us), to_units(p.first_byte_us)},
      sample.status,
      down ? sample.error : ErrorClass::none,
      down ? detail_id : 0,
      down ? std::string(detail_numbers) : std::string()});
  encoded_ = false;
}

const std::string& SampleBlockEncoder::bytes() const {
  if (!encoded_) {
    bytes_.clear();
    if (layout_ == Layout::legacy || count() > kMaxColumnarSamples) {
      encode_legacy();
    } else {
      encode_columnar();
    }
    encoded_ = true;
  }
  return bytes_;
}

void SampleBlockEncoder::encode_legacy() const {
  int64_t previous_ms = base_ms_;
  int64_t previous_delta = 0;
  for (const Entry& sample : samples_) {
    // Delta of delta: a probe firing on its interval costs one byte for its time.
    const int64_t delta = sample.sent_ms - previous_ms;
    put_varint(bytes_, zigzag(delta - previous_delta));
    previous_ms = sample.sent_ms;
    previous_delta = delta;
    const bool down = sample.status == Status::down;
    uint8_t header = static_cast<uint8_t>(static_cast<uint8_t>(sample.status) << 6);
    for (int i = 0; i < 4; ++i) {
      if (sample.phase_units[i] > 0) header |= static_cast<uint8_t>(1 << i);
    }
    if (down && !sample.detail_numbers.empty()) header |= kNumbersBit;
    bytes_.push_back(static_cast<char>(header));
    if (down) {
      bytes_.push_back(static_cast<char>(sample.error));
      put_varint(bytes_, static_cast<uint64_t>(sample.detail_id));
      if (header & kNumbersBit) {
        put_varint(bytes_, sample.detail_numbers.size());
        bytes_.append(sample.detail_numbers);
      }
    }
    put_varint(bytes_, sample.latency_units);
    for (int i = 0; i < 4; ++i) {
      if (header & (1 << i)) put_varint(bytes_, sample.phase_units[i]);
    }
  }
}

void SampleBlockEncoder::encode_columnar() const {
  const size_t n = samples_.size();
  if (n == 0) return;  // as in layout 1: no bytes
  bytes_.append(kColumnarMark, sizeof kColumnarMark);
  put_varint(bytes_, n);
  std::vector<uint64_t> column(n);
  int64_t previous_ms = base_ms_;
  int64_t previous_delta = 0;
  for (size_t i = 0; i < n; ++i) {
    // Wrapping: a send time beyond int64's reach of the last is the decoder's error to find.
    const auto delta = static_cast<int64_t>(static_cast<uint64_t>(samples_[i].sent_ms) -
                                            static_cast<uint64_t>(previous_ms));
    column[i] = zigzag(
        static_cast<int64_t>(static_cast<uint64_t>(delta) - static_cast<uint64_t>(previous_delta)));
    previous_ms = samples_[i].sent_ms;
    previous_delta = delta;
  }
  put_column(bytes_, column);
  for (size_t i = 0; i < n; ++i) column[i] = static_cast<uint64_t>(samples_[i].status);
  put_column(bytes_, column);
  for (int phase = 0; phase < 4; ++phase) {
    for (size_t i = 0; i < n; ++i) column[i] = samples_[i].phase_units[phase];
    put_column(bytes_, column);
  }
  // The latency is at least the phases' sum: what is left is small (a body read, a login).
  for (size_t i = 0; i < n; ++i) {
    const uint64_t* phases = samples_[i].phase_units;
    const auto sum = static_cast<int64_t>(phases[0] + phases[1] + phases[2] + phases[3]);
    column[i] = zigzag(static_cast<int64_t>(samples_[i].latency_units) - sum);
  }
  put_column(bytes_, column);
  column.clear();
  for (const Entry& sample : samples_) {
    if (sample.status == Status::down) column.push_back(static_cast<uint64_t>(sample.error));
  }
  if (column.empty()) return;
  put_column(bytes_, column);
  column.clear();
  for (const Entry& sample : samples_) {
    if (sample.status == Status::down) column.push_back(static_cast<uint64_t>(sample.detail_id));
  }
  put_column(bytes_, column);
  column.clear();
  for (const Entry& sample : samples_) {
    if (sample.status == Status::down) column.push_back(sample.detail_numbers.size());
  }
  put_column(bytes_, column);
  for (const Entry& sample : samples_) {
    if (sample.status == Status::down) bytes_.append(sample.detail_numbers);
  }
}

std::vector<StoredSample> decode_sample_block(int64_t base_ms, std::string_view bytes) {
  std::vector<StoredSample> out;
  decode_sample_block(base_ms, bytes, out);
  return out;
}

void decode_sample_block(int64_t base_ms, std::string_view bytes, std::vector<StoredSample>& out) {
  if (bytes.size() < 2 || bytes[0] != kColumnarMark[0] || (bytes[1] & 0x20) == 0)
    return decode_legacy(base_ms, bytes, out);
  if (bytes[1] != kColumnarMark[1]) throw std::runtime_error("sample block has an unknown layout");
  Reader reader(bytes.substr(2));
  decode_columnar(base_ms, reader, out);
  if (!reader.done()) throw std::runtime_error("sample block has bytes past its columns");
}

}  // namespace blip
