#include "blip/fleet/fleet_outages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <set>

#include "blip/analysis/outage_tracker.hpp"

namespace blip {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kOpen = INT64_MAX;  // the end of an outage still open, while sweeping

int64_t minute_of(int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; }

// The time of [from_ms, to_ms) that the windows cover, counted once where they overlap.

// The minutes of `minute` (one, or a run) that start in the range: [first, end).
std::pair<int64_t, int64_t> minutes_within(const MinuteCount& minute, const ReportRange& range) {
  const int64_t first = std::max(minute.minute_ms, minute_of(range.from_ms));
  const int64_t end = std::min(minute.end_ms(), minute_of(range.to_ms - 1) + kMinuteMs);
  return {first, std::max(first, end)};
}

// Its samples in those minutes: a run's total shared evenly where the range cuts it (the
// source reads runs only within the range, so only hand-made ones are ever cut).
int64_t samples_within(const MinuteCount& minute, const ReportRange& range) {
  const auto [first, end] = minutes_within(minute, range);
  if (first >= end) return 0;
  const int64_t span = std::max<int64_t>(1, minute.span);
  if (end - first == span * kMinuteMs) return minute.samples;
  return minute.samples * ((end - first) / kMinuteMs) / span;
}

// "a", "a and b", "a, b and c"
std::string spoken_list(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " and " : ", ";
    text += names[i];
  }
  return text;
}

std::vector<std::string> without(const std::vector<std::string>& all,
                                 const std::vector<std::string>& some) {
  std::vector<std::string> rest;
  for (const std::string& name : all) {
    if (std::find(some.begin(), some.end(), name) == some.end()) rest.push_back(name);
  }
  return rest;
}

// Numbers incidents as the recorder does (IncidentTracker), replaying openings and
// closings in time order; closings first at the same moment.
void assign_incidents(std::vector<OutageRecord>& outages) {
  struct Event {
    int64_t at;
    bool opens;
    size_t index;
  };
  std::vector<Event> events;
  for (size_t i = 0; i < outages.size(); ++i) {
    events.push_back({outages[i].start_ms, true, i});
    if (outages[i].end_ms) events.push_back({*outages[i].end_ms, false, i});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at < b.at : (!a.opens && b.opens);
  });
  std::map<std::string, size_t> probe_index;
  IncidentTracker tracker;
  for (const Event& event : events) {
    OutageRecord& outage = outages[event.index];
    if (event.opens) {
      const size_t index = probe_index.try_emplace(outage.probe, probe_index.size()).first->second;
      outage.incident_id = tracker.outage_opened(index, outage.start_ms).incident;
    } else {
      tracker.outage_closed(event.at);
    }
  }
}

// The time every one of `vantages` was blind: the intersection of their windows.
std::vector<BlindWindow> blind_everywhere(const FleetSeries& series) {
  if (series.vantages.empty()) return {};
  std::vector<std::pair<int64_t, int64_t>> common;
  bool first = true;
  for (const std::string& vantage : series.vantages) {
    auto found = series.blind.find(vantage);
    if (found == series.blind.end()) return {};
    std::vector<std::pair<int64_t, int64_t>> mine;
    for (const BlindWindow& window : found->second)
      mine.emplace_back(window.start_ms, window.end_ms);
    std::sort(mine.begin(), mine.end());
    if (first) {
      common = mine;
      first = false;
      continue;
    }
    std::vector<std::pair<int64_t, int64_t>> both;
    for (const auto& [a, b] : common) {
      for (const auto& [c, d] : mine) {
        if (std::max(a, c) < std::min(b, d)) both.emplace_back(std::max(a, c), std::min(b, d));
      }
    }
    common = std::move(both);
  }
  std::vector<BlindWindow> windows;
  for (const auto& [a, b] : common) windows.push_back({a, b, "every_vantage_blind"});
  std::sort(windows.begin(), windows.end(),
            [](const BlindWindow& x, const BlindWindow& y) { return x.start_ms < y.start_ms; });
  return windows;
}

}  // namespace

