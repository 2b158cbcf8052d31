#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blip/remote/series.hpp"
#include "blip/report/report.hpp"

// The fleet report's model, on plain data: every vantage point's outages, minutes with
// samples and blind windows (as blip ships them: src/remote/series.cpp) merged per probe
// into fleet outages, and the quorum ones handed to the one report model
// (analyse_report) as the store's outages would be. No server here: tests feed it by hand.
namespace blip {

// One vantage's outage of one probe, rebuilt from its blip_outage points.
struct VantageOutage {
  std::string probe;
  std::string vantage;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;  // none while still open at the range's end
  int64_t down_samples = 0;       // its 1 points
  int64_t last_point_ms = 0;      // its last 1 point
};

// One minute in which a vantage stored samples of a probe, by the minute's start; or, with
// `span` > 1, that many minutes in a row each with samples (`samples`: their total), as
// the server's count_over_time and sum_over_time over a whole day tell without its points.
struct MinuteCount {
  int64_t minute_ms = 0;
  int64_t samples = 0;
  int64_t span = 1;  // minutes

  int64_t end_ms() const { return minute_ms + span * 60'000; }
};

// What the fleet report reads, per vantage point.
struct FleetSeries {
  ReportRange range;
  std::string source;                 // where it came from, for the report's header
  std::vector<std::string> vantages;  // the vantages that count, sorted
  std::vector<std::string> probes;    // sorted
  std::vector<VantageOutage> outages;
  std::map<std::pair<std::string, std::string>, std::vector<MinuteCount>>
      minutes;  // by (probe, vantage), by minute; runs (span > 1) never overlap
  std::map<std::string, std::vector<BlindWindow>> blind;  // by vantage, by start
};

// A run of 1s up to the following 0 is one outage, from its first 1 to the 0; a run
// with no 0 after it is still open. A 0 without 1s before it (the outage began
// before what was read) is dropped.
struct PointRun {
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
  int64_t ones = 0;
  int64_t last_ms = 0;  // the last 1
};
std::vector<PointRun> runs_from_points(const std::vector<SeriesPoint>& points);

// Blind windows from one blip_blind series: an open one lasts until `until_ms`.
std::vector<BlindWindow> blind_windows_from_points(const std::vector<SeriesPoint>& points,
                                                   const std::string& reason, int64_t until_ms);

// A vantage's last shipped minute may trail the range's end by this much and still count
// as watching up to it: blip ships a minute's count only when the minute is over.
inline constexpr int64_t kTrailingMinuteMs = 2 * 60'000;

// Whether `vantage` watched `probe` for a moment of [from_ms, to_ms): a minute with
// samples there, less its blind windows.
bool observed(const FleetSeries& series, const std::string& probe, const std::string& vantage,
              int64_t from_ms, int64_t to_ms);

// One outage of the fleet. Overlapping outages of different vantages make one component;
// each time in it that at least `needed` vantages were down at once is a quorum outage
// (its seen_from: the vantages whose outage overlaps that time); a component without
// such a time is one local fault over all of it. An open outage of a vantage that has
// shipped nothing of the probe for kTrailingMinuteMs ends at its last 1 point.
struct FleetOutage {
  std::string probe;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
  int64_t down_samples = 0;  // over every vantage that saw it
  OutageSighting sighting;
};

// `fixed_quorum`: vantages that must see an outage at once; none: a majority of those
// observing it (more than half). Sorted by start, then probe.
std::vector<FleetOutage> merge_fleet_outages(const FleetSeries& series,
                                             std::optional<int> fixed_quorum);

// "web: only from vantage a (b and c saw it up) — a fault at a or on its path"
std::string describe_local_fault(const std::string& probe, const OutageSighting& sighting);

// The report's inputs: the quorum outages as the report's outages (with incidents), the
// local faults and every sighting in `fleet`, blind time when no vantage could see.
ReportData fleet_report_data(const FleetSeries& series, std::optional<int> fixed_quorum);

// A probe's minutes with samples from any vantage, as the store's rollups would add up.
RollupTotals fleet_rollup_totals(const FleetSeries& series, const std::string& probe,
                                 int64_t from_ms, int64_t to_ms);

// fleet_report_data + analyse_report with fleet_rollup_totals: build_report's twin.
Report build_fleet_report(const FleetSeries& series, std::optional<int> fixed_quorum,
                          std::optional<int64_t> forced_period_ms = std::nullopt);

}  // namespace blip
