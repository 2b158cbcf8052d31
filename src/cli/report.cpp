// `blip report`: what happened in a range, read from outages, incidents,
// blind windows and per-minute rollups (never from raw samples, so a report
// over months stays fast), and when outages tend to start.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "blip/analysis/histogram.hpp"
#include "blip/analysis/pattern.hpp"
#include "blip/cli/commands.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

struct Range {
  int64_t from_ms;
  int64_t to_ms;
  // An outage still open lasts until here: the end of the range, or when blip
  // was last known alive if it stopped without closing it (a crash).
  int64_t open_until_ms;
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
  std::optional<double> uptime() const {
    if (observed_ms <= 0) return std::nullopt;
    return std::clamp(1.0 - static_cast<double>(down_ms) / static_cast<double>(observed_ms), 0.0, 1.0);
  }
  int64_t mttr_ms() const { return closed > 0 ? repair_total_ms / closed : 0; }
};

struct Incident {
  int64_t id = 0;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
  std::vector<const OutageRecord*> outages;  // by start: the first is the likely root cause
};

struct Report {
  Range range;
  std::vector<ProbeSummary> summaries;
  std::vector<OutageRecord> outages;
  std::vector<OutageRecord> brownouts;
  std::vector<Incident> incidents;
  std::vector<BlindWindow> blind;
  MinuteOfHourHistogram outage_starts;
  MinuteOfHourHistogram down_seconds;
  HourOfDayHistogram hour_of_day;
  PatternResult incident_pattern;
  std::map<std::string, PatternResult> probe_patterns;
};

std::optional<Range> resolve_range(const ReportOptions& options, std::ostream& err) {
  const int64_t now = wall_now_ms();
  Range range{0, now, now};
  if (!options.from.empty() || !options.to.empty()) {
    if (!options.from.empty() && !parse_iso8601_ms(options.from, range.from_ms)) {
      err << fmt::format("--from: cannot read \"{}\" as an ISO-8601 UTC time (2026-11-25T14:00:00Z)\n", options.from);
      return std::nullopt;
    }
    if (!options.to.empty() && !parse_iso8601_ms(options.to, range.to_ms)) {
      err << fmt::format("--to: cannot read \"{}\" as an ISO-8601 UTC time (2026-11-25T14:00:00Z)\n", options.to);
      return std::nullopt;
    }
  } else {
    std::string problem;
    auto since = parse_duration_ms(options.since, &problem);
    if (!since) {
      err << "--since: " << problem << '\n';
      return std::nullopt;
    }
    range.from_ms = now - *since;
  }
  if (range.from_ms >= range.to_ms) {
    err << "the range is empty: --from must be before --to\n";
    return std::nullopt;
  }
  range.open_until_ms = std::min(range.to_ms, now);
  return range;
}

int64_t effective_end(const OutageRecord& outage, const Range& range) {
  return outage.end_ms.value_or(std::max(outage.start_ms, range.open_until_ms));
}

int64_t overlap(int64_t a_start, int64_t a_end, int64_t b_start, int64_t b_end) {
  return std::max<int64_t>(0, std::min(a_end, b_end) - std::max(a_start, b_start));
}

int64_t blind_overlap(const std::vector<BlindWindow>& blind, int64_t start_ms, int64_t end_ms) {
  int64_t total = 0;
  for (const BlindWindow& window : blind) total += overlap(window.start_ms, window.end_ms, start_ms, end_ms);
  return total;
}

bool touches_blind(const OutageRecord& outage, const Report& report) {
  return blind_overlap(report.blind, outage.start_ms - 1, effective_end(outage, report.range) + 1) > 0;
}

