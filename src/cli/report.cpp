// `blip report`: reads its options, builds the report model (src/report/)
// and renders it as a table, JSON or CSV.
#include "blip/report/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/fleet/fleet_outages.hpp"
#include "blip/fleet/prometheus_source.hpp"
#include "blip/report/report_json.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

std::string percent(std::optional<double> fraction) {
  return fraction ? fmt::format("{:.3f}%", *fraction * 100.0) : "n/a";
}

std::string end_text(const OutageRecord& outage) {
  return outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "(ongoing)";
}

// "db-write → web-health +1.80s → streaming +2.10s"
std::string incident_chain(const Incident& incident) {
  std::string chain;
  for (const OutageRecord& outage : incident.outages) {
    if (chain.empty()) {
      chain = outage.probe;
    } else {
      chain += fmt::format(" → {} +{}", outage.probe,
                           format_duration_brief(outage.start_ms - incident.start_ms));
    }
  }
  return chain;
}

// The start time in the --tz zone as an extra column, or nothing.
std::string local_column(int64_t wall_ms, const std::string& zone) {
  return zone.empty() ? "" : fmt::format("{:<28}  ", format_local(wall_ms, zone));
}

void print_outage_rows(std::ostream& out, const std::string& title,
                       const std::vector<OutageRecord>& rows, const Report& report,
                       const char* count_label, const std::string& zone) {
  if (rows.empty()) return;
  size_t width = 5;
  for (const OutageRecord& row : rows) width = std::max(width, row.probe.size());
  out << fmt::format("{} ({})\n  {:<{}}  {:<24}  {}{:<24}  {:>8}  {:>7}  {:<13}  {}\n", title,
                     rows.size(), "PROBE", width, "START",
                     zone.empty() ? "" : fmt::format("{:<28}  ", "LOCAL START"), "END", "DURATION",
                     count_label, "ERROR", "DETAIL");
  for (const OutageRecord& row : rows) {
    std::string notes = row.detail;
    if (row.incident_id && shared_incident(report, *row.incident_id))
      notes += fmt::format(" [incident {}]", *row.incident_id);
    if (row.end_reason == "shutdown" || row.end_reason == "blip_stopped")
      notes += " [ended when blip stopped]";
    if (touches_blind(row, report)) notes += " [touches a blind window]";
    if (report.fleet) {
      if (auto found = report.fleet->sightings.find(row.id); found != report.fleet->sightings.end())
        notes += fmt::format(" [seen from {} of {}]", fmt::join(found->second.seen_from, ","),
                             fmt::join(found->second.observed_by, ","));
    }
    out << fmt::format(
        "  {:<{}}  {:<24}  {}{:<24}  {:>8}  {:>7}  {:<13}  {}\n", row.probe, width,
        format_iso8601_ms(row.start_ms), local_column(row.start_ms, zone), end_text(row),
        format_duration_brief(effective_end(row, report.range) - row.start_ms), row.down_samples,
        row.kind == OutageKind::outage && !report.fleet ? to_string(row.error) : "-", notes);
  }
  out << '\n';
}

std::string job_schedule(const JobSettings& settings) {
  return settings.schedule.empty()
             ? fmt::format("every {}", format_duration_ms(settings.period_ms))
             : fmt::format("cron \"{}\" {}", settings.schedule, settings.time_zone);
}

std::string run_result(const JobRunRecord& run) {
  if (!run.end_ms) return "running";
  if (run.exit_status) return fmt::format("exit {}", *run.exit_status);
  return run.failed ? "failed" : "ok";
}

void print_jobs(std::ostream& out, const Report& report) {
  if (report.jobs.empty()) return;
  out << fmt::format("Jobs ({})\n", report.jobs.size());
  for (const JobSummary& job : report.jobs) {
    out << fmt::format(
        "  {}  {}  grace {}{}: {} runs in range, {} failed, {} over max_run\n", job.job,
        job_schedule(job.settings), format_duration_ms(job.settings.grace_ms),
        job.settings.max_run_ms ? ", max_run " + format_duration_ms(job.settings.max_run_ms) : "",
        job.runs, job.failed, job.overran);
    for (const JobRunRecord& run : job.last_runs) {
      out << fmt::format(
          "    {:<24}  {:>9}  {}\n",
          run.start_ms ? format_iso8601_ms(*run.start_ms) : "(start not seen)",
          run.start_ms && run.end_ms ? format_duration_brief(*run.end_ms - *run.start_ms) : "-",
          run_result(run));
    }
    if (!job.trend_text.empty()) out << fmt::format("    trend: {}\n", job.trend_text);
  }
  out << '\n';
}

