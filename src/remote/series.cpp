#include "blip/remote/series.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <iterator>
#include <ostream>
#include <sstream>

namespace blip {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;

int64_t minute_of(int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; }

// Appends a point unless it would not move its series forward in time (a sample stored after
// the wall clock stepped back): engines refuse those.
void add_point(Series& series, int64_t ms, double value) {
  if (!series.points.empty() && series.points.back().ms >= ms) return;
  series.points.push_back({ms, value});
}

Series probe_series(const char* metric, const ProbeSpan& span, const std::string& vantage) {
  return {
      metric, {{"probe", span.probe.name}, {"type", span.probe.type}, {"vantage", vantage}}, {}};
}

}  // namespace

ProbeSpan SpanReader::read(const StoredComponent& probe, int64_t after_ms, int64_t to_ms,
                           size_t max_samples, size_t hold_back, bool with_details) const {
  ProbeSpan span{probe, after_ms, after_ms, {}, {}, {}, {}};
  const int64_t after_next_ms = after_ms == INT64_MIN ? INT64_MIN : after_ms + 1;
  if (after_next_ms >= to_ms) return span;  // read to the range's end already
  // From the minute of the first sample that can follow `after_ms`: from `after_ms`'s own
  // minute, a position on its last millisecond would read nothing and never move on.
  const auto first_minute = store_.first_sample_minute(probe.name, after_next_ms);
  const bool bounded = to_ms != INT64_MAX;
  if (!first_minute || *first_minute >= to_ms) {
    // Nothing (yet) after it. A range (`blip export`) is still closed below: its last
    // minutes, and the end of an outage after its last sample.
    if (!bounded || after_ms == INT64_MIN) return span;
  }
  const bool any = first_minute && *first_minute < to_ms;
  const int64_t from_ms = !any                    ? to_ms
                          : after_ms == INT64_MIN ? *first_minute
                                                  : std::max(*first_minute, after_next_ms);
  int64_t read_to_ms = to_ms;
  if (any) {
    // Whole minutes at a time (a block is a minute), as many as `max_samples` allows.
    const int64_t per_minute =
        std::max<int64_t>(1, kMinuteMs / std::max<int64_t>(1, probe.interval_ms));
    const int64_t minutes = std::max<int64_t>(1, static_cast<int64_t>(max_samples) / per_minute);
    read_to_ms = std::min(to_ms, *first_minute + minutes * kMinuteMs);
    span.samples = store_.samples(probe.name, from_ms, read_to_ms, with_details);
  }
  const int64_t later =
      read_to_ms < to_ms
          ? store_.samples_stored_from(probe.name, read_to_ms,
                                       std::max<int64_t>(1, static_cast<int64_t>(hold_back)))
          : 0;
  const size_t held =
      static_cast<size_t>(std::max<int64_t>(0, static_cast<int64_t>(hold_back) - later));
  const bool read_some = !span.samples.empty();
  span.samples.resize(span.samples.size() > held ? span.samples.size() - held : 0);
  // A bounded range read to its end, nothing held back: this span closes it.
  const bool closes = bounded && read_to_ms == to_ms && held == 0;
  if (closes) {
    span.next_after_ms = to_ms - 1;
  } else if (!span.samples.empty()) {
    span.next_after_ms = span.samples.back().sent_ms;
  } else if (!read_some && later > 0) {
    // Nothing in these minutes and something stored after them: none can come any more (with
    // nothing stored after them yet, a sample may still come into them: the position stays).
    span.next_after_ms = read_to_ms - 1;
  }
  if (span.next_after_ms == after_ms) return span;
  const int64_t begin_ms = after_ms == INT64_MIN ? from_ms : after_ms;
  span.outages = store_.outages(begin_ms, span.next_after_ms + 1, probe.name, OutageKind::outage);
  // Each minute once, in the span that reads to its last millisecond: the minutes from
  // after_ms + 1's to next_after_ms + 1's (excluded). The one closing a range takes every minute
  // that starts before its end.
  span.minutes =
      store_.rollups(probe.name, minute_of(after_ms == INT64_MIN ? from_ms : after_next_ms),
                     closes ? to_ms : minute_of(span.next_after_ms + 1));
  // Each hour that ends with one of these minutes, when all 60 of its minutes hold samples.
  for (const Rollup& last : span.minutes) {
    const int64_t hour_end = last.minute_ms + kMinuteMs;
    if (hour_end % kHourMs != 0) continue;
    const int64_t hour_ms = hour_end - kHourMs;
    std::vector<Rollup> earlier;
    if (span.minutes.front().minute_ms > hour_ms)
      earlier = store_.rollups(probe.name, hour_ms, span.minutes.front().minute_ms);
    int64_t minutes = 0;
    int64_t samples = 0;
    for (const auto* list : {&earlier, &span.minutes}) {
      for (const Rollup& rollup : *list) {
        if (rollup.minute_ms < hour_ms || rollup.minute_ms >= hour_end) continue;
        ++minutes;
        samples += rollup.count;
      }
    }
    if (minutes == kHourMs / kMinuteMs) span.hours.push_back({hour_ms, samples});
  }
  return span;
}

