#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "blip/analysis/histogram.hpp"
#include "blip/analysis/pattern.hpp"
#include "blip/analysis/run_trend.hpp"
#include "blip/config/config.hpp"
#include "blip/store/rows.hpp"

// The one report model: what happened in a range, computed from outages,
// incidents, blind windows and per-minute rollups. `blip report` renders it
// as a table, JSON or CSV; the status feed serves it.

namespace blip {

class Store;

struct ReportRange {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  // An outage still open lasts until here: the end of the range, or when blip
  // was last known alive if it stopped without closing it (a crash).
  int64_t open_until_ms = 0;
};

struct ProbeSummary {
  std::string probe;
  int64_t observed_ms = 0;  // minutes with samples, less blind time
  int64_t down_ms = 0;      // outage time in range, less blind time
  int64_t samples = 0;
  int outages = 0;
  int brownouts = 0;
  int64_t longest_ms = 0;
  int64_t repair_total_ms = 0;  // over closed outages, for MTTR
  int closed = 0;
  // None without observed time (e.g. a range older than the rollups' retention).
  std::optional<double> uptime() const;
  int64_t mttr_ms() const { return closed > 0 ? repair_total_ms / closed : 0; }
};

struct Incident {
  int64_t id = 0;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;      // none while any of its outages is open
  std::vector<OutageRecord> outages;  // by start: the first is the likely root cause
  const std::string& first_down_probe() const { return outages.front().probe; }
};

// One job's runs as a report reads them: the latest ones before the range
// ends, newest first (more than the range holds: the trend needs 30).
struct JobData {
  std::string job;
  JobSettings settings;
  std::vector<JobRunRecord> runs;
};

struct JobSummary {
  std::string job;
  JobSettings settings;
  std::vector<JobRunRecord> last_runs;  // in the range, newest first, at most kReportedRuns
  int runs = 0;                         // in the range
  int failed = 0;
  int overran = 0;                // took longer than max_run
  std::optional<RunTrend> trend;  // over the last runs up to the range's end
  std::string trend_text;
};
inline constexpr size_t kReportedRuns = 10;

// How many of a probe's outages began while a job was running.
struct JobOverlap {
  std::string probe;
  std::string job;
  int during = 0;
  int outages = 0;  // the probe's outages that began in the range
};

// One vantage point's own outage of a probe, as the fleet report shows it beside the merged one.
struct VantageEdges {
  std::string vantage;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;  // none while still open
};

// Which vantage points saw one fleet outage, and which could have (the fleet report).
struct OutageSighting {
  std::vector<std::string> seen_from;    // vantages whose own outage overlaps it
  std::vector<std::string> observed_by;  // vantages with samples then and not blind
  int needed = 0;                        // vantages down at once that make a quorum
  bool quorum = false;                   // false: a local fault, outside uptime and incidents
  std::vector<VantageEdges> edges;       // each vantage's own outages in it, by start
  std::string note;                      // a local fault, in words
};

struct VantageSummary {
  std::string vantage;
  int64_t samples = 0;   // in the range, over every probe
  int64_t blind_ms = 0;  // its blind windows in the range
  int outages = 0;       // its own outages in the range, over every probe
  int local_faults = 0;  // the fleet's local faults it is in
};

// What a report over several vantage points adds (`blip report --prometheus`). Its
// quorum outages are the report's outages; the rest are kept here, apart.
struct FleetView {
  std::string source;  // where the series came from (no credentials)
  std::vector<VantageSummary> vantages;
  std::optional<int> fixed_quorum;              // --quorum; none: a majority of observed_by
  std::map<int64_t, OutageSighting> sightings;  // by OutageRecord::id, quorum and local ones
  std::vector<OutageRecord> local_faults;       // by start
};

// What a report reads for one range: from the store (load_report_data), or from a
// Prometheus-API server holding every vantage point's series (src/fleet/).
struct ReportData {
  ReportRange range;
  std::vector<std::string> probes;
  std::vector<OutageRecord> outages;
  std::vector<OutageRecord> brownouts;
  std::vector<BlindWindow> blind;
  std::vector<JobData> jobs;
  std::optional<FleetView> fleet;
};

struct Report {
  ReportRange range;
  std::vector<ProbeSummary> summaries;
  std::vector<OutageRecord> outages;
  std::vector<OutageRecord> brownouts;
  std::vector<Incident> incidents;
  std::vector<BlindWindow> blind;
  MinuteOfHourHistogram outage_starts;
  MinuteOfHourHistogram down_seconds;
  HourOfDayHistogram hour_of_day;
  DayOfWeekHourHistogram hour_of_week;
  // Over incidents: the outages of several probes that went down together count once.
  PatternResult incident_pattern;
  std::map<std::string, PatternResult> probe_patterns;
  std::vector<JobSummary> jobs;
  std::vector<JobOverlap> job_overlaps;  // only pairs with at least one outage during a run
  std::optional<FleetView> fleet;        // a fleet report's vantages and sightings
};

// Where a report's per-probe rollup totals come from: the store by default,
// or a cache that answers the same for repeated ranges (the feed).
using RollupTotalsSource =
    std::function<RollupTotals(const std::string& probe, int64_t from_ms, int64_t to_ms)>;

// Reads outages, brownouts and blind windows of the range (of one probe, or all when empty).
// Open outages last until the store was last known alive, unless `writer_alive`
// (the feed, inside the running daemon) says they are still going on.
ReportData load_report_data(const Store& store, ReportRange range, const std::string& probe = "",
                            bool writer_alive = false);
// The part of already-loaded data that touches [from_ms, data.range.to_ms).
ReportData narrow_report_data(const ReportData& data, int64_t from_ms);
// Without `find_patterns` the pattern results stay empty (the feed's uptime windows).
// With `memo` (the feed's, asking every second) the patterns are found over the range up to its
// last whole minute, through the memo: within a minute an unchanged history costs no search.
// Takes `data`'s outages, windows and fleet view: pass a temporary, or a copy to keep it.
Report analyse_report(ReportData data, const RollupTotalsSource& totals,
                      std::optional<int64_t> forced_period_ms = std::nullopt,
                      bool find_patterns = true, PatternMemo* memo = nullptr);
// load + analyse with totals from the store.
Report build_report(const Store& store, const ReportRange& range, const std::string& probe = "",
                    std::optional<int64_t> forced_period_ms = std::nullopt);

// Groups outages that carry an incident id into incidents, by start.
std::vector<Incident> group_incidents(const std::vector<OutageRecord>& outages);

int64_t effective_end(const OutageRecord& outage, const ReportRange& range);
bool touches_blind(const OutageRecord& outage, const Report& report);
// Whether incident `id` groups outages of more than one probe.
bool shared_incident(const Report& report, int64_t id);

// The blind time in [start_ms, end_ms): the union of the windows (time two windows cover
// counts once).
int64_t blind_ms_within(const std::vector<BlindWindow>& blind, int64_t start_ms, int64_t end_ms);

}  // namespace blip