// The fleet's vantage points: what each shipped and how often it alone saw an outage.
void print_vantages(std::ostream& out, const Report& report) {
  size_t width = 7;
  for (const VantageSummary& vantage : report.fleet->vantages)
    width = std::max(width, vantage.vantage.size());
  out << fmt::format("Vantage points ({})\n  {:<{}}  {:>9}  {:>9}  {:>7}  {:>12}\n",
                     report.fleet->vantages.size(), "VANTAGE", width, "SAMPLES", "BLIND", "OUTAGES",
                     "LOCAL FAULTS");
  for (const VantageSummary& vantage : report.fleet->vantages) {
    out << fmt::format("  {:<{}}  {:>9}  {:>9}  {:>7}  {:>12}\n", vantage.vantage, width,
                       vantage.samples, format_duration_brief(vantage.blind_ms), vantage.outages,
                       vantage.local_faults);
  }
  out << '\n';
}

// Outages too few vantage points saw: not the service's, so not in uptime or incidents.
void print_local_faults(std::ostream& out, const Report& report, const std::string& zone) {
  const std::vector<OutageRecord>& rows = report.fleet->local_faults;
  if (rows.empty()) return;
  out << fmt::format(
      "Local faults ({}): seen from too few vantage points; not counted as outages\n"
      "  {:<24}  {}{:>8}  {}\n",
      rows.size(), "START", zone.empty() ? "" : fmt::format("{:<28}  ", "LOCAL START"), "DURATION",
      "WHAT");
  for (const OutageRecord& row : rows) {
    const auto found = report.fleet->sightings.find(row.id);
    out << fmt::format("  {:<24}  {}{:>8}  {}\n", format_iso8601_ms(row.start_ms),
                       local_column(row.start_ms, zone),
                       format_duration_brief(effective_end(row, report.range) - row.start_ms),
                       found != report.fleet->sightings.end() ? found->second.note : row.probe);
  }
  out << '\n';
}

void print_table(std::ostream& out, const ReportOptions& options, const Report& report) {
  const std::string source =
      report.fleet
          ? fmt::format("prometheus={}  quorum={}", report.fleet->source,
                        report.fleet->fixed_quorum ? std::to_string(*report.fleet->fixed_quorum)
                                                   : std::string("majority"))
          : "db=" + options.db_path;
  out << fmt::format("blip report  {} .. {}  {}{}\n", format_iso8601_ms(report.range.from_ms),
                     format_iso8601_ms(report.range.to_ms), source,
                     options.probe.empty() ? "" : "  probe=" + options.probe);
  if (!options.tz.empty()) {
    out << fmt::format("local time ({}): {} .. {}\n", options.tz,
                       format_local(report.range.from_ms, options.tz),
                       format_local(report.range.to_ms, options.tz));
  }
  out << '\n';
  if (report.summaries.empty()) {
    out << "No samples in range.\n";
    return;
  }
  size_t width = 5;
  for (const ProbeSummary& summary : report.summaries)
    width = std::max(width, summary.probe.size());
  out << fmt::format(
      "Summary (uptime counts time, blind windows excluded)\n  {:<{}}  {:>9}  {:>7}  {:>9}  {:>8}  "
      "{:>8}  {:>9}\n",
      "PROBE", width, "UPTIME", "OUTAGES", "DOWN", "LONGEST", "MTTR", "BROWNOUTS");
  for (const ProbeSummary& summary : report.summaries) {
    out << fmt::format(
        "  {:<{}}  {:>9}  {:>7}  {:>9}  {:>8}  {:>8}  {:>9}\n", summary.probe, width,
        percent(summary.uptime()), summary.outages, format_duration_brief(summary.down_ms),
        summary.outages ? format_duration_brief(summary.longest_ms) : "-",
        summary.closed ? format_duration_brief(summary.mttr_ms()) : "-", summary.brownouts);
  }
  out << '\n';
  if (report.fleet) print_vantages(out, report);
  if (report.outages.empty()) out << "No outages in range.\n\n";
  const auto shared =
      std::count_if(report.incidents.begin(), report.incidents.end(),
                    [](const Incident& incident) { return incident.outages.size() > 1; });
  if (shared > 0) {
    out << fmt::format(
        "Incidents ({} of several outages; {} single-probe ones are only listed below):\n"
        "  outages that overlapped or began within 5 s; the first to go down is the likely cause\n",
        shared, report.incidents.size() - static_cast<size_t>(shared));
    for (const Incident& incident : report.incidents) {
      if (incident.outages.size() < 2) continue;
      const int64_t end = incident.end_ms.value_or(report.range.to_ms);
      out << fmt::format("  #{:<4} {}  {}{:>8}  {}\n", incident.id,
                         format_iso8601_ms(incident.start_ms),
                         local_column(incident.start_ms, options.tz),
                         format_duration_brief(end - incident.start_ms), incident_chain(incident));
    }
    out << '\n';
  }
  print_outage_rows(out, "Outages", report.outages, report, "SAMPLES", options.tz);
  print_outage_rows(out, "Brownouts (slower than degraded_after)", report.brownouts, report,
                    "SAMPLES", options.tz);
  if (report.fleet) print_local_faults(out, report, options.tz);
  if (!report.blind.empty()) {
    out << fmt::format("Blind windows ({}): blip could not see; neither up nor down\n",
                       report.blind.size());
    for (const BlindWindow& window : report.blind) {
      out << fmt::format("  {:<24}  {:<24}  {:>8}  {}\n", format_iso8601_ms(window.start_ms),
                         format_iso8601_ms(window.end_ms),
                         format_duration_brief(window.end_ms - window.start_ms), window.reason);
    }
    out << '\n';
  }
  print_jobs(out, report);
  out << report.outage_starts.render("Outage starts by minute of the hour (UTC)") << '\n';
  out << report.down_seconds.render("Down seconds by minute of the hour (UTC)") << '\n';
  out << report.hour_of_week.render("Outage starts by day of the week and hour (UTC)") << '\n';
  out << "Pattern\n";
  out << fmt::format("  all incidents: {}\n", report.incident_pattern.verdict);
  for (const auto& [probe, pattern] : report.probe_patterns) {
    if (pattern.outages_in_range > 0) out << fmt::format("  {}: {}\n", probe, pattern.verdict);
  }
  for (const JobOverlap& overlap : report.job_overlaps) {
    out << fmt::format("  {} of {} {} outages began while `{}` was running\n", overlap.during,
                       overlap.outages, overlap.probe, overlap.job);
  }
}

