#include "blip/report/report.hpp"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "blip/store/store.hpp"

namespace blip {
namespace {

int64_t overlap(int64_t a_start, int64_t a_end, int64_t b_start, int64_t b_end) {
  return std::max<int64_t>(0, std::min(a_end, b_end) - std::max(a_start, b_start));
}

}  // namespace

// The blind time in [start_ms, end_ms): the union of the windows, so time that two
// windows cover (a loop stall inside a clock jump, a stall at a restart) counts once.
int64_t blind_ms_within(const std::vector<BlindWindow>& blind, int64_t start_ms, int64_t end_ms) {
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (const BlindWindow& window : blind) {
    if (overlap(window.start_ms, window.end_ms, start_ms, end_ms) > 0) {
      spans.emplace_back(std::max(window.start_ms, start_ms), std::min(window.end_ms, end_ms));
    }
  }
  std::sort(spans.begin(), spans.end());
  int64_t total = 0;
  int64_t covered_until = start_ms;
  for (const auto& [from, until] : spans) {
    total += std::max<int64_t>(0, until - std::max(from, covered_until));
    covered_until = std::max(covered_until, until);
  }
  return total;
}

std::optional<double> ProbeSummary::uptime() const {
  if (observed_ms <= 0) return std::nullopt;
  return std::clamp(1.0 - static_cast<double>(down_ms) / static_cast<double>(observed_ms), 0.0,
                    1.0);
}

int64_t effective_end(const OutageRecord& outage, const ReportRange& range) {
  return outage.end_ms.value_or(std::max(outage.start_ms, range.open_until_ms));
}

bool touches_blind(const OutageRecord& outage, const Report& report) {
  return blind_ms_within(report.blind, outage.start_ms - 1,
                         effective_end(outage, report.range) + 1) > 0;
}

bool shared_incident(const Report& report, int64_t id) {
  return std::any_of(
      report.incidents.begin(), report.incidents.end(),
      [&](const Incident& incident) { return incident.id == id && incident.outages.size() > 1; });
}

ReportData load_report_data(const Store& store, ReportRange range, const std::string& probe,
                            bool writer_alive) {
  ReportData data;
  if (auto last_alive = store.last_alive_ms(); last_alive && !writer_alive) {
    range.open_until_ms = std::min(range.open_until_ms, *last_alive);
  }
  data.range = range;
  data.outages = store.outages(range.from_ms, range.to_ms, probe, OutageKind::outage);
  data.brownouts = store.outages(range.from_ms, range.to_ms, probe, OutageKind::brownout);
  data.blind = store.blind_windows(range.from_ms, range.to_ms);
  if (probe.empty()) {
    data.probes = store.probe_names();
  } else {
    data.probes.push_back(probe);
  }
  constexpr int64_t kJobRunsRead = 500;
  for (auto& [name, settings] : store.jobs()) {
    if (!probe.empty() && name != probe) continue;
    data.jobs.push_back({name, settings, store.job_runs(name, 0, range.to_ms, kJobRunsRead)});
  }
  return data;
}

namespace {

std::vector<JobSummary> summarize_jobs(const std::vector<JobData>& jobs, const ReportRange& range) {
  std::vector<JobSummary> summaries;
  for (const JobData& data : jobs) {
    JobSummary summary;
    summary.job = data.job;
    summary.settings = data.settings;
    std::vector<RunPoint> finished;
    for (const JobRunRecord& run : data.runs) {
      const int64_t at = run.start_ms.value_or(run.end_ms.value_or(0));
      if (run.start_ms && run.end_ms)
        finished.push_back({*run.start_ms, *run.end_ms - *run.start_ms});
      if (at < range.from_ms) continue;
      ++summary.runs;
      summary.failed += run.failed ? 1 : 0;
      const int64_t max_run = data.settings.max_run_ms;
      if (max_run > 0 && run.start_ms &&
          run.end_ms.value_or(range.open_until_ms) - *run.start_ms > max_run) {
        ++summary.overran;
      }
      if (summary.last_runs.size() < kReportedRuns) summary.last_runs.push_back(run);
    }
    const int64_t period = job_period_ms(data.settings, range.to_ms);
    summary.trend = fit_run_trend(std::move(finished), data.settings.max_run_ms, period);
    if (summary.trend) {
      summary.trend_text =
          describe_run_trend(*summary.trend, data.settings.max_run_ms, period, range.to_ms);
    }
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

// Which probes' outages began while a job ran: a backup that stalls the site is named beside it.
std::vector<JobOverlap> overlap_jobs(const std::vector<JobData>& jobs,
                                     const std::vector<OutageRecord>& outages,
                                     const ReportRange& range) {
  std::map<std::string, int> outages_by_probe;
  std::set<std::string> job_names;
  for (const JobData& job : jobs) job_names.insert(job.job);
  for (const OutageRecord& outage : outages) {
    if (outage.start_ms >= range.from_ms && !job_names.contains(outage.probe))
      ++outages_by_probe[outage.probe];
  }
  std::vector<JobOverlap> overlaps;
  for (const auto& [probe, count] : outages_by_probe) {
    for (const JobData& job : jobs) {
      JobOverlap overlap{probe, job.job, 0, count};
      for (const OutageRecord& outage : outages) {
        if (outage.probe != probe || outage.start_ms < range.from_ms) continue;
        const bool during =
            std::any_of(job.runs.begin(), job.runs.end(), [&](const JobRunRecord& run) {
              return run.start_ms && *run.start_ms <= outage.start_ms &&
                     outage.start_ms < run.end_ms.value_or(range.open_until_ms);
            });
        overlap.during += during ? 1 : 0;
      }
      if (overlap.during > 0) overlaps.push_back(std::move(overlap));
    }
  }
  return overlaps;
}

}  // namespace

ReportData narrow_report_data(const ReportData& data, int64_t from_ms) {
  ReportData narrowed;
  narrowed.range = data.range;
  narrowed.range.from_ms = std::max(from_ms, data.range.from_ms);
  narrowed.probes = data.probes;
  // The store's own condition: starts before the range ends, ends after it starts (or is open).
  auto keep = [&](const std::vector<OutageRecord>& rows, std::vector<OutageRecord>& out) {
    for (const OutageRecord& row : rows) {
      if (!row.end_ms || *row.end_ms > narrowed.range.from_ms) out.push_back(row);
    }
  };
  keep(data.outages, narrowed.outages);
  keep(data.brownouts, narrowed.brownouts);
  for (const BlindWindow& window : data.blind) {
    if (window.end_ms > narrowed.range.from_ms) narrowed.blind.push_back(window);
  }
  narrowed.jobs = data.jobs;
  narrowed.fleet = data.fleet;
  return narrowed;
}

std::vector<Incident> group_incidents(const std::vector<OutageRecord>& outages) {
  std::map<int64_t, Incident> by_id;
  for (const OutageRecord& outage : outages) {
    if (!outage.incident_id) continue;
    Incident& incident = by_id[*outage.incident_id];
    incident.id = *outage.incident_id;
    incident.outages.push_back(outage);
  }
  std::vector<Incident> incidents;
  for (auto& [id, incident] : by_id) {
    std::sort(incident.outages.begin(), incident.outages.end(),
              [](const OutageRecord& a, const OutageRecord& b) { return a.start_ms < b.start_ms; });
    incident.start_ms = incident.outages.front().start_ms;
    bool open = false;
    int64_t end = incident.start_ms;
    for (const OutageRecord& outage : incident.outages) {
      open = open || !outage.end_ms;
      end = std::max(end, outage.end_ms.value_or(end));
    }
    if (!open) incident.end_ms = end;
    incidents.push_back(std::move(incident));
  }
  std::sort(incidents.begin(), incidents.end(),
            [](const Incident& a, const Incident& b) { return a.start_ms < b.start_ms; });
  return incidents;
}

Report analyse_report(ReportData data, const RollupTotalsSource& totals_of,
                      std::optional<int64_t> forced_period_ms, bool find_patterns,
                      PatternMemo* memo) {
  const ReportRange& range = data.range;
  Report report;
  report.range = range;
  // Taken, not copied: a fleet report's outages and sightings are tens of thousands.
  report.outages = std::move(data.outages);
  report.brownouts = std::move(data.brownouts);
  report.blind = std::move(data.blind);
  report.fleet = std::move(data.fleet);

  int64_t first_data_ms = range.to_ms;
  std::map<std::string, int64_t> first_data_by_probe;
  std::map<std::string, int64_t> minutes_by_probe;
  std::map<std::string, std::vector<int64_t>> starts_by_probe;
  for (const std::string& probe : data.probes) {
    RollupTotals totals = totals_of(probe, range.from_ms, range.to_ms);
    if (totals.minutes == 0) continue;
    ProbeSummary summary;
    summary.probe = probe;
    summary.samples = totals.samples;
    const int64_t first = std::max(range.from_ms, totals.first_sample_ms);
    first_data_ms = std::min(first_data_ms, first);
    first_data_by_probe[probe] = first;
    minutes_by_probe[probe] = totals.minutes;
    // Minutes with samples already leave out the time blip was not running.
    summary.observed_ms = std::max<int64_t>(
        0, std::min(totals.minutes * 60'000,
                    range.to_ms - first - blind_ms_within(report.blind, first, range.to_ms)));
    report.summaries.push_back(summary);
  }
  auto summary_of = [&](const std::string& probe) -> ProbeSummary& {
    for (ProbeSummary& summary : report.summaries) {
      if (summary.probe == probe) return summary;
    }
    report.summaries.push_back({probe});
    return report.summaries.back();
  };

  for (const OutageRecord& outage : report.outages) {
    const int64_t from = std::max(outage.start_ms, range.from_ms);
    const int64_t until = std::min(effective_end(outage, range), range.to_ms);
    ProbeSummary& summary = summary_of(outage.probe);
    ++summary.outages;
    summary.down_ms +=
        std::max<int64_t>(0, until - from - blind_ms_within(report.blind, from, until));
    summary.longest_ms =
        std::max(summary.longest_ms, effective_end(outage, range) - outage.start_ms);
    if (outage.end_ms && outage.end_reason == "recovered") {  // not ended by blip stopping
      summary.repair_total_ms += *outage.end_ms - outage.start_ms;
      ++summary.closed;
    }
    if (outage.start_ms >= range.from_ms) {
      report.outage_starts.add(outage.start_ms);
      report.hour_of_day.add(outage.start_ms);
      report.hour_of_week.add(outage.start_ms);
      starts_by_probe[outage.probe].push_back(outage.start_ms);
    }
    // Spread each outage's down time over the minutes it covered.
    for (int64_t t = from; t < until;) {
      const int64_t minute_end = std::min(until, t - t % 60'000 + 60'000);
      report.down_seconds.add(t, (minute_end - t + 500) / 1000);
      t = minute_end;
    }
  }
  for (const OutageRecord& brownout : report.brownouts) ++summary_of(brownout.probe).brownouts;
  std::sort(report.summaries.begin(), report.summaries.end(),
            [](const ProbeSummary& a, const ProbeSummary& b) { return a.probe < b.probe; });

  report.incidents = group_incidents(report.outages);
  report.jobs = summarize_jobs(data.jobs, range);
  report.job_overlaps = overlap_jobs(data.jobs, report.outages, range);
  if (!find_patterns) return report;
  std::vector<int64_t> incident_starts;
  for (const Incident& incident : report.incidents) incident_starts.push_back(incident.start_ms);

  // Observed from the first sample (of any probe, or of the probe) to the range's end, less blind
  // windows.
  std::vector<std::pair<int64_t, int64_t>> blind;
  for (const BlindWindow& window : report.blind) blind.emplace_back(window.start_ms, window.end_ms);
  // With a memo the patterns cover the range's whole minutes only, so that a caller asking every
  // second over a window that moves with the clock (the feed) asks about the same input for most
  // of a minute.
  constexpr int64_t kMinuteMs = 60'000;
  auto minute_floor = [](int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; };
  const int64_t pattern_end_ms = memo ? minute_floor(range.to_ms) : range.to_ms;
  const int64_t pattern_start_ms =
      memo ? minute_floor(range.from_ms + kMinuteMs - 1) : range.from_ms;
  first_data_ms = std::max(first_data_ms, pattern_start_ms);
  auto pattern_for = [&](const std::vector<int64_t>& starts, int64_t from_ms, int64_t observed_ms,
                         const char* noun) {
    PatternInput input;
    input.start_ms = starts;
    input.observed_ms = observed_ms;
    input.range_start_ms = from_ms;
    input.range_end_ms = pattern_end_ms;
    input.blind_ms = blind;
    input.noun = noun;
    return memo ? memo->find(input, forced_period_ms) : find_period(input, forced_period_ms);
  };
  const int64_t observed_all =
      std::max<int64_t>(0, pattern_end_ms - first_data_ms -
                               blind_ms_within(report.blind, first_data_ms, pattern_end_ms));
  report.incident_pattern = pattern_for(incident_starts, first_data_ms, observed_all, "incident");
  for (const ProbeSummary& summary : report.summaries) {
    const auto first = first_data_by_probe.find(summary.probe);
    const int64_t from = std::max(
        pattern_start_ms, first != first_data_by_probe.end() ? first->second : first_data_ms);
    int64_t observed_ms = summary.observed_ms;
    if (memo) {  // as the summary's, over the patterns' whole minutes
      const auto minutes = minutes_by_probe.find(summary.probe);
      observed_ms = std::max<int64_t>(
          0, std::min(minutes != minutes_by_probe.end() ? minutes->second * 60'000 : 0,
                      pattern_end_ms - from - blind_ms_within(report.blind, from, pattern_end_ms)));
    }
    report.probe_patterns[summary.probe] =
        pattern_for(starts_by_probe[summary.probe], from, observed_ms, "outage");
  }
  return report;
}

Report build_report(const Store& store, const ReportRange& range, const std::string& probe,
                    std::optional<int64_t> forced_period_ms) {
  return analyse_report(
      load_report_data(store, range, probe),
      [&](const std::string& name, int64_t from_ms, int64_t to_ms) {
        return store.rollup_totals(name, from_ms, to_ms);
      },
      forced_period_ms);
}

}  // namespace blip
