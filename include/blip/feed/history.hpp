#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blip/report/report.hpp"
#include "blip/store/store.hpp"

namespace blip {

// Per-probe rollup totals over any range, answered from cached whole hours
// plus the store for the partial hours at its edges. Past hours never change,
// so a status feed asked every second for 24h, 7d, 30d and 90 days reads a
// few hundred rollup rows per probe instead of 130,000.
class RollupHourCache {
 public:
  // Hours ending less than this before now may still receive samples.
  static constexpr int64_t kSettleMs = 120'000;

  RollupTotals totals(const Store& store, const std::string& probe, int64_t from_ms, int64_t to_ms,
                      int64_t now_ms);
  // Drops the hours before `from_ms` and every probe not in `probes`: the cache holds only
  // what the feed still shows (kFeedDays, the running probes), however long blip runs.
  void keep_only(const std::set<std::string>& probes, int64_t from_ms);
  size_t cached_hours() const;  // with samples
  size_t cached_probes() const { return probes_.size(); }

  // One hour's totals, its times as offsets into the hour: 20 bytes in a deque, where a
  // std::map node of RollupTotals took 112 (1,000 probes' 90 days: 43 MB against 242 MB).
  struct Hour {
    uint32_t samples = 0;  // at most 72,000: an hour at the 50 ms floor
    uint32_t down = 0;
    uint32_t degraded = 0;
    // The first sample's send time from the hour's start: before it when the wall clock
    // stepped back (a sample stays in the block it was sent into).
    int32_t first_sample_offset_ms = 0;
    uint8_t minutes = 0;  // with samples; 0: none this hour
    uint8_t first_minute = 0;
    uint8_t last_minute = 0;
  };
  static_assert(sizeof(Hour) == 20);

 private:
  struct ProbeHours {
    int64_t known_from_ms = 0;  // hours in [known_from_ms, known_to_ms) are cached
    int64_t known_to_ms = 0;
    // One per hour from slots_from_ms, from the first hour with samples to the last; a known
    // hour outside them has none (a new probe holds nothing for the feed's 90 days).
    int64_t slots_from_ms = 0;
    std::deque<Hour> hours;
  };
  void cover(const Store& store, const std::string& probe, ProbeHours& cached, int64_t from_ms,
             int64_t to_ms);

  std::map<std::string, ProbeHours> probes_;
};

// One probe's last 90 days, one state a day (UTC), worst first.
struct DayStrip {
  enum class State : char { no_data = '-', operational = 'o', degraded = 'd', outage = 'x' };
  std::vector<State> states;     // oldest first
  std::vector<int64_t> down_ms;  // outage time in each day
};

// What the feed shows of the past, read from the store through its own
// read-only connection.
struct FeedHistory {
  int64_t built_wall_ms = 0;
  uint64_t transitions = 0;  // of the snapshot it was built for
  Report month;              // the last 30 days: outages, incidents, the pattern
  std::map<std::string, ProbeSummary> day, week;  // the last 24 h and 7 days, by probe
  std::vector<Incident> recent_incidents;         // the 50 most recent, newest first
  std::map<int64_t, std::vector<IncidentNoteRow>>
      notes;                       // the operator's, by incident, oldest first
  std::vector<NoticeRow> notices;  // the operator's, shown now, oldest first
  int64_t days_from_ms = 0;        // midnight UTC that starts every DayStrip
  std::map<std::string, DayStrip> days;
  std::map<std::string, int64_t> first_seen_ms;  // each probe's first sample in the last 90 days
};

inline constexpr int kFeedDays = 90;
inline constexpr int64_t kRecentIncidents = 50;

// Builds FeedHistory on the feed's threads, at most once per snapshot and
// per second, and shares it until then.
class FeedHistoryReader {
 public:
  explicit FeedHistoryReader(std::string db_path) : db_path_(std::move(db_path)) {}
  // Throws StoreError when the database cannot be read. With `shown`, only those probes'
  // uptime, day strips and first samples are built (the running ones: not a removed probe's).
  std::shared_ptr<const FeedHistory> current(
      int64_t now_ms, uint64_t transitions,
      const std::optional<std::set<std::string>>& shown = std::nullopt);
  size_t cached_hours() const;
  size_t cached_probes() const;
  // How many pattern searches the builds ran: a rebuild within the same minute over an unchanged
  // history runs none (its results come from `patterns_`).
  int64_t pattern_searches() const;

 private:
  std::shared_ptr<const FeedHistory> build(int64_t now_ms, uint64_t transitions);

  std::string db_path_;
  mutable std::mutex mutex_;
  std::optional<Store>
      store_;  // opened on first use: `blip run` has created and migrated it by then
  RollupHourCache hours_;
  PatternMemo patterns_;
  std::optional<std::set<std::string>> shown_;
  std::shared_ptr<const FeedHistory> current_;
};

}  // namespace blip
