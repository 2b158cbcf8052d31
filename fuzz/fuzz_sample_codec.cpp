// decode_sample_block on any bytes, as a corrupt or truncated stored block
// would be: it returns samples or throws std::runtime_error, never crashes,
// and never holds more samples than the block has bytes (each takes at least
// two in layout 1) or kMaxColumnarSamples (layout 2, where a column of one
// value takes a byte or two). What it returns encodes back, in either layout,
// to the same samples.
#include <stdexcept>
#include <string>

#include "blip/store/sample_codec.hpp"
#include "fuzz_input.hpp"

namespace {

bool same_sample(const blip::StoredSample& a, const blip::StoredSample& b) {
  const blip::Sample& x = a.sample;
  const blip::Sample& y = b.sample;
  return x.sent_ms == y.sent_ms && x.status == y.status && x.error == y.error &&
         x.latency_us == y.latency_us && x.phases.dns_us == y.phases.dns_us &&
         x.phases.connect_us == y.phases.connect_us && x.phases.tls_us == y.phases.tls_us &&
         x.phases.first_byte_us == y.phases.first_byte_us && a.detail_id == b.detail_id &&
         a.detail_numbers == b.detail_numbers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first 8 bytes: the block's base time (a stored row's minute), the rest the block.
  if (size < 8) return 0;
  int64_t base_ms = 0;
  __builtin_memcpy(&base_ms, data, sizeof base_ms);
  const std::string_view bytes = blip::fuzz::as_text(data + 8, size - 8);
  std::vector<blip::StoredSample> samples;
  try {
    samples = blip::decode_sample_block(base_ms, bytes);
  } catch (const std::runtime_error&) {
    return 0;  // corrupt: the contract
  }
  const bool columnar = bytes.size() >= 2 && bytes[0] == '\0' && (bytes[1] & 0x20) != 0;
  if (columnar ? samples.size() > static_cast<size_t>(blip::kMaxColumnarSamples)
               : samples.size() > bytes.size() / 2)
    blip::fuzz::contract_broken("more samples than the block can hold");
  for (auto layout :
       {blip::SampleBlockEncoder::Layout::columnar, blip::SampleBlockEncoder::Layout::legacy}) {
    blip::SampleBlockEncoder encoder(base_ms, layout);
    for (const blip::StoredSample& stored : samples) {
      encoder.append(stored.sample, stored.detail_id, stored.detail_numbers);
    }
    const auto again = blip::decode_sample_block(base_ms, encoder.bytes());
    if (again.size() != samples.size())
      blip::fuzz::contract_broken("re-encoded block has another sample count");
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!same_sample(samples[i], again[i]))
        blip::fuzz::contract_broken("re-encoded sample differs");
    }
  }
  return 0;
}