Report gather(const Store& store, const ReportOptions& options, Range range,
              std::optional<int64_t> forced_period_ms) {
  Report report;
  if (auto last_alive = store.last_alive_ms()) range.open_until_ms = std::min(range.open_until_ms, *last_alive);
  report.range = range;
  report.outages = store.outages(range.from_ms, range.to_ms, options.probe, OutageKind::outage);
  report.brownouts = store.outages(range.from_ms, range.to_ms, options.probe, OutageKind::brownout);
  report.blind = store.blind_windows(range.from_ms, range.to_ms);

  std::vector<std::string> probes;
  if (options.probe.empty()) {
    probes = store.probe_names();
  } else {
    probes.push_back(options.probe);
  }
  int64_t first_data_ms = range.to_ms;
  std::map<std::string, std::vector<int64_t>> starts_by_probe;
  for (const std::string& probe : probes) {
    RollupTotals totals = store.rollup_totals(probe, range.from_ms, range.to_ms);
    if (totals.minutes == 0) continue;
    ProbeSummary summary;
    summary.probe = probe;
    summary.samples = totals.samples;
    const int64_t first = std::max(range.from_ms, totals.first_minute_ms);
    first_data_ms = std::min(first_data_ms, first);
    // Minutes with samples already leave out the time blip was not running.
    summary.observed_ms = std::max<int64_t>(
        0, std::min(totals.minutes * 60'000, range.to_ms - first - blind_overlap(report.blind, first, range.to_ms)));
    report.summaries.push_back(summary);
  }
  auto summary_of = [&](const std::string& probe) -> ProbeSummary& {
    for (ProbeSummary& summary : report.summaries) {
      if (summary.probe == probe) return summary;
    }
    report.summaries.push_back({probe});
    return report.summaries.back();
  };

  std::map<int64_t, Incident> incidents;
  for (const OutageRecord& outage : report.outages) {
    const int64_t from = std::max(outage.start_ms, range.from_ms);
    const int64_t until = std::min(effective_end(outage, range), range.to_ms);
    ProbeSummary& summary = summary_of(outage.probe);
    ++summary.outages;
    summary.down_ms += std::max<int64_t>(0, until - from - blind_overlap(report.blind, from, until));
    summary.longest_ms = std::max(summary.longest_ms, effective_end(outage, range) - outage.start_ms);
    if (outage.end_ms && outage.end_reason == "recovered") {  // not ended by blip stopping
      summary.repair_total_ms += *outage.end_ms - outage.start_ms;
      ++summary.closed;
    }
    if (outage.start_ms >= range.from_ms) {
      report.outage_starts.add(outage.start_ms);
      report.hour_of_day.add(outage.start_ms);
      starts_by_probe[outage.probe].push_back(outage.start_ms);
    }
    // Spread each outage's down time over the minutes it covered.
    for (int64_t t = from; t < until;) {
      const int64_t minute_end = std::min(until, t - t % 60'000 + 60'000);
      report.down_seconds.add(t, (minute_end - t + 500) / 1000);
      t = minute_end;
    }
    if (outage.incident_id) {
      Incident& incident = incidents[*outage.incident_id];
      incident.id = *outage.incident_id;
      incident.outages.push_back(&outage);
    }
  }
  for (const OutageRecord& brownout : report.brownouts) ++summary_of(brownout.probe).brownouts;
  std::sort(report.summaries.begin(), report.summaries.end(),
            [](const ProbeSummary& a, const ProbeSummary& b) { return a.probe < b.probe; });

  std::vector<int64_t> incident_starts;
  for (auto& [id, incident] : incidents) {
    std::sort(incident.outages.begin(), incident.outages.end(),
              [](const OutageRecord* a, const OutageRecord* b) { return a->start_ms < b->start_ms; });
    incident.start_ms = incident.outages.front()->start_ms;
    bool open = false;
    int64_t end = incident.start_ms;
    for (const OutageRecord* outage : incident.outages) {
      open = open || !outage->end_ms;
      end = std::max(end, outage->end_ms.value_or(end));
    }
    if (!open) incident.end_ms = end;
    incident_starts.push_back(incident.start_ms);
    report.incidents.push_back(std::move(incident));
  }
  std::sort(report.incidents.begin(), report.incidents.end(),
            [](const Incident& a, const Incident& b) { return a.start_ms < b.start_ms; });

  auto pattern_for = [&](const std::vector<int64_t>& starts, int64_t observed_ms) {
    PatternInput input;
    input.start_ms = starts;
    input.observed_ms = observed_ms;
    input.range_start_ms = first_data_ms;
    input.range_end_ms = range.to_ms;
    return find_period(input, forced_period_ms);
  };
  const int64_t observed_all =
      std::max<int64_t>(0, range.to_ms - first_data_ms - blind_overlap(report.blind, first_data_ms, range.to_ms));
  report.incident_pattern = pattern_for(incident_starts, observed_all);
  for (const ProbeSummary& summary : report.summaries) {
    report.probe_patterns[summary.probe] = pattern_for(starts_by_probe[summary.probe], summary.observed_ms);
  }
  return report;
}

std::string percent(std::optional<double> fraction) {
  return fraction ? fmt::format("{:.3f}%", *fraction * 100.0) : "n/a";
}

std::string end_text(const OutageRecord& outage) {
  return outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "(ongoing)";
}

// "db-write → web-health +1.80s → streaming +2.10s"
std::string incident_chain(const Incident& incident) {
  std::string chain;
  for (const OutageRecord* outage : incident.outages) {
    if (chain.empty()) {
      chain = outage->probe;
    } else {
      chain += fmt::format(" → {} +{}", outage->probe, format_duration_brief(outage->start_ms - incident.start_ms));
    }
  }
  return chain;
}

std::string hour_strip(const HourOfDayHistogram& histogram) {
  return fmt::format("Outage starts by hour of the day (UTC)\n  |{}|\n  00    06    12    18   23\n",
                     block_bars(histogram.bins));
}

// Whether an incident groups outages of more than one probe.
bool shared_incident(const Report& report, int64_t id) {
  return std::any_of(report.incidents.begin(), report.incidents.end(),
                     [&](const Incident& incident) { return incident.id == id && incident.outages.size() > 1; });
}

// The start time in the --tz zone as an extra column, or nothing.
std::string local_column(int64_t wall_ms, const std::string& zone) {
  return zone.empty() ? "" : fmt::format("{:<28}  ", format_local(wall_ms, zone));
}

void print_outage_rows(std::ostream& out, const std::string& title, const std::vector<OutageRecord>& rows,
                       const Report& report, const char* count_label, const std::string& zone) {
  if (rows.empty()) return;
  size_t width = 5;
  for (const OutageRecord& row : rows) width = std::max(width, row.probe.size());
  out << fmt::format("{} ({})\n  {:<{}}  {:<24}  {}{:<24}  {:>8}  {:>7}  {:<13}  {}\n", title, rows.size(), "PROBE",
                     width, "START", zone.empty() ? "" : fmt::format("{:<28}  ", "LOCAL START"), "END", "DURATION",
                     count_label, "ERROR", "DETAIL");
  for (const OutageRecord& row : rows) {
    std::string notes = row.detail;
    if (row.incident_id && shared_incident(report, *row.incident_id)) notes += fmt::format(" [incident {}]", *row.incident_id);
    if (row.end_reason == "shutdown" || row.end_reason == "blip_stopped") notes += " [ended when blip stopped]";
    if (touches_blind(row, report)) notes += " [touches a blind window]";
    out << fmt::format("  {:<{}}  {:<24}  {}{:<24}  {:>8}  {:>7}  {:<13}  {}\n", row.probe, width,
                       format_iso8601_ms(row.start_ms), local_column(row.start_ms, zone), end_text(row),
                       format_duration_brief(effective_end(row, report.range) - row.start_ms), row.down_samples,
                       row.kind == OutageKind::outage ? to_string(row.error) : "-", notes);
  }
  out << '\n';
}

void print_table(std::ostream& out, const ReportOptions& options, const Report& report) {
  out << fmt::format("blip report  {} .. {}  db={}{}\n", format_iso8601_ms(report.range.from_ms),
                     format_iso8601_ms(report.range.to_ms), options.db_path,
                     options.probe.empty() ? "" : "  probe=" + options.probe);
  if (!options.tz.empty()) {
    out << fmt::format("local time ({}): {} .. {}\n", options.tz, format_local(report.range.from_ms, options.tz),
                       format_local(report.range.to_ms, options.tz));
  }
  out << '\n';
  if (report.summaries.empty()) {
    out << "No samples in range.\n";
    return;
  }
  size_t width = 5;
  for (const ProbeSummary& summary : report.summaries) width = std::max(width, summary.probe.size());
  out << fmt::format("Summary (uptime counts time, blind windows excluded)\n  {:<{}}  {:>9}  {:>7}  {:>9}  {:>8}  {:>8}  {:>9}\n",
                     "PROBE", width, "UPTIME", "OUTAGES", "DOWN", "LONGEST", "MTTR", "BROWNOUTS");
  for (const ProbeSummary& summary : report.summaries) {
    out << fmt::format("  {:<{}}  {:>9}  {:>7}  {:>9}  {:>8}  {:>8}  {:>9}\n", summary.probe, width,
                       percent(summary.uptime()), summary.outages, format_duration_brief(summary.down_ms),
                       summary.outages ? format_duration_brief(summary.longest_ms) : "-",
                       summary.closed ? format_duration_brief(summary.mttr_ms()) : "-", summary.brownouts);
  }
  out << '\n';
  if (report.outages.empty()) out << "No outages in range.\n\n";
  const auto shared = std::count_if(report.incidents.begin(), report.incidents.end(),
                                    [](const Incident& incident) { return incident.outages.size() > 1; });
  if (shared > 0) {
    out << fmt::format("Incidents ({} of several outages; {} single-probe ones are only listed below):\n"
                       "  outages that overlapped or began within 5 s; the first to go down is the likely cause\n",
                       shared, report.incidents.size() - static_cast<size_t>(shared));
    for (const Incident& incident : report.incidents) {
      if (incident.outages.size() < 2) continue;
      const int64_t end = incident.end_ms.value_or(report.range.to_ms);
      out << fmt::format("  #{:<4} {}  {}{:>8}  {}\n", incident.id, format_iso8601_ms(incident.start_ms),
                         local_column(incident.start_ms, options.tz),
                         format_duration_brief(end - incident.start_ms), incident_chain(incident));
    }
    out << '\n';
  }
  print_outage_rows(out, "Outages", report.outages, report, "SAMPLES", options.tz);
  print_outage_rows(out, "Brownouts (slower than degraded_after)", report.brownouts, report, "SAMPLES", options.tz);
  if (!report.blind.empty()) {
    out << fmt::format("Blind windows ({}): blip could not see; neither up nor down\n", report.blind.size());
    for (const BlindWindow& window : report.blind) {
      out << fmt::format("  {:<24}  {:<24}  {:>8}  {}\n", format_iso8601_ms(window.start_ms),
                         format_iso8601_ms(window.end_ms), format_duration_brief(window.end_ms - window.start_ms),
                         window.reason);
    }
    out << '\n';
  }
  out << report.outage_starts.render("Outage starts by minute of the hour (UTC)") << '\n';
  out << report.down_seconds.render("Down seconds by minute of the hour (UTC)") << '\n';
  out << hour_strip(report.hour_of_day) << '\n';
  out << "Pattern\n";
  out << fmt::format("  all incidents: {}\n", report.incident_pattern.verdict);
  for (const auto& [probe, pattern] : report.probe_patterns) {
    if (pattern.outages_in_range > 0) out << fmt::format("  {}: {}\n", probe, pattern.verdict);
  }
}

nlohmann::json outage_json(const OutageRecord& outage, const Report& report) {
  return {
      {"probe", outage.probe},
      {"start", format_iso8601_ms(outage.start_ms)},
      {"end", outage.end_ms ? nlohmann::json(format_iso8601_ms(*outage.end_ms)) : nlohmann::json(nullptr)},
      {"duration_ms", effective_end(outage, report.range) - outage.start_ms},
      {"ongoing", !outage.end_ms.has_value()},
      {"samples", outage.down_samples},
      {"error", outage.kind == OutageKind::outage ? nlohmann::json(std::string(to_string(outage.error)))
                                                  : nlohmann::json(nullptr)},
      {"detail", outage.detail},
      {"incident", outage.incident_id ? nlohmann::json(*outage.incident_id) : nlohmann::json(nullptr)},
      {"end_reason", outage.end_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(outage.end_reason)},
      {"touches_blind_window", touches_blind(outage, report)},
  };
}

nlohmann::json pattern_json(const PatternResult& pattern) {
  auto finding_json = [](const PeriodFinding& finding) {
    return nlohmann::json{{"period", period_name(finding.period_ms)},
                          {"period_ms", finding.period_ms},
                          {"phase_ms", finding.phase_ms},
                          {"phase", finding.phase_words},
                          {"spread_ms", finding.spread_ms},
                          {"share", finding.share},
                          {"in_cluster", finding.in_cluster},
                          {"outages", finding.outages},
                          {"cycles", finding.cycles},
                          {"rayleigh_z", finding.rayleigh_z},
                          {"p_value", finding.p_value},
                          {"significant", finding.significant},
                          {"words", finding.words}};
  };
  static const char* kOutcomes[] = {"pattern", "no_pattern", "not_enough_data"};
  nlohmann::json json{{"outcome", kOutcomes[static_cast<int>(pattern.outcome)]},
                      {"verdict", pattern.verdict},
                      {"forced", pattern.forced},
                      {"significance", pattern.significance},
                      {"per_period_threshold", pattern.per_period_threshold},
                      {"outages_in_range", pattern.outages_in_range},
                      {"independent_starts", pattern.independent_starts},
                      {"finding", pattern.finding ? finding_json(*pattern.finding) : nlohmann::json(nullptr)}};
  json["candidates"] = nlohmann::json::array();
  for (const PeriodFinding& candidate : pattern.candidates) json["candidates"].push_back(finding_json(candidate));
  return json;
}

void print_json(std::ostream& out, const Report& report) {
  nlohmann::json json;
  json["from"] = format_iso8601_ms(report.range.from_ms);
  json["to"] = format_iso8601_ms(report.range.to_ms);
  json["probes"] = nlohmann::json::array();
  for (const ProbeSummary& summary : report.summaries) {
    json["probes"].push_back({{"probe", summary.probe},
                              {"uptime", summary.uptime() ? nlohmann::json(*summary.uptime()) : nlohmann::json(nullptr)},
                              {"observed_ms", summary.observed_ms},
                              {"down_ms", summary.down_ms},
                              {"samples", summary.samples},
                              {"outages", summary.outages},
                              {"brownouts", summary.brownouts},
                              {"longest_outage_ms", summary.longest_ms},
                              {"mttr_ms", summary.mttr_ms()}});
  }
  json["incidents"] = nlohmann::json::array();
  for (const Incident& incident : report.incidents) {
    nlohmann::json order = nlohmann::json::array();
    for (const OutageRecord* outage : incident.outages) {
      order.push_back({{"probe", outage->probe}, {"after_ms", outage->start_ms - incident.start_ms}});
    }
    json["incidents"].push_back(
        {{"id", incident.id},
         {"start", format_iso8601_ms(incident.start_ms)},
         {"end", incident.end_ms ? nlohmann::json(format_iso8601_ms(*incident.end_ms)) : nlohmann::json(nullptr)},
         {"root_probe", incident.outages.front()->probe},
         {"order", order}});
  }
  json["outages"] = nlohmann::json::array();
  for (const OutageRecord& outage : report.outages) json["outages"].push_back(outage_json(outage, report));
  json["brownouts"] = nlohmann::json::array();
  for (const OutageRecord& brownout : report.brownouts) json["brownouts"].push_back(outage_json(brownout, report));
  json["blind_windows"] = nlohmann::json::array();
  for (const BlindWindow& window : report.blind) {
    json["blind_windows"].push_back({{"start", format_iso8601_ms(window.start_ms)},
                                     {"end", format_iso8601_ms(window.end_ms)},
                                     {"duration_ms", window.end_ms - window.start_ms},
                                     {"reason", window.reason}});
  }
  json["minute_of_hour"] = {{"outage_starts", report.outage_starts.bins},
                            {"down_seconds", report.down_seconds.bins}};
  json["hour_of_day"] = {{"outage_starts", report.hour_of_day.bins}};
  json["pattern"] = {{"incidents", pattern_json(report.incident_pattern)}, {"probes", nlohmann::json::object()}};
  for (const auto& [probe, pattern] : report.probe_patterns) json["pattern"]["probes"][probe] = pattern_json(pattern);
  out << json.dump(2) << '\n';
}

// RFC 4180 quoting for free text.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void print_csv(std::ostream& out, const Report& report) {
  out << "probe,start,end,duration_ms,down_samples,error,detail,incident,end_reason\n";
  for (const OutageRecord& outage : report.outages) {
    out << fmt::format("{},{},{},{},{},{},{},{},{}\n", csv_field(outage.probe), format_iso8601_ms(outage.start_ms),
                       outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "",
                       effective_end(outage, report.range) - outage.start_ms, outage.down_samples,
                       to_string(outage.error), csv_field(outage.detail),
                       outage.incident_id ? std::to_string(*outage.incident_id) : "", outage.end_reason);
  }
}

}  // namespace

