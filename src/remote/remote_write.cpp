#include "blip/remote/remote_write.hpp"

#include <snappy.h>

#include <stdexcept>

#include "remote_write.pb.h"

namespace blip {

std::string encode_write_request(const std::vector<Series>& series) {
  remote_write::WriteRequest request;
  for (const Series& one : series) {
    remote_write::TimeSeries* out = request.add_timeseries();
    remote_write::Label* name = out->add_labels();
    name->set_name("__name__");
    name->set_value(one.metric);
    for (const auto& [label, value] : one.labels) {
      remote_write::Label* added = out->add_labels();
      added->set_name(label);
      added->set_value(value);
    }
    for (const SeriesPoint& point : one.points) {
      remote_write::Sample* sample = out->add_samples();
      sample->set_value(point.value);
      sample->set_timestamp(point.ms);
    }
  }
  const std::string plain = request.SerializeAsString();
  std::string body;
  snappy::Compress(plain.data(), plain.size(), &body);
  return body;
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