void append_probe_series(const ProbeSpan& span, const std::string& vantage,
                         std::vector<Series>& out) {
  Series up = probe_series("blip_sample_up", span, vantage);
  Series duration = probe_series("blip_sample_duration_seconds", span, vantage);
  Series outage = probe_series("blip_outage", span, vantage);
  Series minute = probe_series("blip_minute_samples", span, vantage);
  Series hour = probe_series("blip_hour_samples", span, vantage);
  const int64_t last_ms = span.next_after_ms;
  // Each outage's 0 at its end, once: in the span whose samples reach past it.
  std::vector<std::pair<int64_t, double>> outage_points;
  for (const OutageRecord& o : span.outages) {
    if (o.end_ms && *o.end_ms > span.after_ms && *o.end_ms <= last_ms)
      outage_points.emplace_back(*o.end_ms, 0.0);
  }
  for (const Sample& sample : span.samples) {
    if (sample.status != Status::blind) {
      add_point(up, sample.sent_ms, sample.status == Status::down ? 0.0 : 1.0);
      add_point(duration, sample.sent_ms, static_cast<double>(sample.latency_us) / 1e6);
    }
    const bool inside = std::any_of(span.outages.begin(), span.outages.end(), [&](const auto& o) {
      return o.start_ms <= sample.sent_ms && (!o.end_ms || sample.sent_ms < *o.end_ms);
    });
    if (inside) outage_points.emplace_back(sample.sent_ms, 1.0);
  }
  std::sort(outage_points.begin(), outage_points.end());
  for (const auto& [ms, value] : outage_points) add_point(outage, ms, value);
  for (const Rollup& rollup : span.minutes) {
    add_point(minute, rollup.minute_ms + kMinuteMs, static_cast<double>(rollup.count));
  }
  for (const HourSamples& whole : span.hours) {
    add_point(hour, whole.hour_ms + kHourMs, static_cast<double>(whole.samples));
  }
  for (Series* series : {&up, &duration, &outage, &minute, &hour}) {
    if (!series->points.empty()) out.push_back(std::move(*series));
  }
}

void append_blind_series(const std::vector<BlindWindow>& windows, const std::string& vantage,
                         std::vector<Series>& out) {
  std::map<std::string, Series> by_reason;
  for (const BlindWindow& window : windows) {
    auto [it, added] = by_reason.try_emplace(window.reason);
    Series& series = it->second;
    if (added) series = {"blip_blind", {{"reason", window.reason}, {"vantage", vantage}}, {}};
    // A window that starts where the one before ended goes on blind: its 1 replaces that 0.
    if (!series.points.empty() && series.points.back().ms == window.start_ms)
      series.points.back().value = 1;
    for (int64_t ms = window.start_ms; ms < window.end_ms; ms += kMinuteMs)
      add_point(series, ms, 1);
    add_point(series, window.end_ms, 0);
  }
  for (auto& [reason, series] : by_reason) out.push_back(std::move(series));
}

void write_openmetrics(const std::vector<Series>& series, std::ostream& out) {
  static constexpr std::pair<const char*, const char*> kFamilies[] = {
      {"blip_sample_up", "1 when a sample was up or degraded, 0 when down"},
      {"blip_sample_duration_seconds", "the attempt's latency"},
      {"blip_outage", "1 at each sample inside an outage, 0 at its end"},
      {"blip_minute_samples", "samples stored in the minute, at the minute's end"},
      {"blip_hour_samples", "samples stored in an hour whose every minute holds some, at its end"},
      {"blip_blind", "1 inside a window blip could not see, 0 at its end"}};
  fmt::memory_buffer text;
  const auto flush = [&] {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    text.clear();
  };
  for (const auto& [family, help] : kFamilies) {
    bool header = false;
    for (const Series& one : series) {
      if (one.metric != family) continue;
      if (!header) {
        fmt::format_to(std::back_inserter(text), "# HELP {} {}\n# TYPE {} gauge\n", family, help,
                       family);
        header = true;
      }
      std::string labels;
      for (const auto& [name, value] : one.labels) {
        labels +=
            fmt::format("{}{}={}", labels.empty() ? "" : ",", name, quoted_label_value(value));
      }
      for (const SeriesPoint& point : one.points) {
        fmt::format_to(std::back_inserter(text), "{}{{{}}} {} {}.{:03}\n", family, labels,
                       point.value, point.ms / 1000, point.ms % 1000);
        if (text.size() >= 64 * 1024) flush();
      }
    }
  }
  fmt::format_to(std::back_inserter(text), "# EOF\n");
  flush();
}

std::string openmetrics_text(const std::vector<Series>& series) {
  std::ostringstream text;
  write_openmetrics(series, text);
  return std::move(text).str();
}

std::string quoted_label_value(const std::string& value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '\\' || c == '"') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "\"";
}

std::string endpoint_label(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  if (path_start == std::string::npos) path_start = url.size();
  std::string host = url.substr(host_start, path_start - host_start);
  if (const size_t at = host.rfind('@'); at != std::string::npos) host.erase(0, at + 1);
  std::string path = url.substr(path_start);
  path = path.substr(0, path.find_first_of("?#"));
  std::string label = url.substr(0, host_start) + host + path;
  // Two endpoints that differ only in their query (`?extra_label=`) must not share a cursor;
  // the query may hold a token, so it is told apart by a stable hash (FNV-1a), never shown.
  const size_t query = url.find('?', path_start);
  if (query == std::string::npos) return label;
  uint64_t hash = 14695981039346656037ULL;
  for (size_t i = query + 1; i < url.size() && url[i] != '#'; ++i) {
    hash = (hash ^ static_cast<unsigned char>(url[i])) * 1099511628211ULL;
  }
  return fmt::format("{}?{:016x}", label, hash);
}

}  // namespace blip