std::vector<PointRun> runs_from_points(const std::vector<SeriesPoint>& points) {
  std::vector<PointRun> runs;
  bool open = false;
  for (const SeriesPoint& point : points) {
    if (point.value != 0) {
      if (!open) runs.push_back({point.ms, std::nullopt, 0, point.ms});
      open = true;
      ++runs.back().ones;
      runs.back().last_ms = point.ms;
    } else if (open) {
      runs.back().end_ms = point.ms;
      open = false;
    }
  }
  return runs;
}

std::vector<BlindWindow> blind_windows_from_points(const std::vector<SeriesPoint>& points,
                                                   const std::string& reason, int64_t until_ms) {
  std::vector<BlindWindow> windows;
  for (const PointRun& run : runs_from_points(points)) {
    windows.push_back(
        {run.start_ms, run.end_ms.value_or(std::max(run.start_ms, until_ms)), reason});
  }
  return windows;
}

bool observed(const FleetSeries& series, const std::string& probe, const std::string& vantage,
              int64_t from_ms, int64_t to_ms) {
  to_ms = std::max(to_ms, from_ms + 1);
  const auto found = series.minutes.find({probe, vantage});
  if (found == series.minutes.end() || found->second.empty()) return false;
  const std::vector<MinuteCount>& minutes = found->second;
  static const std::vector<BlindWindow> kNone;
  const auto blind_found = series.blind.find(vantage);
  const std::vector<BlindWindow>& blind =
      blind_found == series.blind.end() ? kNone : blind_found->second;
  auto watched = [&](int64_t a, int64_t b) {
    a = std::max(a, from_ms);
    b = std::min(b, to_ms);
    return a < b && b - a - blind_ms_within(blind, a, b) > 0;
  };
  // The first minute (or run of minutes) that ends after `from_ms`'s minute starts.
  auto it =
      std::lower_bound(minutes.begin(), minutes.end(), minute_of(from_ms),
                       [](const MinuteCount& minute, int64_t ms) { return minute.end_ms() <= ms; });
  for (; it != minutes.end() && it->minute_ms < to_ms; ++it) {
    if (it->samples > 0 && watched(it->minute_ms, it->end_ms())) return true;
  }
  // The minute going on at the range's end has not been shipped yet.
  const int64_t shipped_until = minutes.back().end_ms();
  return series.range.to_ms - shipped_until <= kTrailingMinuteMs &&
         watched(shipped_until, series.range.to_ms);
}

namespace {

// An open outage of a vantage that has shipped nothing of its probe lately (stopped,
// cut off) ends at its last sample inside it; the others stay open.
std::optional<int64_t> silent_end(const FleetSeries& series, const VantageOutage& outage) {
  if (outage.end_ms) return outage.end_ms;
  const auto found = series.minutes.find({outage.probe, outage.vantage});
  const int64_t shipped_until = found == series.minutes.end() || found->second.empty()
                                    ? INT64_MIN
                                    : found->second.back().end_ms();
  if (shipped_until != INT64_MIN && series.range.to_ms - shipped_until <= kTrailingMinuteMs)
    return std::nullopt;  // still shipping: still down
  if (series.range.to_ms - outage.last_point_ms <= kTrailingMinuteMs) return std::nullopt;
  return std::max(outage.last_point_ms, outage.start_ms + 1);
}

}  // namespace