void print_json(std::ostream& out, const Report& report) {
  write_report_json(out, report);
  out << '\n';
}

// A fleet report adds seen_from, observed_by (vantages separated by spaces) and quorum,
// and lists its local faults too (quorum false).
void print_csv(std::ostream& out, const Report& report) {
  out << "probe,start,end,duration_ms,down_samples,error,detail,incident,end_reason"
      << (report.fleet ? ",seen_from,observed_by,quorum\n" : "\n");
  std::vector<const OutageRecord*> rows;
  for (const OutageRecord& outage : report.outages) rows.push_back(&outage);
  if (report.fleet) {
    for (const OutageRecord& local : report.fleet->local_faults) rows.push_back(&local);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const OutageRecord* a, const OutageRecord* b) { return a->id < b->id; });
  }
  for (const OutageRecord* outage : rows) {
    out << fmt::format(
        "{},{},{},{},{},{},{},{},{}", csv_field(outage->probe), format_iso8601_ms(outage->start_ms),
        outage->end_ms ? format_iso8601_ms(*outage->end_ms) : "",
        effective_end(*outage, report.range) - outage->start_ms, outage->down_samples,
        to_string(outage->error), csv_field(outage->detail),
        outage->incident_id ? std::to_string(*outage->incident_id) : "", outage->end_reason);
    if (report.fleet) {
      const auto found = report.fleet->sightings.find(outage->id);
      if (found != report.fleet->sightings.end()) {
        const OutageSighting& sighting = found->second;
        out << fmt::format(",{},{},{}",
                           csv_field(fmt::format("{}", fmt::join(sighting.seen_from, " "))),
                           csv_field(fmt::format("{}", fmt::join(sighting.observed_by, " "))),
                           sighting.quorum ? "true" : "false");
      } else {
        out << ",,,";
      }
    }
    out << '\n';
  }
}

// The vantages of --vantages, as a sorted list without empty names.
std::vector<std::string> vantage_list(const std::string& text) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string name = text.substr(start, comma - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (!name.empty()) names.push_back(name);
    start = comma + 1;
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// The report over the local database; none (and a message) when --probe names no probe.
std::optional<Report> database_report(const ReportOptions& options, const ReportRange& range,
                                      std::optional<int64_t> forced_period_ms, std::ostream& err) {
  Store store(options.db_path, Store::Mode::read_only);
  if (!options.probe.empty() && !known_probe_or_report(store, options.probe, options.db_path, err))
    return std::nullopt;
  return build_report(store, range, options.probe, forced_period_ms);
}

// The report over every vantage point's series on a Prometheus-API server.
std::optional<Report> fleet_report(const ReportOptions& options, const ReportRange& range,
                                   std::optional<int64_t> forced_period_ms, std::ostream& err) {
  PrometheusSource source(options.prometheus);
  FleetQuery query{range, options.probe, vantage_list(options.vantages)};
  FleetSeries series = read_fleet_series(source, query);
  if (!options.probe.empty() && series.probes.empty()) {
    err << fmt::format("--probe: {} holds no series of a probe named \"{}\" in the range\n",
                       source.shown(), options.probe);
    return std::nullopt;
  }
  std::optional<int> quorum;
  if (options.quorum > 0) quorum = options.quorum;
  return build_fleet_report(series, quorum, forced_period_ms);
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
  auto range = resolve_range(options.since, options.from, options.to, err);
  if (!range) return kExitUsage;
  try {
    std::optional<Report> report = options.prometheus.empty()
                                       ? database_report(options, *range, forced_period_ms, err)
                                       : fleet_report(options, *range, forced_period_ms, err);
    if (!report) return kExitUsage;
    if (options.format == "json") {
      print_json(out, *report);
    } else if (options.format == "csv") {
      print_csv(out, *report);
    } else {
      print_table(out, options, *report);
    }
  } catch (const StoreError& error) {
    err << error.what() << '\n';
    return kExitUsage;
  } catch (const FleetSourceError& error) {
    err << error.what() << '\n';
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace blip
