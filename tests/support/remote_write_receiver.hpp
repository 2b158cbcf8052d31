#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "blip/remote/series.hpp"

struct MHD_Connection;
struct MHD_Daemon;

namespace blip::test {

// One point a RemoteWriteReceiver acknowledged, with the request that brought it (numbered from
// 0 in the order the receiver acknowledged them).
struct ReceivedPoint {
  int64_t ms = 0;
  double value = 0;
  size_t request = 0;
};

// A Prometheus remote-write 1.0 endpoint of the tests' own on 127.0.0.1 (libmicrohttpd, a
// thread of this process), at POST /api/v1/write. It checks each request as an engine would
// (method, path, Content-Encoding: snappy, Content-Type: application/x-protobuf,
// X-Prometheus-Remote-Write-Version: 0.1.0, a snappy WriteRequest: anything else is a problem,
// answered 400 whatever the mode) and answers by its mode. What it answers 204 it records, point
// by point, as acknowledged.
class RemoteWriteReceiver {
 public:
  enum class Mode {
    ok,                 // 204, the points recorded
    down,               // nothing listens: connection refused (requests in flight are cut)
    bad_request,        // 400 to every request
    too_many_requests,  // 429 to every request
    hang,               // reads the request and never answers (until the mode changes: then 503)
  };
  // Keep every point (tests), or only each series' count and last time (long benchmarks).
  enum class Keep { points, counts };

  explicit RemoteWriteReceiver(Mode mode = Mode::ok, Keep keep = Keep::points);
  RemoteWriteReceiver(const RemoteWriteReceiver&) = delete;
  RemoteWriteReceiver& operator=(const RemoteWriteReceiver&) = delete;
  ~RemoteWriteReceiver();

  // The same port through every mode (chosen free when the receiver starts).
  int port() const { return port_; }
  std::string url(const std::string& path = "/api/v1/write") const;
  // Leaving `down` listens again on the same port; leaving `hang` answers the requests it holds
  // 503 (their clients have likely given up by then: nothing of them is recorded).
  void set_mode(Mode mode);
  Mode mode() const;

  // Every acknowledged point by series, keyed `metric{label="value",...}` (labels as sent, which
  // blip sorts), in arrival order; only `metric`'s when one is given. Empty with Keep::counts.
  std::map<std::string, std::vector<ReceivedPoint>> series(const std::string& metric = "") const;
  // Acknowledged points per series (both Keep modes), and in all.
  std::map<std::string, uint64_t> point_counts() const;
  uint64_t points() const;
  // Requests answered with `status` (204, 400, 429, 503), and held in `hang` so far.
  size_t requests(unsigned status) const;
  size_t hung_requests() const;
  // Requests that were no proper remote write (each described), however the mode would answer.
  std::vector<std::string> problems() const;
  // The headers of the last well-formed request (names in lower case): credentials included.
  std::map<std::string, std::string> last_headers() const;

 private:
  struct Request;
  friend struct ReceiverCallbacks;  // libmicrohttpd's, in the .cpp
  // Answers a whole request (false: close the connection unanswered).
  bool finish(MHD_Connection* connection, Request& request);
  void listen();              // starts the daemon on port_ (0: any), mutex_ not held
  void resume_hung_locked();  // mutex_ held
  void record_locked(const std::vector<Series>& series);  // mutex_ held

  int port_ = 0;
  std::mutex control_;  // one mode change at a time
  mutable std::mutex mutex_;
  MHD_Daemon* daemon_ = nullptr;
  Mode mode_;
  Keep keep_;
  std::vector<MHD_Connection*> hung_;
  std::map<std::string, std::vector<ReceivedPoint>> series_;
  std::map<std::string, uint64_t> counts_;
  uint64_t points_ = 0;
  size_t acknowledged_ = 0;
  std::map<unsigned, size_t> answered_;
  size_t hung_total_ = 0;
  std::vector<std::string> problems_;
  std::map<std::string, std::string> last_headers_;
};

std::string to_string(RemoteWriteReceiver::Mode mode);

}  // namespace blip::test