std::vector<FleetOutage> merge_fleet_outages(const FleetSeries& series,
                                             std::optional<int> fixed_quorum) {
  // Each counted vantage's outages by probe, with the ends of silent vantages' open ones.
  std::map<std::string, std::vector<VantageOutage>> by_probe;
  for (const VantageOutage& outage : series.outages) {
    if (!std::binary_search(series.vantages.begin(), series.vantages.end(), outage.vantage))
      continue;
    VantageOutage closed = outage;
    closed.end_ms = silent_end(series, outage);
    by_probe[outage.probe].push_back(std::move(closed));
  }
  std::vector<FleetOutage> merged;
  for (auto& [probe, outages] : by_probe) {
    std::sort(outages.begin(), outages.end(), [](const VantageOutage& a, const VantageOutage& b) {
      return a.start_ms != b.start_ms ? a.start_ms < b.start_ms : a.vantage < b.vantage;
    });
    // Components: outages that overlap one another, directly or through others.
    for (size_t first = 0; first < outages.size();) {
      size_t last = first + 1;
      int64_t end = outages[first].end_ms.value_or(kOpen);
      while (last < outages.size() && outages[last].start_ms < end) {
        end = std::max(end, outages[last].end_ms.value_or(kOpen));
        ++last;
      }
      const int64_t start = outages[first].start_ms;
      // Who could have seen it: over the whole component.
      std::set<std::string> seen;
      for (size_t i = first; i < last; ++i) seen.insert(outages[i].vantage);
      std::vector<std::string> observed_by;
      const int64_t watched_until = std::min(end, std::max(series.range.to_ms, start + 1));
      for (const std::string& vantage : series.vantages) {
        if (seen.contains(vantage) || observed(series, probe, vantage, start, watched_until))
          observed_by.push_back(vantage);
      }
      const int needed = fixed_quorum.value_or(static_cast<int>(observed_by.size()) / 2 + 1);
      // The quorum's spans: each time from when `needed` vantages are down at once to
      // when fewer are.
      std::vector<std::pair<int64_t, int>> changes;  // +1 at a start, -1 at an end
      for (size_t i = first; i < last; ++i) {
        changes.emplace_back(outages[i].start_ms, +1);
        changes.emplace_back(outages[i].end_ms.value_or(kOpen), -1);
      }
      std::sort(changes.begin(), changes.end());  // at one moment, ends (-1) first
      std::vector<std::pair<int64_t, int64_t>> spans;
      int down = 0;
      for (const auto& [at, change] : changes) {
        const bool was = down >= needed;
        down += change;
        if (!was && down >= needed) spans.emplace_back(at, kOpen);
        if (was && down < needed) spans.back().second = at;
      }
      // No quorum: one local fault over the whole component.
      const bool quorum = !spans.empty();
      if (!quorum) spans.emplace_back(start, end);
      for (const auto& [span_start, span_end] : spans) {
        FleetOutage fleet;
        fleet.probe = probe;
        fleet.start_ms = span_start;
        if (span_end != kOpen) fleet.end_ms = span_end;
        OutageSighting& sighting = fleet.sighting;
        sighting.observed_by = observed_by;
        sighting.needed = needed;
        std::set<std::string> seen_here;
        for (size_t i = first; i < last; ++i) {
          const VantageOutage& one = outages[i];
          const int64_t one_end = one.end_ms.value_or(kOpen);
          // Overlapping the span, or the span's own instant for a zero-length one.
          if (one.start_ms < span_end && one_end > span_start) {
            seen_here.insert(one.vantage);
            fleet.down_samples += one.down_samples;
            sighting.edges.push_back({one.vantage, one.start_ms, one.end_ms});
          }
        }
        sighting.seen_from.assign(seen_here.begin(), seen_here.end());
        sighting.quorum = quorum;
        merged.push_back(std::move(fleet));
      }
      first = last;
    }
  }
  std::sort(merged.begin(), merged.end(), [](const FleetOutage& a, const FleetOutage& b) {
    return a.start_ms != b.start_ms ? a.start_ms < b.start_ms : a.probe < b.probe;
  });
  return merged;
}

std::string describe_local_fault(const std::string& probe, const OutageSighting& sighting) {
  const std::vector<std::string>& seen = sighting.seen_from;
  const std::vector<std::string> up = without(sighting.observed_by, seen);
  const bool one = seen.size() == 1;
  const std::string from = fmt::format("{} {}", one ? "vantage" : "vantages", spoken_list(seen));
  if (static_cast<int>(seen.size()) >= sighting.needed) {
    return fmt::format("{}: from {}, but never {} at once — faults at each or on their paths",
                       probe, from, sighting.needed);
  }
  if (up.empty()) {
    return fmt::format(
        "{}: only from {} (no other vantage was watching; a quorum is {}) — a fault at {} or on "
        "{}, or of the service",
        probe, from, sighting.needed, spoken_list(seen), one ? "its path" : "their paths");
  }
  return fmt::format("{}: only from {} ({} saw it up) — a fault at {} or on {}", probe, from,
                     spoken_list(up), spoken_list(seen), one ? "its path" : "their paths");
}

