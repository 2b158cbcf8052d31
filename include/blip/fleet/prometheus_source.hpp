#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "blip/fleet/fleet_outages.hpp"
#include "blip/remote/series.hpp"

// Reads what blip shipped by remote-write back from a server that answers Prometheus's
// HTTP API (Prometheus, VictoriaMetrics, Mimir, Thanos): raw points through range
// selectors at one evaluation time, so every edge keeps its milliseconds.
namespace blip {

// The server could not be reached, or did not answer as the API does; what() says which.
class FleetSourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PrometheusSource {
 public:
  // `base_url`: http(s)://host:port[/prefix], without /api/v1. Throws FleetSourceError
  // for any other scheme.
  explicit PrometheusSource(std::string base_url, long timeout_ms = 60'000);

  // The raw points of every series `selector` matches in (after_ms, until_ms], one
  // GET /api/v1/query of `selector[<chunk>ms]` per chunk so that no answer grows without
  // bound; chunks are joined per series (a point on a boundary counts once).
  std::vector<Series> raw_points(const std::string& selector, int64_t after_ms, int64_t until_ms,
                                 int64_t chunk_ms = 86'400'000) const;

  // `function`(`selector`[<chunk>]) per chunk of (after_ms, until_ms] (count_over_time,
  // sum_over_time: the server adds up, no point is sent), one query per chunk, several
  // at once; each series once (labels without __name__), one point per chunk at its end.
  std::vector<Series> per_series(const std::string& function, const std::string& selector,
                                 int64_t after_ms, int64_t until_ms,
                                 int64_t chunk_ms = 86'400'000) const;
  // The answer's "data" to one instant query at `at_ms`.
  std::string query(const std::string& promql, int64_t at_ms) const;

  // The URL as messages show it: no user, password or query.
  const std::string& shown() const { return shown_; }

 private:
  std::string base_url_;
  std::string shown_;
  long timeout_ms_;
};

// A PromQL string literal holding `text`.
std::string promql_string(const std::string& text);
// A regular expression that matches exactly one of `names`.
std::string promql_alternatives(const std::vector<std::string>& names);
// The series of one /api/v1/query answer's body; throws FleetSourceError when it is not
// a successful matrix answer ("vector" answers are read as one point each).
std::vector<Series> parse_query_answer(const std::string& body, const std::string& shown);

struct FleetQuery {
  ReportRange range;
  std::string probe;                  // empty: every probe
  std::vector<std::string> vantages;  // empty: every vantage that shipped anything
};

// How far before the range outages and blind windows are read, to find the start of
// one that was going on when the range began.
inline constexpr int64_t kFleetLookbackMs = 86'400'000;

// Reads blip_outage, blip_minute_samples and blip_blind (never the raw samples) for
// the range and rebuilds each (probe, vantage)'s outages and each vantage's blind windows.
// Minutes come as the server's per-day count_over_time / sum_over_time of each series: a
// day with every minute is one run (MinuteCount::span); only the other days' minute points
// are read.
FleetSeries read_fleet_series(const PrometheusSource& source, const FleetQuery& query);

}  // namespace blip
