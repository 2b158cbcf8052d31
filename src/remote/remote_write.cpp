#include "blip/remote/remote_write.hpp"

#include <snappy.h>

#include <cstring>
#include <stdexcept>

#include "remote_write.pb.h"

namespace blip {

namespace {

// Protobuf's wire format, written as protobuf-lite serializes a WriteRequest: fields in number
// order, proto3 defaults (an empty string, a 0 timestamp, a value whose bits are all 0) left
// out, so the body is the same byte for byte, without a message object per point.
constexpr char kTimeSeriesTag = (1 << 3) | 2;   // WriteRequest.timeseries, length-delimited
constexpr char kLabelTag = (1 << 3) | 2;        // TimeSeries.labels
constexpr char kSampleTag = (2 << 3) | 2;       // TimeSeries.samples
constexpr char kNameTag = (1 << 3) | 2;         // Label.name
constexpr char kValueTag = (2 << 3) | 2;        // Label.value
constexpr char kSampleValueTag = (1 << 3) | 1;  // Sample.value, fixed64
constexpr char kTimestampTag = (2 << 3) | 0;    // Sample.timestamp, varint

size_t varint_size(uint64_t value) {
  size_t size = 1;
  for (; value >= 0x80; value >>= 7) ++size;
  return size;
}

char* put_varint(char* out, uint64_t value) {
  for (; value >= 0x80; value >>= 7) *out++ = static_cast<char>((value & 0x7f) | 0x80);
  *out++ = static_cast<char>(value);
  return out;
}

// An int64 field is the varint of its two's complement: ten bytes when negative.
uint64_t int64_bits(int64_t value) { return static_cast<uint64_t>(value); }

uint64_t double_bits(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

size_t string_field_size(const std::string& value) {
  return value.empty() ? 0 : 1 + varint_size(value.size()) + value.size();
}

char* put_string_field(char* out, char tag, const std::string& value) {
  if (value.empty()) return out;
  *out++ = tag;
  out = put_varint(out, value.size());
  std::memcpy(out, value.data(), value.size());
  return out + value.size();
}

size_t label_size(const std::string& name, const std::string& value) {
  return string_field_size(name) + string_field_size(value);
}

char* put_label(char* out, const std::string& name, const std::string& value) {
  *out++ = kLabelTag;
  out = put_varint(out, label_size(name, value));
  out = put_string_field(out, kNameTag, name);
  return put_string_field(out, kValueTag, value);
}

size_t sample_size(const SeriesPoint& point) {
  return (double_bits(point.value) != 0 ? 1 + 8 : 0) +
         (point.ms != 0 ? 1 + varint_size(int64_bits(point.ms)) : 0);
}

char* put_sample(char* out, const SeriesPoint& point) {
  *out++ = kSampleTag;
  out = put_varint(out, sample_size(point));
  if (const uint64_t bits = double_bits(point.value); bits != 0) {
    *out++ = kSampleValueTag;
    for (int byte = 0; byte < 8; ++byte) *out++ = static_cast<char>(bits >> (8 * byte));
  }
  if (point.ms != 0) {
    *out++ = kTimestampTag;
    out = put_varint(out, int64_bits(point.ms));
  }
  return out;
}

const std::string kNameLabel = "__name__";

size_t series_size(const Series& one) {
  size_t size = 0;
  const auto add_label = [&](const std::string& name, const std::string& value) {
    const size_t label = label_size(name, value);
    size += 1 + varint_size(label) + label;
  };
  add_label(kNameLabel, one.metric);
  for (const auto& [name, value] : one.labels) add_label(name, value);
  for (const SeriesPoint& point : one.points) {
    const size_t sample = sample_size(point);
    size += 1 + varint_size(sample) + sample;
  }
  return size;
}

}  // namespace

const std::string& WriteRequestEncoder::encode(const std::vector<Series>& series) {
  series_sizes_.clear();
  size_t total = 0;
  for (const Series& one : series) {
    const size_t size = series_size(one);
    series_sizes_.push_back(size);
    total += 1 + varint_size(size) + size;
  }
  plain_.resize(total);
  char* out = plain_.data();
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& one = series[i];
    *out++ = kTimeSeriesTag;
    out = put_varint(out, series_sizes_[i]);
    out = put_label(out, kNameLabel, one.metric);
    for (const auto& [name, value] : one.labels) out = put_label(out, name, value);
    for (const SeriesPoint& point : one.points) out = put_sample(out, point);
  }
  body_.clear();
  snappy::Compress(plain_.data(), plain_.size(), &body_);
  return body_;
}

std::string encode_write_request(const std::vector<Series>& series) {
  WriteRequestEncoder encoder;
  return encoder.encode(series);
}

std::vector<Series> decode_write_request(std::string_view body) {
  std::string plain;
  if (!snappy::Uncompress(body.data(), body.size(), &plain))
    throw std::runtime_error("not a snappy block");
  remote_write::WriteRequest request;
  if (!request.ParseFromString(plain)) throw std::runtime_error("not a WriteRequest");
  std::vector<Series> out;
  for (const remote_write::TimeSeries& in : request.timeseries()) {
    Series& series = out.emplace_back();
    for (const remote_write::Label& label : in.labels()) {
      if (label.name() == "__name__") {
        series.metric = label.value();
      } else {
        series.labels.emplace_back(label.name(), label.value());
      }
    }
    for (const remote_write::Sample& sample : in.samples())
      series.points.push_back({sample.timestamp(), sample.value()});
  }
  return out;
}

}  // namespace blip
