#include "blip/report/report_json.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <concepts>
#include <ostream>
#include <ranges>
#include <string_view>
#include <type_traits>

#include "blip/core/clock.hpp"

namespace blip {
namespace {

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

// The report's fields are written once, as templates over one of two outputs with the same
// calls: JsonBuilder makes an nlohmann::json (the feed merges parts of it into its own
// documents), JsonWriter writes the text of `dump(2)` straight away (`blip report --format
// json`: a month of a fleet's outages as a document first, then its dump, cost more than
// the rest of the report). Keys come in nlohmann's order, sorted, as a dump prints them.

class JsonBuilder {
 public:
  JsonBuilder& key(std::string_view name) {
    key_ = name;
    return *this;
  }
  void begin_object() { open(nlohmann::json::object()); }
  void begin_array() { open(nlohmann::json::array()); }
  void end_object() { stack_.pop_back(); }
  void end_array() { stack_.pop_back(); }
  template <typename T>
  void value(const T& v) {
    place(to_json(v));
  }
  nlohmann::json take() { return std::move(root_); }

 private:
  template <typename T>
  static nlohmann::json to_json(const T& v) {
    if constexpr (is_optional<T>::value) {
      return v ? to_json(*v) : nlohmann::json(nullptr);
    } else if constexpr (std::is_same_v<T, std::nullptr_t>) {  // before strings: it converts
      return nlohmann::json(nullptr);
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      return nlohmann::json(std::string(std::string_view(v)));
    } else if constexpr (std::ranges::range<T>) {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : v) array.push_back(to_json(item));
      return array;
    } else {
      return nlohmann::json(v);
    }
  }
  nlohmann::json& place(nlohmann::json v) {
    if (stack_.empty()) return root_ = std::move(v);
    nlohmann::json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return top.back();
    }
    return top[key_] = std::move(v);
  }
  // Only the open containers are held: a child added to the innermost one moves none of them.
  void open(nlohmann::json container) { stack_.push_back(&place(std::move(container))); }

  nlohmann::json root_;
  std::vector<nlohmann::json*> stack_;
  std::string key_;
};

// Writes what nlohmann::json's dump(2) writes for the same values, as they come, to `sink` a
// piece at a time (a fleet's month is tens of megabytes: one string of it costs its growth).
class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& sink) : sink_(sink) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  void flush() {
    sink_.write(out_.data(), static_cast<std::streamsize>(out_.size()));
    out_.clear();
  }
  JsonWriter& key(std::string_view name) {
    assert(!levels_.empty() && levels_.back().object && !keyed_);
    // A dump prints an object's keys sorted: so must the fields below.
    assert(levels_.back().first || levels_.back().last_key < name);
    next_item();
    levels_.back().last_key = name;
    string(name);
    out_ += ": ";
    keyed_ = true;
    return *this;
  }
  void begin_object() { begin('{', true); }
  void begin_array() { begin('[', false); }
  void end_object() { end('}'); }
  void end_array() { end(']'); }
  template <typename T>
  void value(const T& v) {
    before_value();
    scalar_or_array(v);
  }

 private:
  struct Level {
    bool object = false;
    bool first = true;
    std::string_view last_key;
  };

  void next_item() {
    if (out_.size() >= kPiece) flush();
    Level& level = levels_.back();
    out_ += level.first ? "\n" : ",\n";
    level.first = false;
    out_.append(2 * levels_.size(), ' ');
  }
  void before_value() {
    if (keyed_) {
      keyed_ = false;
    } else if (!levels_.empty()) {
      assert(!levels_.back().object);
      next_item();
    }
  }
  void begin(char open, bool object) {
    before_value();
    open_container(open, object);
  }
  void open_container(char open, bool object) {
    out_ += open;
    levels_.push_back({object, true, {}});
  }
  void end(char close) {
    const bool empty = levels_.back().first;
    levels_.pop_back();
    if (!empty) {
      out_ += '\n';
      out_.append(2 * levels_.size(), ' ');
    }
    out_ += close;
  }
  void string(std::string_view text) {
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
      return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
    });
    if (!plain) {  // escapes and UTF-8 (and its errors) exactly as nlohmann writes them
      out_ += nlohmann::json(std::string(text)).dump();
      return;
    }
    out_ += '"';
    out_ += text;
    out_ += '"';
  }
  template <typename T>
  void scalar_or_array(const T& v) {
    if constexpr (is_optional<T>::value) {
      if (v) {
        scalar_or_array(*v);
      } else {
        out_ += "null";
      }
    } else if constexpr (std::is_same_v<T, std::nullptr_t>) {  // before strings: it converts
      out_ += "null";
    } else if constexpr (std::is_same_v<T, bool>) {
      out_ += v ? "true" : "false";
    } else if constexpr (std::is_integral_v<T>) {
      char digits[24];
      out_.append(digits, std::to_chars(digits, digits + sizeof digits, v).ptr);
    } else if constexpr (std::is_floating_point_v<T>) {
      out_ += nlohmann::json(v).dump();  // nlohmann's own shortest digits, "1.0", null for NaN
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      string(v);
    } else {
      open_container('[', false);  // its place is taken already
      for (const auto& item : v) value(item);
      end_array();
    }
  }

  static constexpr size_t kPiece = 64 * 1024;
  std::ostream& sink_;
  std::string out_;
  std::vector<Level> levels_;
  bool keyed_ = false;
};

