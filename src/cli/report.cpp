// `blip report`: outage windows, blind windows and the minute-of-hour histogram.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "blip/analysis/histogram.hpp"
#include "blip/cli/commands.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

struct Range {
  int64_t from_ms;
  int64_t to_ms;
};

std::optional<Range> resolve_range(const ReportOptions& options, std::ostream& err) {
  const int64_t now = wall_now_ms();
  Range range{0, now};
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
  return range;
}

// The outage's end for durations; an open outage lasts until the end of the range.
int64_t effective_end(const OutageRecord& outage, const Range& range) {
  return outage.end_ms.value_or(std::max(outage.start_ms, range.to_ms));
}

std::string end_text(const OutageRecord& outage) {
  return outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "(ongoing)";
}

void print_table(std::ostream& out, const ReportOptions& options, const Range& range,
                 const std::vector<OutageRecord>& outages, const std::vector<BlindWindow>& blind,
                 const MinuteOfHourHistogram& starts, const MinuteOfHourHistogram& down_seconds) {
  out << fmt::format("blip report  {} .. {}  db={}{}\n\n", format_iso8601_ms(range.from_ms),
                     format_iso8601_ms(range.to_ms), options.db_path,
                     options.probe.empty() ? "" : "  probe=" + options.probe);
  std::map<std::string, std::pair<int64_t, int64_t>> per_probe;  // count, down ms
  for (const OutageRecord& outage : outages) {
    auto& [count, down_ms] = per_probe[outage.probe];
    ++count;
    down_ms += effective_end(outage, range) - outage.start_ms;
  }
  if (outages.empty()) {
    out << "No outages in range.\n\n";
  } else {
    out << "Summary\n";
    for (const auto& [probe, totals] : per_probe) {
      out << fmt::format("  {:<24} {:>4} outage{}  {:>10} down\n", probe, totals.first, totals.first == 1 ? " " : "s",
                         format_duration_brief(totals.second));
    }
    size_t probe_width = 5;
    for (const OutageRecord& outage : outages) probe_width = std::max(probe_width, outage.probe.size());
    out << fmt::format("\nOutages ({})\n  {:<{}}  {:<24}  {:<24}  {:>9}  {:>7}  {:<13}  {}\n", outages.size(), "PROBE",
                       probe_width, "START", "END", "DURATION", "SAMPLES", "ERROR", "DETAIL");
    for (const OutageRecord& outage : outages) {
      std::string detail = outage.detail;
      if (outage.end_reason == "shutdown" || outage.end_reason == "blip_stopped") {
        detail += fmt::format(" [ended by {}]", outage.end_reason == "shutdown" ? "blip shutdown" : "blip stopping");
      }
      out << fmt::format("  {:<{}}  {:<24}  {:<24}  {:>9}  {:>7}  {:<13}  {}\n", outage.probe, probe_width,
                         format_iso8601_ms(outage.start_ms), end_text(outage),
                         format_duration_brief(effective_end(outage, range) - outage.start_ms), outage.down_samples,
                         to_string(outage.error), detail);
    }
    out << '\n';
  }
  if (!blind.empty()) {
    out << fmt::format("Blind windows ({}): blip could not see; neither up nor down\n", blind.size());
    for (const BlindWindow& window : blind) {
      out << fmt::format("  {:<24}  {:<24}  {:>9}  {}\n", format_iso8601_ms(window.start_ms),
                         format_iso8601_ms(window.end_ms), format_duration_brief(window.end_ms - window.start_ms),
                         window.reason);
    }
    out << '\n';
  }
  out << starts.render("Outage starts by minute of the hour (UTC)") << '\n';
  out << down_seconds.render("Down seconds by minute of the hour (UTC)");
}

void print_json(std::ostream& out, const Range& range, const std::vector<OutageRecord>& outages,
                const std::vector<BlindWindow>& blind, const MinuteOfHourHistogram& starts,
                const MinuteOfHourHistogram& down_seconds) {
  nlohmann::json report;
  report["from"] = format_iso8601_ms(range.from_ms);
  report["to"] = format_iso8601_ms(range.to_ms);
  report["outages"] = nlohmann::json::array();
  for (const OutageRecord& outage : outages) {
    report["outages"].push_back({
        {"probe", outage.probe},
        {"start", format_iso8601_ms(outage.start_ms)},
        {"end", outage.end_ms ? nlohmann::json(format_iso8601_ms(*outage.end_ms)) : nlohmann::json(nullptr)},
        {"duration_ms", effective_end(outage, range) - outage.start_ms},
        {"ongoing", !outage.end_ms.has_value()},
        {"down_samples", outage.down_samples},
        {"error", std::string(to_string(outage.error))},
        {"detail", outage.detail},
        {"end_reason", outage.end_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(outage.end_reason)},
    });
  }
  report["blind_windows"] = nlohmann::json::array();
  for (const BlindWindow& window : blind) {
    report["blind_windows"].push_back({{"start", format_iso8601_ms(window.start_ms)},
                                       {"end", format_iso8601_ms(window.end_ms)},
                                       {"duration_ms", window.end_ms - window.start_ms},
                                       {"reason", window.reason}});
  }
  report["minute_of_hour"] = {{"outage_starts", starts.bins}, {"down_seconds", down_seconds.bins}};
  out << report.dump(2) << '\n';
}

// RFC 4180 quoting for the free-text detail.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void print_csv(std::ostream& out, const Range& range, const std::vector<OutageRecord>& outages) {
  out << "probe,start,end,duration_ms,down_samples,error,detail,end_reason\n";
  for (const OutageRecord& outage : outages) {
    out << fmt::format("{},{},{},{},{},{},{},{}\n", csv_field(outage.probe), format_iso8601_ms(outage.start_ms),
                       outage.end_ms ? format_iso8601_ms(*outage.end_ms) : "",
                       effective_end(outage, range) - outage.start_ms, outage.down_samples, to_string(outage.error),
                       csv_field(outage.detail), outage.end_reason);
  }
}

}  // namespace

int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err) {
  if (options.format != "table" && options.format != "json" && options.format != "csv") {
    err << fmt::format("--format: expected table, json or csv, got \"{}\"\n", options.format);
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
    auto outages = store.outages(range->from_ms, range->to_ms, options.probe);
    auto blind = store.blind_windows(range->from_ms, range->to_ms);
    MinuteOfHourHistogram starts;
    MinuteOfHourHistogram down_seconds;
    for (const OutageRecord& outage : outages) {
      if (outage.start_ms >= range->from_ms) starts.add(outage.start_ms);
      // Spread each outage's down time over the minutes it covered.
      int64_t from = std::max(outage.start_ms, range->from_ms);
      int64_t until = std::min(effective_end(outage, *range), range->to_ms);
      for (int64_t t = from; t < until;) {
        int64_t minute_end = std::min(until, t - t % 60'000 + 60'000);
        down_seconds.bins[static_cast<size_t>((t / 60'000) % 60)] += (minute_end - t + 500) / 1000;
        t = minute_end;
      }
    }
    if (options.format == "json") {
      print_json(out, *range, outages, blind, starts, down_seconds);
    } else if (options.format == "csv") {
      print_csv(out, *range, outages);
    } else {
      print_table(out, options, *range, outages, blind, starts, down_seconds);
    }
  } catch (const StoreError& error) {
    err << error.what() << '\n';
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace blip
