// The sample block codec: both layouts round-trip random and adversarial blocks to the same
// samples, layout-1 blocks written before layout 2 still decode, and corrupt layout-2 blocks
// are errors, never crashes or huge allocations.
#include "blip/store/sample_codec.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace blip {
namespace {

using Layout = SampleBlockEncoder::Layout;

struct Input {
  Sample sample;
  int64_t detail_id = 0;
  std::string numbers;
};

// What a sample decodes to: times to the nearest 10 µs (none below 0, none past what fits back
// in int64), and only a down sample's error class and detail.
int64_t stored_us(int64_t us) {
  if (us <= 0) return 0;
  const int64_t units = std::min(us / 10 + (us % 10 >= 5 ? 1 : 0), INT64_MAX / 10);
  return units * 10;
}

void expect_decodes_to(const std::vector<Input>& inputs, const std::vector<StoredSample>& got) {
  ASSERT_EQ(got.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(i);
    const Sample& in = inputs[i].sample;
    const Sample& out = got[i].sample;
    const bool down = in.status == Status::down;
    EXPECT_EQ(out.sent_ms, in.sent_ms);
    EXPECT_EQ(out.status, in.status);
    EXPECT_EQ(out.error, down ? in.error : ErrorClass::none);
    EXPECT_EQ(out.latency_us, stored_us(in.latency_us));
    EXPECT_EQ(out.phases.dns_us, stored_us(in.phases.dns_us));
    EXPECT_EQ(out.phases.connect_us, stored_us(in.phases.connect_us));
    EXPECT_EQ(out.phases.tls_us, stored_us(in.phases.tls_us));
    EXPECT_EQ(out.phases.first_byte_us, stored_us(in.phases.first_byte_us));
    EXPECT_EQ(got[i].detail_id, down ? inputs[i].detail_id : 0);
    EXPECT_EQ(got[i].detail_numbers, down ? inputs[i].numbers : "");
  }
}

std::string encode(int64_t base_ms, const std::vector<Input>& inputs, Layout layout) {
  SampleBlockEncoder encoder(base_ms, layout);
  for (const Input& input : inputs) encoder.append(input.sample, input.detail_id, input.numbers);
  EXPECT_EQ(encoder.count(), static_cast<int64_t>(inputs.size()));
  return encoder.bytes();
}

void expect_round_trip(int64_t base_ms, const std::vector<Input>& inputs) {
  for (Layout layout : {Layout::columnar, Layout::legacy}) {
    SCOPED_TRACE(static_cast<int>(layout));
    const std::string bytes = encode(base_ms, inputs, layout);
    expect_decodes_to(inputs, decode_sample_block(base_ms, bytes));
  }
}

// A duration from one of several scales, the rare ones included.
int64_t random_us(std::mt19937_64& random) {
  switch (random() % 8) {
    case 0:
      return 0;
    case 1:
      return static_cast<int64_t>(random() % 20);  // rounds to 0, 10 or 20
    case 2:
      return -static_cast<int64_t>(random() % 1'000'000);  // a clock's mistake: stored as 0
    case 3:
      return static_cast<int64_t>(random() >> 1);  // anything up to INT64_MAX
    case 4:
      return INT64_MAX - static_cast<int64_t>(random() % 10);
    case 5:
      return 1'000'000;  // a timeout
    default: {
      std::lognormal_distribution<double> ms(std::log(2.0), 1.0);
      return static_cast<int64_t>(ms(random) * 1000.0);
    }
  }
}

std::vector<Input> random_block(std::mt19937_64& random, int64_t base_ms) {
  std::vector<Input> inputs(random() % 4 == 0 ? random() % 3 : random() % 700);
  int64_t t = base_ms + static_cast<int64_t>(random() % 60'000);
  const int64_t interval = 50 + static_cast<int64_t>(random() % 2'000);
  const auto status_changes = random() % 4;  // 0: one status all along; 3: every sample
  Status status = static_cast<Status>(random() % 4);
  for (Input& input : inputs) {
    switch (random() % 10) {
      case 0:
        t -= static_cast<int64_t>(random() % 100'000);
        break;  // the clock stepped back
      case 1:
        t += static_cast<int64_t>(random() % 10'000'000);
        break;
      case 2:
        t += static_cast<int64_t>(random() % 7);
        break;
      default:
        t += interval;
    }
    if (random() % 4 < status_changes) status = static_cast<Status>(random() % 4);
    Sample& s = input.sample;
    s.sent_ms = t;
    s.status = status;
    s.error = static_cast<ErrorClass>(random() % kErrorClassCount);
    s.latency_us = random_us(random);
    s.phases = {random_us(random), random_us(random), random_us(random), random_us(random)};
    if (random() % 3 == 0) {
      input.detail_id = random() % 2 ? static_cast<int64_t>(random() % 50)
                                     : static_cast<int64_t>(random());  // negative too
      if (random() % 2) input.numbers = std::to_string(random() % 1000) + ",1.5";
    }
  }
  return inputs;
}

TEST(SampleCodec, RandomBlocksRoundTripInBothLayouts) {
  std::mt19937_64 random(22);
  for (int block = 0; block < 400; ++block) {
    SCOPED_TRACE(block);
    const int64_t base_ms = 1'764'633'600'000 + block * 60'000;
    expect_round_trip(base_ms, random_block(random, base_ms));
    if (HasFatalFailure()) return;
  }
}

Input answered(int64_t sent_ms, int64_t latency_us, Phases phases = {}) {
  Input input;
  input.sample.sent_ms = sent_ms;
  input.sample.latency_us = latency_us;
  input.sample.phases = phases;
  return input;
}

Input timed_out(int64_t sent_ms, int64_t detail_id, std::string numbers = {}) {
  Input input = answered(sent_ms, 1'000'000);
  input.sample.status = Status::down;
  input.sample.error = ErrorClass::timeout;
  input.detail_id = detail_id;
  input.numbers = std::move(numbers);
  return input;
}

TEST(SampleCodec, AdversarialBlocksRoundTrip) {
  const int64_t m = 1'764'633'600'000;
  expect_round_trip(m, {});
  expect_round_trip(m, {answered(m + 7, 1'234, {1, 2, 3, 4})});
  expect_round_trip(m, {timed_out(m, 3, "1.5")});
  expect_round_trip(
      m, {answered(m - 86'400'000, INT64_MAX, {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX})});
  std::vector<Input> every_status;  // a status change each sample: no runs at all
  for (int i = 0; i < 240; ++i) {
    Input input = answered(m + 250 * i, 2'000 + i, {100, 300, 0, 600});
    input.sample.status = static_cast<Status>(i % 4);
    input.sample.error = ErrorClass::refused;
    input.detail_id = i;
    every_status.push_back(input);
  }
  expect_round_trip(m, every_status);
  std::vector<Input> outage;  // a timeout among fast answers: patched, not widening the column
  for (int i = 0; i < 240; ++i)
    outage.push_back(i % 60 == 7 ? timed_out(m + 250 * i, 9) : answered(m + 250 * i, 2'000));
  expect_round_trip(m, outage);
  // Values whose least plus the column's mask passes 2^64 (negative detail ids, as a fuzzed
  // layout-1 block can hold): they wrap back to what was written, also when patched.
  expect_round_trip(m, {timed_out(m, -1), timed_out(m + 250, -3)});
  std::vector<Input> wrapping;
  for (int i = 0; i < 120; ++i)
    wrapping.push_back(timed_out(m + 250 * i, i % 40 == 5 ? INT64_MAX : -1 - (i % 3)));
  expect_round_trip(m, wrapping);
  std::vector<Input> backwards;  // each sample earlier than the one before
  for (int i = 0; i < 100; ++i) backwards.push_back(answered(m + 60'000 - 500 * i * i, 10 * i));
  expect_round_trip(m, backwards);
}

TEST(SampleCodec, BlocksPastTheColumnarBoundAreWrittenInLayoutOne) {
  const int64_t m = 1'764'633'600'000;
  std::vector<Input> inputs;
  for (int64_t i = 0; i <= kMaxColumnarSamples; ++i) inputs.push_back(answered(m + i, 500 + i % 7));
  const std::string bytes = encode(m, inputs, Layout::columnar);
  EXPECT_EQ(bytes, encode(m, inputs, Layout::legacy));
  expect_decodes_to(inputs, decode_sample_block(m, bytes));
}

// A 4 Hz HTTPS probe's minute with each phase drawn on its own (bench/generate_history).
std::vector<Input> https_minute(int64_t m) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> dns(std::log(150.0), 0.5), connect(std::log(300.0), 0.4),
      tls(std::log(800.0), 0.3), first_byte(std::log(600.0), 0.5), rest(std::log(50.0), 0.5);
  std::vector<Input> inputs;
  for (int i = 0; i < 240; ++i) {
    Phases p{static_cast<int64_t>(dns(random)), static_cast<int64_t>(connect(random)),
             static_cast<int64_t>(tls(random)), static_cast<int64_t>(first_byte(random))};
    const auto latency =
        p.dns_us + p.connect_us + p.tls_us + p.first_byte_us + static_cast<int64_t>(rest(random));
    inputs.push_back(answered(m + 250 * i, latency, p));
  }
  return inputs;
}

TEST(SampleCodec, ColumnsTakeLittleMoreThanHalfTheBytesOfLayoutOne) {
  const int64_t m = 1'764'633'600'000;
  const auto inputs = https_minute(m);
  const std::string columnar = encode(m, inputs, Layout::columnar);
  const std::string legacy = encode(m, inputs, Layout::legacy);
  // Seeded, so the sizes are fixed: 4.1 and 8.1 bytes a sample when written.
  EXPECT_LE(columnar.size(), 240u * 9 / 2);
  EXPECT_LE(columnar.size() * 100, legacy.size() * 55);
  expect_decodes_to(inputs, decode_sample_block(m, columnar));
}

// Written by the encoder of commit 61aee28, before layout 2: a block of every kind of sample
// (phases, degraded, down with and without numbers, blind, the clock stepped back, a sample of
// the next minute kept in the open block).
std::vector<Input> golden_inputs(int64_t m) {
  std::vector<Input> inputs{answered(m + 3, 1'234, {150, 300, 800, 600}),
                            answered(m + 253, 2'000'005, {0, 310, 0, 1'999'000}),
                            timed_out(m + 503, 4),
                            answered(m + 700, 5'000),
                            answered(m + 650, 0),
                            answered(m + 60'250, 9, {4, 0, 0, 0})};
  inputs[1].sample.status = Status::degraded;
  inputs[2].sample.phases.dns_us = 120;
  inputs[3].sample.status = Status::down;
  inputs[3].sample.error = ErrorClass::http_status;
  inputs[3].detail_id = 9;
  inputs[3].numbers = "503,1.5";
  inputs[4].sample.status = Status::blind;
  return inputs;
}

const std::string kGoldenLayoutOne(
    "\x06\x0f\x7b\x0f\x1e\x50\x3c\xee\x03\x4a\xc1\x9a\x0c\x1f\xdc\x99\x0c\x00\x81\x01\x04\xa0"
    "\x8d\x06\x0c\x69\x90\x05\x09\x07\x35\x30\x33\x2c\x31\x2e\x35\xf4\x03\xed\x03\xc0\x00\x84"
    "\xa4\x07\x00\x01",
    48);

TEST(SampleCodec, LayoutOneBlocksFromBeforeStillDecode) {
  const int64_t m = 1'764'633'600'000;
  const auto inputs = golden_inputs(m);
  expect_decodes_to(inputs, decode_sample_block(m, kGoldenLayoutOne));
  // The layout-1 encoder kept for blocks past the columnar bound writes them as it did.
  EXPECT_EQ(encode(m, inputs, Layout::legacy), kGoldenLayoutOne);
  expect_round_trip(m, inputs);
}

TEST(SampleCodec, CorruptColumnarBlocksAreErrorsNotCrashes) {
  const int64_t m = 1'764'633'600'000;
  auto inputs = https_minute(m);
  inputs[17] = timed_out(m + 17 * 250, 4, "12");
  const std::string bytes = encode(m, inputs, Layout::columnar);
  ASSERT_EQ(bytes.substr(0, 2), std::string("\x00\x22", 2));
  // Every truncation: an error (the prefix of two bytes or fewer reads as layout 1).
  for (size_t size = 3; size < bytes.size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_THROW(decode_sample_block(m, bytes.substr(0, size)), std::runtime_error);
  }
  EXPECT_THROW(decode_sample_block(m, bytes + '\x00'), std::runtime_error);  // trailing bytes
  std::string later = bytes;
  later[1] = '\x23';  // a layout this blip does not know
  EXPECT_THROW(decode_sample_block(m, later), std::runtime_error);
  // A count past the bound (a few bytes must not ask for gigabytes), and a count of zero.
  EXPECT_THROW(decode_sample_block(m, std::string("\x00\x22\xff\xff\xff\x0f\x00\x00", 8)),
               std::runtime_error);
  EXPECT_THROW(decode_sample_block(m, std::string("\x00\x22\x00", 3)), std::runtime_error);
  // One sample: time constant 0, status constant 9 (no such status).
  const std::string one("\x00\x22\x01\x00\x00\x00\x09", 7);
  EXPECT_THROW(decode_sample_block(m, one + std::string(10, '\x00')), std::runtime_error);
  // Every single-byte change: samples or an error, never a crash (ASan and UBSan watch).
  for (size_t at = 2; at < bytes.size(); ++at) {
    for (int flip : {0x01, 0x80, 0xff}) {
      std::string changed = bytes;
      changed[at] = static_cast<char>(changed[at] ^ flip);
      try {
        EXPECT_LE(decode_sample_block(m, changed).size(), static_cast<size_t>(kMaxColumnarSamples));
      } catch (const std::runtime_error&) {
      }
    }
  }
}

}  // namespace
}  // namespace blip
