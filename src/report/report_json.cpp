#include "blip/report/report_json.hpp"

#include <algorithm>

#include "blip/core/clock.hpp"

namespace blip {
namespace {

nlohmann::json time_or_null(std::optional<int64_t> wall_ms) {
  return wall_ms ? nlohmann::json(format_iso8601_ms(*wall_ms)) : nlohmann::json(nullptr);
}

nlohmann::json finding_json(const PeriodFinding& finding) {
  return {{"period", period_name(finding.period_ms)},
          {"period_ms", finding.period_ms},
          {"phase_ms", finding.phase_ms},
          {"phase", finding.phase_words},
          {"window_start_ms", finding.window_start_ms},
          {"window_ms", finding.window_ms},
          {"within_ms", finding.within_ms},
          {"spread_ms", finding.spread_ms},
          {"share", finding.share},
          {"in_cluster", finding.in_cluster},
          {"outages", finding.outages},
          {"cycles", finding.cycles},
          {"mean_resultant_length", finding.mean_resultant_length},
          {"rayleigh_z", finding.rayleigh_z},
          {"p_value", finding.p_value},
          {"p_method", finding.p_method},
          {"significant", finding.significant},
          {"words", finding.words}};
}

}  // namespace

nlohmann::json outage_json(const OutageRecord& outage, const Report& report) {
  nlohmann::json json = {
      {"probe", outage.probe},
      {"start", format_iso8601_ms(outage.start_ms)},
      {"end", time_or_null(outage.end_ms)},
      {"duration_ms", effective_end(outage, report.range) - outage.start_ms},
      {"ongoing", !outage.end_ms.has_value()},
      {"samples", outage.down_samples},
      // A fleet report's series carry no error class.
      {"error", outage.kind == OutageKind::outage && !report.fleet
                    ? nlohmann::json(std::string(to_string(outage.error)))
                    : nlohmann::json(nullptr)},
      {"detail", outage.detail},
      {"incident",
       outage.incident_id ? nlohmann::json(*outage.incident_id) : nlohmann::json(nullptr)},
      {"end_reason",
       outage.end_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(outage.end_reason)},
      {"touches_blind_window", touches_blind(outage, report)},
      {"in_maintenance", outage.in_maintenance},
  };
  if (!report.fleet) return json;
  const auto found = report.fleet->sightings.find(outage.id);
  if (found == report.fleet->sightings.end()) return json;
  const OutageSighting& sighting = found->second;
  json["seen_from"] = sighting.seen_from;
  json["observed_by"] = sighting.observed_by;
  json["quorum"] = sighting.quorum;
  json["quorum_needed"] = sighting.needed;
  if (!sighting.note.empty()) json["note"] = sighting.note;
  json["vantage_outages"] = nlohmann::json::array();
  for (const VantageEdges& edges : sighting.edges) {
    json["vantage_outages"].push_back({{"vantage", edges.vantage},
                                       {"start", format_iso8601_ms(edges.start_ms)},
                                       {"end", time_or_null(edges.end_ms)}});
  }
  return json;
}

nlohmann::json pattern_json(const PatternResult& pattern, bool with_candidates) {
  static const char* kOutcomes[] = {"pattern", "no_pattern", "not_enough_data"};
  nlohmann::json json{
      {"outcome", kOutcomes[static_cast<int>(pattern.outcome)]},
      {"verdict", pattern.verdict},
      {"forced", pattern.forced},
      {"significance", pattern.significance},
      {"per_period_threshold", pattern.per_period_threshold},
      {"outages_in_range", pattern.outages_in_range},
      {"independent_starts", pattern.independent_starts},
      {"finding", pattern.finding ? finding_json(*pattern.finding) : nlohmann::json(nullptr)}};
  if (!with_candidates) return json;
  json["candidates"] = nlohmann::json::array();
  for (const PeriodFinding& candidate : pattern.candidates)
    json["candidates"].push_back(finding_json(candidate));
  return json;
}

nlohmann::json summary_json(const ProbeSummary& summary) {
  return {
      {"probe", summary.probe},
      {"uptime", summary.uptime() ? nlohmann::json(*summary.uptime()) : nlohmann::json(nullptr)},
      {"observed_ms", summary.observed_ms},
      {"down_ms", summary.down_ms},
      {"samples", summary.samples},
      {"outages", summary.outages},
      {"brownouts", summary.brownouts},
      {"longest_outage_ms", summary.longest_ms},
      {"mttr_ms", summary.mttr_ms()}};
}

nlohmann::json blind_window_json(const BlindWindow& window) {
  return {{"start", format_iso8601_ms(window.start_ms)},
          {"end", format_iso8601_ms(window.end_ms)},
          {"duration_ms", window.end_ms - window.start_ms},
          {"reason", window.reason}};
}

nlohmann::json job_run_json(const JobRunRecord& run) {
  return {
      {"start", time_or_null(run.start_ms)},
      {"end", time_or_null(run.end_ms)},
      {"duration_ms", run.start_ms && run.end_ms ? nlohmann::json(*run.end_ms - *run.start_ms)
                                                 : nlohmann::json(nullptr)},
      {"exit_status", run.exit_status ? nlohmann::json(*run.exit_status) : nlohmann::json(nullptr)},
      {"failed", run.failed},
      {"rid", run.rid},
      {"output", run.output}};
}

nlohmann::json job_json(const JobSummary& job) {
  nlohmann::json json = {{"job", job.job},
                         {"schedule", job.settings.schedule},
                         {"time_zone", job.settings.time_zone},
                         {"period_ms", job.settings.period_ms},
                         {"grace_ms", job.settings.grace_ms},
                         {"max_run_ms", job.settings.max_run_ms},
                         {"runs", job.runs},
                         {"failed", job.failed},
                         {"overran", job.overran},
                         {"last_runs", nlohmann::json::array()},
                         {"trend", nullptr}};
  for (const JobRunRecord& run : job.last_runs) json["last_runs"].push_back(job_run_json(run));
  if (job.trend) {
    json["trend"] = {{"runs", job.trend->runs},
                     {"slope_ms_per_day", job.trend->slope_ms_per_day},
                     {"fitted_first_ms", job.trend->fitted_first_ms},
                     {"fitted_last_ms", job.trend->fitted_last_ms},
                     {"exceeds_max_run_at", time_or_null(job.trend->exceeds_max_run_ms)},
                     {"overlaps_next_start_at", time_or_null(job.trend->overlaps_next_start_ms)},
                     {"text", job.trend_text}};
  }
  return json;
}

nlohmann::json report_json(const Report& report) {
  nlohmann::json json;
  json["from"] = format_iso8601_ms(report.range.from_ms);
  json["to"] = format_iso8601_ms(report.range.to_ms);
  if (report.fleet) {
    json["source"] = report.fleet->source;
    json["quorum"] = report.fleet->fixed_quorum ? nlohmann::json(*report.fleet->fixed_quorum)
                                                : nlohmann::json("majority");
    json["vantages"] = nlohmann::json::array();
    for (const VantageSummary& vantage : report.fleet->vantages) {
      json["vantages"].push_back({{"vantage", vantage.vantage},
                                  {"samples", vantage.samples},
                                  {"blind_ms", vantage.blind_ms},
                                  {"outages", vantage.outages},
                                  {"local_faults", vantage.local_faults}});
    }
  }
  json["probes"] = nlohmann::json::array();
  for (const ProbeSummary& summary : report.summaries)
    json["probes"].push_back(summary_json(summary));
  json["incidents"] = nlohmann::json::array();
  for (const Incident& incident : report.incidents) {
    nlohmann::json order = nlohmann::json::array();
    for (const OutageRecord& outage : incident.outages) {
      order.push_back({{"probe", outage.probe}, {"after_ms", outage.start_ms - incident.start_ms}});
    }
    json["incidents"].push_back({{"id", incident.id},
                                 {"start", format_iso8601_ms(incident.start_ms)},
                                 {"end", time_or_null(incident.end_ms)},
                                 {"root_probe", incident.first_down_probe()},
                                 {"order", order}});
  }
  json["outages"] = nlohmann::json::array();
  std::vector<const OutageRecord*> outages;
  for (const OutageRecord& outage : report.outages) outages.push_back(&outage);
  if (report.fleet) {
    // A fleet report lists its local faults among the outages, with quorum false.
    for (const OutageRecord& local : report.fleet->local_faults) outages.push_back(&local);
    std::stable_sort(outages.begin(), outages.end(),
                     [](const OutageRecord* a, const OutageRecord* b) { return a->id < b->id; });
  }
  for (const OutageRecord* outage : outages)
    json["outages"].push_back(outage_json(*outage, report));
  json["brownouts"] = nlohmann::json::array();
  for (const OutageRecord& brownout : report.brownouts)
    json["brownouts"].push_back(outage_json(brownout, report));
  json["blind_windows"] = nlohmann::json::array();
  for (const BlindWindow& window : report.blind)
    json["blind_windows"].push_back(blind_window_json(window));
  json["minute_of_hour"] = {{"outage_starts", report.outage_starts.bins},
                            {"down_seconds", report.down_seconds.bins}};
  json["hour_of_day"] = {{"outage_starts", report.hour_of_day.bins}};
  json["hour_of_week"] = {{"days", DayOfWeekHourHistogram::kDayNames},
                          {"outage_starts", report.hour_of_week.bins}};
  json["pattern"] = {{"incidents", pattern_json(report.incident_pattern)},
                     {"probes", nlohmann::json::object()}};
  for (const auto& [probe, pattern] : report.probe_patterns)
    json["pattern"]["probes"][probe] = pattern_json(pattern);
  json["jobs"] = nlohmann::json::array();
  for (const JobSummary& job : report.jobs) json["jobs"].push_back(job_json(job));
  json["job_overlaps"] = nlohmann::json::array();
  for (const JobOverlap& overlap : report.job_overlaps) {
    json["job_overlaps"].push_back({{"probe", overlap.probe},
                                    {"job", overlap.job},
                                    {"outages_during_runs", overlap.during},
                                    {"outages", overlap.outages}});
  }
  return json;
}

}  // namespace blip
