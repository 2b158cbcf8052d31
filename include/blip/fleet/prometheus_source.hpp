#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/fleet/fleet_outages.hpp"
#include "blip/remote/series.hpp"

// Reads what blip shipped by remote-write back from a server that answers Prometheus's
// HTTP API (Prometheus, VictoriaMetrics, Mimir, Thanos): raw points through range
// selectors at one evaluation time, so every edge keeps its milliseconds. Where the server
// also answers the remote-read API (Prometheus), raw points come that way instead: its
// XOR chunks as stored, which cost the server next to nothing and blip far less than JSON.
namespace blip {

// The server could not be reached, or did not answer as the API does; what() says which.
class FleetSourceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A label matcher: = or =~ (anchored, as PromQL's).
struct SeriesMatcher {
  std::string name;
  std::string value;
  bool regex = false;
};

// A series selector: a metric name and label matchers.
struct SeriesSelector {
  std::string metric;
  std::vector<SeriesMatcher> matchers;

  // As PromQL writes it: blip_outage{probe="web",vantage=~"a|b"}
  std::string promql() const;
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
  // The same, by remote read where the server answers it (each chunk one POST /api/v1/read),
  // and by range selectors where it does not (VictoriaMetrics) or the answer is not one blip
  // reads: the same series and points either way.
  std::vector<Series> raw_points(const SeriesSelector& selector, int64_t after_ms, int64_t until_ms,
                                 int64_t chunk_ms = 86'400'000) const;
  // What runs_from_points makes of each series' raw_points, without holding the points
  // (a month of blip_outage points at 4 Hz is hundreds of megabytes): each chunk's points
  // become runs as they come, and runs that cross a chunk's edge are joined.
  struct SeriesRuns {
    std::string metric;
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<PointRun> runs;
  };
  std::vector<SeriesRuns> raw_runs(const SeriesSelector& selector, int64_t after_ms,
                                   int64_t until_ms, int64_t chunk_ms = 86'400'000) const;
  // The series `selector` matches that hold points in [from_ms, to_ms], by
  // GET /api/v1/series (the index only, no point is read): metric and labels, no points.
  std::vector<Series> series_of(const SeriesSelector& selector, int64_t from_ms,
                                int64_t to_ms) const;
  // The points of every series `selector` matches in (after_ms, until_ms] by one remote
  // read; none when the server does not answer it as Prometheus does.
  std::optional<std::vector<Series>> remote_read(const SeriesSelector& selector, int64_t after_ms,
                                                 int64_t until_ms) const;
  // The same, each series handed to `each` as it is decoded; its points' storage serves the
  // next series unless `each` takes them (a month of outage points is tens of millions).
  // False when the server does not answer as Prometheus does: `each` may have seen some.
  bool remote_read_each(const SeriesSelector& selector, int64_t after_ms, int64_t until_ms,
                        const std::function<void(Series&)>& each) const;
  // Whether remote read is tried (a server that refused it once is not asked again).
  bool remote_read_enabled() const { return remote_read_ok_.load(); }
  void disable_remote_read() const { remote_read_ok_ = false; }

  // The answer's "data" to one instant query at `at_ms`.
  std::string query(const std::string& promql, int64_t at_ms) const;
  // The body of GET `path` (/api/v1/...) with `params` (escaped here); throws
  // FleetSourceError unless it answers 200.
  std::string get(const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& params) const;

  // The URL as messages show it: no user, password or query.
  const std::string& shown() const { return shown_; }

 private:
  std::string base_url_;
  std::string shown_;
  long timeout_ms_;
  mutable std::atomic<bool> remote_read_ok_{true};
};

// The points of the XOR chunk `data` (Prometheus's tsdb chunk encoding, as remote read's
// STREAMED_XOR_CHUNKS sends it), appended to `out`; throws FleetSourceError when it is cut.
void decode_xor_chunk(std::string_view data, std::vector<SeriesPoint>& out);

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

// Reads blip_outage, blip_hour_samples, blip_minute_samples and blip_blind (never the raw
// samples) for the range and rebuilds each (probe, vantage)'s outages and each vantage's
// blind windows. Minutes come by the hour where blip_hour_samples has the hour and the one
// before it (an hour's point says every minute of it holds samples; the one before it
// says the sender was shipping when the hour began, so its minutes are in the engine):
// a day of such hours is one run (MinuteCount::span). Elsewhere (a blip that ships no
// hours, the first hour of a history, the range's uneven ends) as the server's
// count_over_time / sum_over_time of the minute series over the stretch, and where that
// is not every minute, the minute points themselves.
FleetSeries read_fleet_series(const PrometheusSource& source, const FleetQuery& query);

}  // namespace blip