int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err) {
  if (options.format != "table" && options.format != "json" && options.format != "csv") {
    err << fmt::format("--format: expected table, json or csv, got \"{}\"\n", options.format);
    return kExitUsage;
  }
  std::optional<int64_t> forced_period_ms;
  if (options.period != "auto") {
    std::string problem;
    forced_period_ms = parse_duration_ms(options.period, &problem);
    // Below a minute, outage edges (one probe interval) are a large part of the period.
    if (!forced_period_ms || *forced_period_ms < 60'000) {
      err << "--period: " << (problem.empty() ? "must be at least 1m" : problem) << " (or auto)\n";
      return kExitUsage;
    }
  }
  if (!options.tz.empty() && !known_time_zone(options.tz)) {
    err << fmt::format("--tz: unknown time zone \"{}\" (like Europe/Berlin or UTC)\n", options.tz);
    return kExitUsage;
  }
  auto range = resolve_range(options, err);
  if (!range) return kExitUsage;
  try {
    Store store(options.db_path, Store::Mode::read_only);
    if (!options.probe.empty()) {
      auto names = store.probe_names();
      if (std::find(names.begin(), names.end(), options.probe) == names.end()) {
        err << fmt::format("--probe: no probe named \"{}\" in {} (known: {})\n", options.probe, options.db_path,
                           fmt::join(names, ", "));
        return kExitUsage;
      }
    }
    Report report = gather(store, options, *range, forced_period_ms);
    if (options.format == "json") {
      print_json(out, report);
    } else if (options.format == "csv") {
      print_csv(out, report);
    } else {
      print_table(out, options, report);
    }
  } catch (const StoreError& error) {
    err << error.what() << '\n';
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace blip
