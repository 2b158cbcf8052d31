// Writes fuzz_sample_codec's seeds: real blocks from SampleBlockEncoder (an
// 8-byte base time, then the block), one file per kind of minute a probe has and layout.
//   fuzz_make_sample_seeds fuzz/corpus/sample_codec
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "blip/store/sample_codec.hpp"

namespace {

void write_file(const std::string& path, int64_t base_ms, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&base_ms), sizeof base_ms);
  out << bytes;
}

// Each block in both layouts: NAME in layout 1 (as blocks stored before layout 2), NAME-columnar.
void write_seed(const std::string& directory, const std::string& name,
                const blip::SampleBlockEncoder& encoder) {
  const int64_t base_ms = encoder.base_ms();
  blip::SampleBlockEncoder legacy(base_ms, blip::SampleBlockEncoder::Layout::legacy);
  blip::SampleBlockEncoder columnar(base_ms, blip::SampleBlockEncoder::Layout::columnar);
  for (const blip::StoredSample& stored : blip::decode_sample_block(base_ms, encoder.bytes())) {
    legacy.append(stored.sample, stored.detail_id, stored.detail_numbers);
    columnar.append(stored.sample, stored.detail_id, stored.detail_numbers);
  }
  write_file(directory + "/" + name, base_ms, legacy.bytes());
  if (columnar.count() > 0)
    write_file(directory + "/" + name + "-columnar", base_ms, columnar.bytes());
}

blip::Sample sample(int64_t sent_ms, blip::Status status, int64_t latency_us,
                    blip::Phases phases = {}, blip::ErrorClass error = blip::ErrorClass::none) {
  blip::Sample s;
  s.sent_ms = sent_ms;
  s.status = status;
  s.latency_us = latency_us;
  s.phases = phases;
  s.error = error;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::string directory = argv[1];
  const int64_t minute = 1'764'633'600'000;  // 2025-12-02 00:00 UTC

  blip::SampleBlockEncoder loopback(minute);  // an up probe on loopback every 250 ms
  for (int i = 0; i < 240; ++i)
    loopback.append(sample(minute + 250 * i + (i % 3), blip::Status::up, 180 + i % 7), 0);
  write_seed(directory, "up-loopback-250ms", loopback);

  blip::SampleBlockEncoder https(minute);  // HTTPS with every phase, a second apart
  for (int i = 0; i < 60; ++i) {
    https.append(
        sample(minute + 1000 * i, blip::Status::up, 41'000 + 97 * i, {1'200, 9'800, 21'000, 8'000}),
        0);
  }
  write_seed(directory, "up-https-phases", https);

  blip::SampleBlockEncoder outage(minute);  // degraded, then down with details and their numbers
  for (int i = 0; i < 20; ++i) {
    const int64_t at = minute + 500 * i;
    if (i < 5) {
      outage.append(sample(at, blip::Status::up, 2'000), 0);
    } else if (i < 10) {
      outage.append(sample(at, blip::Status::degraded, 900'000, {0, 3'000, 0, 880'000}), 0);
    } else if (i < 15) {
      outage.append(sample(at, blip::Status::down, 2'000'000, {}, blip::ErrorClass::timeout), 7);
    } else {
      outage.append(sample(at, blip::Status::down, 31'000, {}, blip::ErrorClass::lag), 12,
                    "1.2,31");
    }
  }
  write_seed(directory, "outage-degraded-down", outage);

  blip::SampleBlockEncoder stalls(minute);  // blind samples and an irregular schedule
  for (int i = 0; i < 12; ++i) {
    stalls.append(
        sample(minute + 5000 * i + (i % 2 ? 1'700 : 0),
               i % 4 == 3 ? blip::Status::blind : blip::Status::up, i % 4 == 3 ? 0 : 4'000),
        0);
  }
  write_seed(directory, "blind-irregular", stalls);

  blip::SampleBlockEncoder every_error(minute);  // one down sample of each error class
  for (uint8_t e = 1; e < blip::kErrorClassCount; ++e) {
    every_error.append(sample(minute + 1000 * e, blip::Status::down, 1'000 * e, {},
                              static_cast<blip::ErrorClass>(e)),
                       e);
  }
  write_seed(directory, "down-every-error-class", every_error);

  blip::SampleBlockEncoder empty(minute);
  write_seed(directory, "empty", empty);
  return 0;
}