template <typename Out>
void time_field(Out& out, std::string_view name, std::optional<int64_t> wall_ms) {
  out.key(name);
  if (wall_ms) {
    out.value(format_iso8601_ms(*wall_ms));
  } else {
    out.value(nullptr);
  }
}

template <typename Out>
void write_finding(Out& out, const PeriodFinding& finding) {
  out.begin_object();
  out.key("cycles").value(finding.cycles);
  out.key("in_cluster").value(finding.in_cluster);
  out.key("mean_resultant_length").value(finding.mean_resultant_length);
  out.key("outages").value(finding.outages);
  out.key("p_method").value(finding.p_method);
  out.key("p_value").value(finding.p_value);
  out.key("period").value(period_name(finding.period_ms));
  out.key("period_ms").value(finding.period_ms);
  out.key("phase").value(finding.phase_words);
  out.key("phase_ms").value(finding.phase_ms);
  out.key("rayleigh_z").value(finding.rayleigh_z);
  out.key("share").value(finding.share);
  out.key("significant").value(finding.significant);
  out.key("spread_ms").value(finding.spread_ms);
  out.key("window_ms").value(finding.window_ms);
  out.key("window_start_ms").value(finding.window_start_ms);
  out.key("within_ms").value(finding.within_ms);
  out.key("words").value(finding.words);
  out.end_object();
}

template <typename Out>
void write_outage(Out& out, const OutageRecord& outage, const Report& report) {
  const OutageSighting* sighting = nullptr;
  if (report.fleet) {
    const auto found = report.fleet->sightings.find(outage.id);
    if (found != report.fleet->sightings.end()) sighting = &found->second;
  }
  out.begin_object();
  out.key("detail").value(outage.detail);
  out.key("duration_ms").value(effective_end(outage, report.range) - outage.start_ms);
  time_field(out, "end", outage.end_ms);
  out.key("end_reason");
  if (outage.end_reason.empty()) {
    out.value(nullptr);
  } else {
    out.value(outage.end_reason);
  }
  // A fleet report's series carry no error class.
  out.key("error");
  if (outage.kind == OutageKind::outage && !report.fleet) {
    out.value(to_string(outage.error));
  } else {
    out.value(nullptr);
  }
  out.key("in_maintenance").value(outage.in_maintenance);
  out.key("incident").value(outage.incident_id);
  if (sighting && !sighting->note.empty()) out.key("note").value(sighting->note);
  if (sighting) out.key("observed_by").value(sighting->observed_by);
  out.key("ongoing").value(!outage.end_ms.has_value());
  out.key("probe").value(outage.probe);
  if (sighting) {
    out.key("quorum").value(sighting->quorum);
    out.key("quorum_needed").value(sighting->needed);
  }
  out.key("samples").value(outage.down_samples);
  if (sighting) out.key("seen_from").value(sighting->seen_from);
  out.key("start").value(format_iso8601_ms(outage.start_ms));
  out.key("touches_blind_window").value(touches_blind(outage, report));
  if (sighting) {
    out.key("vantage_outages").begin_array();
    for (const VantageEdges& edges : sighting->edges) {
      out.begin_object();
      time_field(out, "end", edges.end_ms);
      out.key("start").value(format_iso8601_ms(edges.start_ms));
      out.key("vantage").value(edges.vantage);
      out.end_object();
    }
    out.end_array();
  }
  out.end_object();
}

