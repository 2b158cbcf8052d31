#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "blip/remote/series.hpp"

// Prometheus remote-write 1.0 bodies: a protobuf WriteRequest, snappy block-compressed.
namespace blip {

// The bodies of a sender's requests, one after another: its buffers are kept from one request
// to the next.
class WriteRequestEncoder {
 public:
  // The body of one request carrying `series`; valid until the next encode().
  const std::string& encode(const std::vector<Series>& series);

 private:
  std::string plain_;                 // the WriteRequest before compression
  std::string body_;                  // snappy's block of it
  std::vector<size_t> series_sizes_;  // each TimeSeries' length, for its prefix
};

// The body of one request carrying `series`.
std::string encode_write_request(const std::vector<Series>& series);

// A body back into series (receivers in tests and benchmarks); throws std::runtime_error when
// it is not snappy or not a WriteRequest.
std::vector<Series> decode_write_request(std::string_view body);

}  // namespace blip
