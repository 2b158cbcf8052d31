#include "blip/feed/history.hpp"

#include <algorithm>

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
    for (const RollupTotals& hour : store.hour_totals(probe, a, b)) {
      cached.hours[floor_to(hour.first_minute_ms, kHourMs)] = hour;
    }
  };
  if (cached.known_from_ms >= cached.known_to_ms) {
    load(from_ms, to_ms);
    cached.known_from_ms = from_ms;
    cached.known_to_ms = to_ms;
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
  for (auto it = cached.hours.lower_bound(first_hour);
       it != cached.hours.end() && it->first < hours_end; ++it) {
    add_rollup_totals(sum, it->second);
  }
  if (hours_end < to_ms) add_rollup_totals(sum, store.rollup_totals(probe, hours_end, to_ms));
  return sum;
}

void RollupHourCache::keep_only(const std::set<std::string>& probes, int64_t from_ms) {
  const int64_t first_hour = floor_to(from_ms, kHourMs);
  std::erase_if(probes_, [&](const auto& entry) { return !probes.contains(entry.first); });
  for (auto& [probe, cached] : probes_) {
    cached.hours.erase(cached.hours.begin(), cached.hours.lower_bound(first_hour));
    // What is known starts no earlier than what is kept (an empty range is loaded afresh).
    cached.known_from_ms = std::max(cached.known_from_ms, first_hour);
  }
}

size_t RollupHourCache::cached_hours() const {
  size_t hours = 0;
  for (const auto& [probe, cached] : probes_) hours += cached.hours.size();
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
