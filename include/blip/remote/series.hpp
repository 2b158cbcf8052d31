#pragma once
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "blip/store/store.hpp"

// What blip ships beyond its own host: the stored samples as Prometheus series
// (remote-write and OpenMetrics share them), read from the store in order.
namespace blip {

struct SeriesPoint {
  int64_t ms = 0;
  double value = 0;
};

// One series: its metric name and its labels (sorted by name, without __name__).
struct Series {
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<SeriesPoint> points;  // in time order
};

// An hour in which every minute holds samples (60 rollups), by its start: blip_hour_samples.
struct HourSamples {
  int64_t hour_ms = 0;
  int64_t samples = 0;  // the hour's minutes' counts, added up
};

// One probe's samples after a position, with what its series are computed from.
struct ProbeSpan {
  StoredComponent probe;
  int64_t after_ms = 0;  // exclusive; INT64_MIN: from its first sample
  // The position after this span: its last sample's send time; to_ms - 1 when it closes a
  // range (below); after_ms when there is nothing (yet) to read.
  int64_t next_after_ms = 0;
  std::vector<Sample> samples;        // sent in (after_ms, next_after_ms], in send order
  std::vector<OutageRecord> outages;  // its outages (not brownouts) overlapping the span
  // Its minutes read to their end: from after_ms + 1's up to next_after_ms + 1's (excluded).
  std::vector<Rollup> minutes;
  // The hours whose last minute is among `minutes` and every minute of which holds samples
  // (the earlier minutes as the store has them, shipped in earlier spans).
  std::vector<HourSamples> hours;
};

// Reads spans from a store: the remote-write sender (only samples whose outage state is
// settled) and `blip export` (a range, as it is).
class SpanReader {
 public:
  explicit SpanReader(const Store& store) : store_(store) {}
  // Samples sent in (after_ms, to_ms), about `max_samples` at most (whole minutes), holding
  // back the last `hold_back` stored ones: the recorder decides a sample's outage up to
  // `confirm` samples later and queues its rows before the following sample's.
  // A bounded range (to_ms < INT64_MAX, nothing held back) is closed by the span that reads
  // to its end: that span ends at to_ms - 1 and takes the minutes that start before to_ms and
  // the outage ends before it, even without samples of its own. Read again from a span's
  // next_after_ms until it equals after_ms.
  ProbeSpan read(const StoredComponent& probe, int64_t after_ms, int64_t to_ms, size_t max_samples,
                 size_t hold_back, bool with_details) const;

 private:
  const Store& store_;
};

// How many samples the sender keeps back of a probe: until its outage rows are written.
inline size_t settle_samples(const StoredComponent& probe) {
  return static_cast<size_t>(std::max(1, probe.confirm)) + 1;
}

// The series one span makes, appended to `out` (one Series per metric and probe):
// blip_sample_up and blip_sample_duration_seconds per sample (blind samples have none),
// blip_outage 1 at each sample inside an outage and 0 at its end, blip_minute_samples at
// each minute's end, blip_hour_samples at the end of each hour whose every minute holds
// samples (what the fleet report reads instead of 60 minute points).
void append_probe_series(const ProbeSpan& span, const std::string& vantage,
                         std::vector<Series>& out);

// blip_blind{vantage, reason}: 1 at each window's start and each minute inside it, 0 at its
// end (none where the next window of the reason starts); `windows` in start order.
void append_blind_series(const std::vector<BlindWindow>& windows, const std::string& vantage,
                         std::vector<Series>& out);

// The OpenMetrics text of `series` (one family per metric, `# EOF` at the end), as
// `promtool tsdb create-blocks-from openmetrics` reads it; written to `out` as it is made
// (`blip export`: the text of a day is several times the size of its points).
void write_openmetrics(const std::vector<Series>& series, std::ostream& out);
std::string openmetrics_text(const std::vector<Series>& series);

// A label value in double quotes, \\, " and line feeds escaped: OpenMetrics and PromQL alike.
std::string quoted_label_value(const std::string& value);

// What an endpoint is shown and its cursor kept under: scheme, host, port and path, never its
// user or password, and a hash of its query (which may hold a token) when it has one.
std::string endpoint_label(const std::string& url);

}  // namespace blip
