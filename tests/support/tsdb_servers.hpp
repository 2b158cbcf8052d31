#pragma once
#include <memory>
#include <string>
#include <vector>

#include "blip/remote/series.hpp"
#include "support/process.hpp"

namespace blip::test {

// A private Prometheus on 127.0.0.1 with its remote-write receiver on, no scrape
// targets and its TSDB in a temporary directory; ready (/-/ready) when constructed.
class PrometheusServer {
 public:
  PrometheusServer();
  ~PrometheusServer();
  std::string url() const;  // http://127.0.0.1:<port>
  std::string write_url() const { return url() + "/api/v1/write"; }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// A private VictoriaMetrics on 127.0.0.1 that shows samples one second after they
// arrive (-search.latencyOffset=1s; its default hides the last 30 s); ready (/health).
class VictoriaMetricsServer {
 public:
  VictoriaMetricsServer();
  ~VictoriaMetricsServer();
  std::string url() const;
  std::string write_url() const { return url() + "/api/v1/write"; }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// POSTs `series` as one remote-write 1.0 request (blip's own encode_write_request and
// headers); the HTTP status, 0 when no answer came.
long remote_write(const std::string& write_url, const std::vector<Series>& series);

}  // namespace blip::test