template <typename Out>
void write_pattern(Out& out, const PatternResult& pattern, bool with_candidates) {
  static const char* kOutcomes[] = {"pattern", "no_pattern", "not_enough_data"};
  out.begin_object();
  if (with_candidates) {
    out.key("candidates").begin_array();
    for (const PeriodFinding& candidate : pattern.candidates) write_finding(out, candidate);
    out.end_array();
  }
  out.key("finding");
  if (pattern.finding) {
    write_finding(out, *pattern.finding);
  } else {
    out.value(nullptr);
  }
  out.key("forced").value(pattern.forced);
  out.key("independent_starts").value(pattern.independent_starts);
  out.key("outages_in_range").value(pattern.outages_in_range);
  out.key("outcome").value(kOutcomes[static_cast<int>(pattern.outcome)]);
  out.key("per_period_threshold").value(pattern.per_period_threshold);
  out.key("significance").value(pattern.significance);
  out.key("verdict").value(pattern.verdict);
  out.end_object();
}

template <typename Out>
void write_summary(Out& out, const ProbeSummary& summary) {
  out.begin_object();
  out.key("brownouts").value(summary.brownouts);
  out.key("down_ms").value(summary.down_ms);
  out.key("longest_outage_ms").value(summary.longest_ms);
  out.key("mttr_ms").value(summary.mttr_ms());
  out.key("observed_ms").value(summary.observed_ms);
  out.key("outages").value(summary.outages);
  out.key("probe").value(summary.probe);
  out.key("samples").value(summary.samples);
  out.key("uptime").value(summary.uptime());
  out.end_object();
}

template <typename Out>
void write_blind_window(Out& out, const BlindWindow& window) {
  out.begin_object();
  out.key("duration_ms").value(window.end_ms - window.start_ms);
  out.key("end").value(format_iso8601_ms(window.end_ms));
  out.key("reason").value(window.reason);
  out.key("start").value(format_iso8601_ms(window.start_ms));
  out.end_object();
}

template <typename Out>
void write_job_run(Out& out, const JobRunRecord& run) {
  out.begin_object();
  out.key("duration_ms");
  if (run.start_ms && run.end_ms) {
    out.value(*run.end_ms - *run.start_ms);
  } else {
    out.value(nullptr);
  }
  time_field(out, "end", run.end_ms);
  out.key("exit_status").value(run.exit_status);
  out.key("failed").value(run.failed);
  out.key("output").value(run.output);
  out.key("rid").value(run.rid);
  time_field(out, "start", run.start_ms);
  out.end_object();
}

template <typename Out>
void write_job(Out& out, const JobSummary& job) {
  out.begin_object();
  out.key("failed").value(job.failed);
  out.key("grace_ms").value(job.settings.grace_ms);
  out.key("job").value(job.job);
  out.key("last_runs").begin_array();
  for (const JobRunRecord& run : job.last_runs) write_job_run(out, run);
  out.end_array();
  out.key("max_run_ms").value(job.settings.max_run_ms);
  out.key("overran").value(job.overran);
  out.key("period_ms").value(job.settings.period_ms);
  out.key("runs").value(job.runs);
  out.key("schedule").value(job.settings.schedule);
  out.key("time_zone").value(job.settings.time_zone);
  out.key("trend");
  if (job.trend) {
    out.begin_object();
    time_field(out, "exceeds_max_run_at", job.trend->exceeds_max_run_ms);
    out.key("fitted_first_ms").value(job.trend->fitted_first_ms);
    out.key("fitted_last_ms").value(job.trend->fitted_last_ms);
    time_field(out, "overlaps_next_start_at", job.trend->overlaps_next_start_ms);
    out.key("runs").value(job.trend->runs);
    out.key("slope_ms_per_day").value(job.trend->slope_ms_per_day);
    out.key("text").value(job.trend_text);
    out.end_object();
  } else {
    out.value(nullptr);
  }
  out.end_object();
}

