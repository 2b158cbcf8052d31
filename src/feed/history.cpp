#include "blip/feed/history.hpp"

#include <algorithm>
#include <limits>

namespace blip {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;

int64_t floor_to(int64_t ms, int64_t unit) { return ms - ((ms % unit) + unit) % unit; }

}  // namespace

void RollupHourCache::cover(const Store& store, const std::string& probe, ProbeHours& cached,
                            int64_t from_ms, int64_t to_ms) {
  auto load = [&](int64_t a, int64_t b) {
    // The writer keeps each hour's totals: a row an hour, whatever the probe's rate.
    for (const RollupTotals& totals : store.hour_totals(probe, a, b)) {
      const int64_t hour_ms = floor_to(totals.first_minute_ms, kHourMs);
      if (cached.hours.empty()) {
        cached.slots_from_ms = hour_ms;
      } else if (hour_ms < cached.slots_from_ms) {
        cached.hours.insert(cached.hours.begin(),
                            static_cast<size_t>((cached.slots_from_ms - hour_ms) / kHourMs),
                            Hour{});
        cached.slots_from_ms = hour_ms;
      }
      const auto slot = static_cast<size_t>((hour_ms - cached.slots_from_ms) / kHourMs);
      if (slot >= cached.hours.size()) cached.hours.resize(slot + 1);
      Hour& hour = cached.hours[slot];
      hour.samples = static_cast<uint32_t>(totals.samples);
      hour.down = static_cast<uint32_t>(totals.down);
      hour.degraded = static_cast<uint32_t>(totals.degraded);
      // Kept as the store has it, even when the clock stepped back (±24 days fit).
      hour.first_sample_offset_ms = static_cast<int32_t>(
          std::clamp<int64_t>(totals.first_sample_ms - hour_ms, std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max()));
      hour.minutes = static_cast<uint8_t>(totals.minutes);
      hour.first_minute = static_cast<uint8_t>((totals.first_minute_ms - hour_ms) / 60'000);
      hour.last_minute = static_cast<uint8_t>((totals.last_minute_ms - hour_ms) / 60'000);
    }
  };
  if (cached.known_from_ms >= cached.known_to_ms) {
    cached.hours.clear();
    cached.known_from_ms = from_ms;
    cached.known_to_ms = to_ms;
    load(from_ms, to_ms);
    return;
  }
  if (from_ms < cached.known_from_ms) {
    load(from_ms, cached.known_from_ms);
    cached.known_from_ms = from_ms;
  }
  if (to_ms > cached.known_to_ms) {
    load(cached.known_to_ms, to_ms);
    cached.known_to_ms = to_ms;
  }
}

RollupTotals RollupHourCache::totals(const Store& store, const std::string& probe, int64_t from_ms,
                                     int64_t to_ms, int64_t now_ms) {
  const int64_t first_hour = floor_to(from_ms + kHourMs - 1, kHourMs);
  const int64_t hours_end = floor_to(std::min(to_ms, now_ms - kSettleMs), kHourMs);
  if (first_hour >= hours_end) return store.rollup_totals(probe, from_ms, to_ms);
  RollupTotals sum;
  if (from_ms < first_hour) add_rollup_totals(sum, store.rollup_totals(probe, from_ms, first_hour));
  ProbeHours& cached = probes_[probe];
  cover(store, probe, cached, first_hour, hours_end);
  const int64_t slots_to_ms =
      cached.slots_from_ms + static_cast<int64_t>(cached.hours.size()) * kHourMs;
  for (int64_t hour_ms = std::max(first_hour, cached.slots_from_ms);
       hour_ms < std::min(hours_end, slots_to_ms); hour_ms += kHourMs) {
    const Hour& hour =
        cached.hours[static_cast<size_t>((hour_ms - cached.slots_from_ms) / kHourMs)];
    if (hour.minutes == 0) continue;
    add_rollup_totals(sum, {.minutes = hour.minutes,
                            .first_minute_ms = hour_ms + hour.first_minute * 60'000,
                            .last_minute_ms = hour_ms + hour.last_minute * 60'000,
                            .samples = hour.samples,
                            .down = hour.down,
                            .degraded = hour.degraded,
                            .first_sample_ms = hour_ms + hour.first_sample_offset_ms});
  }
  if (hours_end < to_ms) add_rollup_totals(sum, store.rollup_totals(probe, hours_end, to_ms));
  return sum;
}

void RollupHourCache::keep_only(const std::set<std::string>& probes, int64_t from_ms) {
  const int64_t first_hour = floor_to(from_ms, kHourMs);
  std::erase_if(probes_, [&](const auto& entry) { return !probes.contains(entry.first); });
  for (auto& [probe, cached] : probes_) {
    if (first_hour <= cached.known_from_ms) continue;
    if (first_hour > cached.slots_from_ms) {
      const size_t before = std::min(
          cached.hours.size(), static_cast<size_t>((first_hour - cached.slots_from_ms) / kHourMs));
      cached.hours.erase(cached.hours.begin(),
                         cached.hours.begin() + static_cast<ptrdiff_t>(before));
      cached.slots_from_ms += static_cast<int64_t>(before) * kHourMs;
    }
    // What is known starts no earlier than what is kept (an empty range is loaded afresh).
    cached.known_from_ms = first_hour;
  }
}

size_t RollupHourCache::cached_hours() const {
  size_t hours = 0;
  for (const auto& [probe, cached] : probes_)
    hours += static_cast<size_t>(std::count_if(cached.hours.begin(), cached.hours.end(),
                                               [](const Hour& hour) { return hour.minutes > 0; }));
  return hours;
}

std::shared_ptr<const FeedHistory> FeedHistoryReader::current(
    int64_t now_ms, uint64_t transitions, const std::optional<std::set<std::string>>& shown) {
  std::lock_guard lock(mutex_);
  if (!current_ || current_->transitions != transitions ||
      now_ms - current_->built_wall_ms >= 1000 || now_ms < current_->built_wall_ms ||
      shown != shown_) {
    shown_ = shown;
    current_ = build(now_ms, transitions);
  }
  return current_;
}

size_t FeedHistoryReader::cached_hours() const {
  std::lock_guard lock(mutex_);
  return hours_.cached_hours();
}

int64_t FeedHistoryReader::pattern_searches() const {
  std::lock_guard lock(mutex_);
  return patterns_.misses();
}

size_t FeedHistoryReader::cached_probes() const {
  std::lock_guard lock(mutex_);
  return hours_.cached_probes();
}

std::shared_ptr<const FeedHistory> FeedHistoryReader::build(int64_t now_ms, uint64_t transitions) {
  if (!store_) store_.emplace(db_path_, Store::Mode::read_only);
  const Store& store = *store_;
  auto history = std::make_shared<FeedHistory>();
  history->built_wall_ms = now_ms;
  history->transitions = transitions;
  history->days_from_ms = floor_to(now_ms, kDayMs) - (kFeedDays - 1) * kDayMs;

  auto totals = [&](const std::string& probe, int64_t from_ms, int64_t to_ms) {
    return hours_.totals(store, probe, from_ms, to_ms, now_ms);
  };
  // The feed runs inside the daemon that writes the store: an open outage is still going on.
  ReportData quarter = load_report_data(store, {history->days_from_ms, now_ms, now_ms}, "", true);
  if (shown_)
    std::erase_if(quarter.probes,
                  [&](const std::string& probe) { return !shown_->contains(probe); });
  history->month = analyse_report(narrow_report_data(quarter, now_ms - 30 * kDayMs), totals,
                                  std::nullopt, true, &patterns_);
  patterns_.next_round();
  // The shorter windows are only for their uptime.
  for (auto [window_ms, summaries] :
       {std::pair{kDayMs, &history->day}, std::pair{7 * kDayMs, &history->week}}) {
    const Report report = analyse_report(narrow_report_data(quarter, now_ms - window_ms), totals,
                                         std::nullopt, false);
    for (const ProbeSummary& summary : report.summaries) (*summaries)[summary.probe] = summary;
  }
  history->recent_incidents = group_incidents(store.recent_incident_outages(kRecentIncidents));
  std::reverse(history->recent_incidents.begin(), history->recent_incidents.end());
  std::vector<int64_t> incident_ids;
  for (const Incident& incident : history->recent_incidents) incident_ids.push_back(incident.id);
  for (IncidentNoteRow& note : store.incident_notes(incident_ids))
    history->notes[note.incident_id].push_back(std::move(note));
  history->notices = store.notices_shown_at(now_ms);

  // Each day keeps its worst state: an outage of any length marks it.
  for (const std::string& probe : quarter.probes) {
    DayStrip& strip = history->days[probe];
    strip.states.assign(kFeedDays, DayStrip::State::no_data);
    strip.down_ms.assign(kFeedDays, 0);
    for (int day = 0; day < kFeedDays; ++day) {
      const int64_t start = history->days_from_ms + day * kDayMs;
      if (start >= now_ms) break;
      if (totals(probe, start, std::min(start + kDayMs, now_ms)).minutes > 0) {
        strip.states[static_cast<size_t>(day)] = DayStrip::State::operational;
      }
    }
    const RollupTotals all = totals(probe, history->days_from_ms, now_ms);
    if (all.minutes > 0) history->first_seen_ms[probe] = all.first_sample_ms;
  }
  auto mark = [&](const OutageRecord& outage, DayStrip::State state) {
    auto found = history->days.find(outage.probe);
    if (found == history->days.end()) return;
    const int64_t end = effective_end(outage, quarter.range);
    for (int64_t day_start = std::max(floor_to(outage.start_ms, kDayMs), history->days_from_ms);
         day_start < end; day_start += kDayMs) {
      const auto day = static_cast<size_t>((day_start - history->days_from_ms) / kDayMs);
      if (day >= static_cast<size_t>(kFeedDays)) break;
      DayStrip::State& current = found->second.states[day];
      if (current != DayStrip::State::outage) current = state;  // brownouts are marked first
      if (state == DayStrip::State::outage) {
        found->second.down_ms[day] +=
            std::min(end, day_start + kDayMs) - std::max(outage.start_ms, day_start);
      }
    }
  };
  for (const OutageRecord& brownout : quarter.brownouts) mark(brownout, DayStrip::State::degraded);
  for (const OutageRecord& outage : quarter.outages) mark(outage, DayStrip::State::outage);
  // Every window above starts at or after days_from_ms, and only these probes were asked about.
  hours_.keep_only({quarter.probes.begin(), quarter.probes.end()}, history->days_from_ms);
  return history;
}

}  // namespace blip