ReportData fleet_report_data(const FleetSeries& series, std::optional<int> fixed_quorum) {
  const ReportRange& range = series.range;
  ReportData data;
  data.range = range;
  data.probes = series.probes;
  FleetView view;
  view.source = series.source;
  view.fixed_quorum = fixed_quorum;
  int64_t id = 0;
  for (FleetOutage& outage : merge_fleet_outages(series, fixed_quorum)) {
    // The store's condition: begins before the range ends, ends after it begins (or is open).
    if (outage.start_ms >= range.to_ms || (outage.end_ms && *outage.end_ms <= range.from_ms))
      continue;
    OutageRecord record;
    record.id = ++id;
    record.probe = outage.probe;
    record.start_ms = outage.start_ms;
    record.end_ms = outage.end_ms;
    record.down_samples = outage.down_samples;
    if (outage.end_ms) record.end_reason = "recovered";
    if (!outage.sighting.quorum)
      outage.sighting.note = describe_local_fault(outage.probe, outage.sighting);
    (outage.sighting.quorum ? data.outages : view.local_faults).push_back(record);
    view.sightings[record.id] = std::move(outage.sighting);
  }
  assign_incidents(data.outages);
  data.blind = blind_everywhere(series);

  // One pass over each kind, not one per vantage: a fleet's month holds tens of thousands.
  std::map<std::string, VantageSummary> by_vantage;
  for (const std::string& vantage : series.vantages) by_vantage[vantage].vantage = vantage;
  auto summary_of = [&](const std::string& vantage) -> VantageSummary* {
    const auto found = by_vantage.find(vantage);
    return found == by_vantage.end() ? nullptr : &found->second;
  };
  for (const auto& [key, minutes] : series.minutes) {
    if (VantageSummary* summary = summary_of(key.second)) {
      for (const MinuteCount& minute : minutes) summary->samples += samples_within(minute, range);
    }
  }
  for (const VantageOutage& outage : series.outages) {
    if (outage.start_ms >= range.to_ms || (outage.end_ms && *outage.end_ms <= range.from_ms))
      continue;
    if (VantageSummary* summary = summary_of(outage.vantage)) ++summary->outages;
  }
  for (const OutageRecord& local : view.local_faults) {
    for (const std::string& vantage : view.sightings[local.id].seen_from) {
      if (VantageSummary* summary = summary_of(vantage)) ++summary->local_faults;
    }
  }
  for (const std::string& vantage : series.vantages) {
    VantageSummary& summary = by_vantage[vantage];
    if (auto found = series.blind.find(vantage); found != series.blind.end())
      summary.blind_ms = blind_ms_within(found->second, range.from_ms, range.to_ms);
    view.vantages.push_back(summary);
  }
  data.fleet = std::move(view);
  return data;
}

RollupTotals fleet_rollup_totals(const FleetSeries& series, const std::string& probe,
                                 int64_t from_ms, int64_t to_ms) {
  // The minutes with samples from any vantage: runs of them, joined where they overlap.
  std::vector<std::pair<int64_t, int64_t>> watched;
  RollupTotals totals;
  const ReportRange range{from_ms, to_ms, to_ms};
  for (const std::string& vantage : series.vantages) {
    const auto found = series.minutes.find({probe, vantage});
    if (found == series.minutes.end()) continue;
    for (const MinuteCount& minute : found->second) {
      const auto [a, b] = minutes_within(minute, range);
      if (minute.samples <= 0 || a >= b) continue;
      watched.emplace_back(a, b);
      totals.samples += samples_within(minute, range);
    }
  }
  if (watched.empty()) return {};
  std::sort(watched.begin(), watched.end());
  int64_t until = watched.front().first;
  for (const auto& [a, b] : watched) {
    totals.minutes += std::max<int64_t>(0, b - std::max(a, until)) / kMinuteMs;
    until = std::max(until, b);
  }
  totals.first_minute_ms = watched.front().first;
  totals.last_minute_ms = until - kMinuteMs;
  // The series hold no send times: a probe's first minute counts from its start.
  totals.first_sample_ms = watched.front().first;
  return totals;
}

Report build_fleet_report(const FleetSeries& series, std::optional<int> fixed_quorum,
                          std::optional<int64_t> forced_period_ms) {
  return analyse_report(
      fleet_report_data(series, fixed_quorum),
      [&](const std::string& probe, int64_t from_ms, int64_t to_ms) {
        return fleet_rollup_totals(series, probe, from_ms, to_ms);
      },
      forced_period_ms);
}

}  // namespace blip