template <typename Out>
void write_report(Out& out, const Report& report) {
  out.begin_object();
  out.key("blind_windows").begin_array();
  for (const BlindWindow& window : report.blind) write_blind_window(out, window);
  out.end_array();
  out.key("brownouts").begin_array();
  for (const OutageRecord& brownout : report.brownouts) write_outage(out, brownout, report);
  out.end_array();
  out.key("from").value(format_iso8601_ms(report.range.from_ms));
  out.key("hour_of_day").begin_object();
  out.key("outage_starts").value(report.hour_of_day.bins);
  out.end_object();
  out.key("hour_of_week").begin_object();
  out.key("days").value(DayOfWeekHourHistogram::kDayNames);
  out.key("outage_starts").value(report.hour_of_week.bins);
  out.end_object();
  out.key("incidents").begin_array();
  for (const Incident& incident : report.incidents) {
    out.begin_object();
    time_field(out, "end", incident.end_ms);
    out.key("id").value(incident.id);
    out.key("order").begin_array();
    for (const OutageRecord& outage : incident.outages) {
      out.begin_object();
      out.key("after_ms").value(outage.start_ms - incident.start_ms);
      out.key("probe").value(outage.probe);
      out.end_object();
    }
    out.end_array();
    out.key("root_probe").value(incident.first_down_probe());
    out.key("start").value(format_iso8601_ms(incident.start_ms));
    out.end_object();
  }
  out.end_array();
  out.key("job_overlaps").begin_array();
  for (const JobOverlap& overlap : report.job_overlaps) {
    out.begin_object();
    out.key("job").value(overlap.job);
    out.key("outages").value(overlap.outages);
    out.key("outages_during_runs").value(overlap.during);
    out.key("probe").value(overlap.probe);
    out.end_object();
  }
  out.end_array();
  out.key("jobs").begin_array();
  for (const JobSummary& job : report.jobs) write_job(out, job);
  out.end_array();
  out.key("minute_of_hour").begin_object();
  out.key("down_seconds").value(report.down_seconds.bins);
  out.key("outage_starts").value(report.outage_starts.bins);
  out.end_object();
  std::vector<const OutageRecord*> outages;
  outages.reserve(report.outages.size() + (report.fleet ? report.fleet->local_faults.size() : 0));
  for (const OutageRecord& outage : report.outages) outages.push_back(&outage);
  if (report.fleet) {
    // A fleet report lists its local faults among the outages, with quorum false.
    for (const OutageRecord& local : report.fleet->local_faults) outages.push_back(&local);
    std::stable_sort(outages.begin(), outages.end(),
                     [](const OutageRecord* a, const OutageRecord* b) { return a->id < b->id; });
  }
  out.key("outages").begin_array();
  for (const OutageRecord* outage : outages) write_outage(out, *outage, report);
  out.end_array();
  out.key("pattern").begin_object();
  out.key("incidents");
  write_pattern(out, report.incident_pattern, true);
  out.key("probes").begin_object();
  for (const auto& [probe, pattern] : report.probe_patterns) {
    out.key(probe);
    write_pattern(out, pattern, true);
  }
  out.end_object();
  out.end_object();
  out.key("probes").begin_array();
  for (const ProbeSummary& summary : report.summaries) write_summary(out, summary);
  out.end_array();
  if (report.fleet) {
    out.key("quorum");
    if (report.fleet->fixed_quorum) {
      out.value(*report.fleet->fixed_quorum);
    } else {
      out.value("majority");
    }
    out.key("source").value(report.fleet->source);
  }
  out.key("to").value(format_iso8601_ms(report.range.to_ms));
  if (report.fleet) {
    out.key("vantages").begin_array();
    for (const VantageSummary& vantage : report.fleet->vantages) {
      out.begin_object();
      out.key("blind_ms").value(vantage.blind_ms);
      out.key("local_faults").value(vantage.local_faults);
      out.key("outages").value(vantage.outages);
      out.key("samples").value(vantage.samples);
      out.key("vantage").value(vantage.vantage);
      out.end_object();
    }
    out.end_array();
  }
  out.end_object();
}

template <typename Write>
nlohmann::json built(const Write& write) {
  JsonBuilder out;
  write(out);
  return out.take();
}

}  // namespace

nlohmann::json outage_json(const OutageRecord& outage, const Report& report) {
  return built([&](JsonBuilder& out) { write_outage(out, outage, report); });
}

nlohmann::json pattern_json(const PatternResult& pattern, bool with_candidates) {
  return built([&](JsonBuilder& out) { write_pattern(out, pattern, with_candidates); });
}

nlohmann::json summary_json(const ProbeSummary& summary) {
  return built([&](JsonBuilder& out) { write_summary(out, summary); });
}

nlohmann::json blind_window_json(const BlindWindow& window) {
  return built([&](JsonBuilder& out) { write_blind_window(out, window); });
}

nlohmann::json job_json(const JobSummary& job) {
  return built([&](JsonBuilder& out) { write_job(out, job); });
}

nlohmann::json report_json(const Report& report) {
  return built([&](JsonBuilder& out) { write_report(out, report); });
}

void write_report_json(std::ostream& out, const Report& report) {
  JsonWriter writer(out);
  write_report(writer, report);
  writer.flush();
}

}  // namespace blip
