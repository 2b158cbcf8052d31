#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "blip/remote/series.hpp"
#include "support/process.hpp"

// Real time-series engines (Debian's victoria-metrics, vmagent, prometheus) on loopback, and
// what a test reads back from them through the Prometheus query API.
namespace blip::test {

// How to start one engine. In `args` and `files`, "{port}" becomes its port and "{dir}" its data
// directory; `files` are written into that directory first (a configuration file).
struct EngineCommand {
  std::string binary;  // a name looked up in PATH
  std::vector<std::string> args;
  std::string ready_path;  // answers 200 once the engine takes requests
  std::map<std::string, std::string> files;
};

// Single-node VictoriaMetrics: -search.latencyOffset=1s (its default hides the last 30 s),
// -dedup.minScrapeInterval=1ms (1.79 keeps a re-sent sample twice otherwise) and no response
// cache (a test polls one query until the answer changes).
EngineCommand victoria_metrics();
// vmagent forwarding what it receives on /api/v1/write to every one of `remote_write_urls`
// (replicated, each with its own on-disk queue).
EngineCommand vmagent(const std::vector<std::string>& remote_write_urls);
// Prometheus as a remote-write receiver (--web.enable-remote-write-receiver). Its
// prometheus.yml sets scrape_interval and evaluation_interval 1s and nothing else, then `yaml`
// (top-level sections: `scrape_configs:`, `storage:`, `rule_files:`, `alerting:`; "{port}" is
// its own port).
EngineCommand prometheus_receiver(const std::string& yaml = "");
// Alertmanager (Debian's prometheus-alertmanager, not clustered) routing every alert to the
// webhook `webhook_url` (resolved ones too) with group_wait and group_interval 1s and
// repeat_interval 1h: a notification about a second after an alert fires or changes.
EngineCommand alertmanager(const std::string& webhook_url);

// Whether `binary` is on PATH (a test without its engine skips, saying which).
bool installed(const std::string& binary);

// An engine on 127.0.0.1, on a port free when it was made; its data directory outlives stop(),
// so start() brings it back on the same port with the same data. Killed when destroyed.
class Engine {
 public:
  explicit Engine(EngineCommand command);  // started, and ready
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  int port() const { return port_; }
  std::string url(const std::string& path = "") const;  // http://127.0.0.1:<port><path>
  std::string write_url() const { return url("/api/v1/write"); }
  // Throws std::runtime_error (with the engine's log) when it is not ready within 60 s.
  void start();
  // SIGTERM, and waits for it to exit (a clean shutdown that keeps what it took); its status.
  int stop();
  void kill();  // SIGKILL
  bool running() const;
  std::string log() const;

 private:
  EngineCommand command_;
  TempDir dir_;
  int port_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// One series as a Prometheus-API server returns it: labels (with __name__) and raw points.
struct QueriedSeries {
  std::map<std::string, std::string> labels;
  std::vector<std::pair<int64_t, double>> points;  // (ms, value), in time order
};

// The raw points of `selector` in (at_ms - range, at_ms]: an instant query of the range vector
// `selector[range]` at `at_ms` on /api/v1/query of `base_url`. Throws std::runtime_error when the
// server does not answer it.
std::vector<QueriedSeries> query_points(const std::string& base_url, const std::string& selector,
                                        const std::string& range, int64_t at_ms);

// POSTs `series` as one remote-write 1.0 request (blip's own encode_write_request and headers)
// to `write_url`; the HTTP status, 0 when no answer came.
long remote_write(const std::string& write_url, const std::vector<Series>& series);

}  // namespace blip::test
