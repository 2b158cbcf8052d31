#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/analysis/outage_tracker.hpp"
#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"
#include "blip/store/sample_codec.hpp"

namespace blip {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Outages are runs of down samples; brownouts are runs of degraded ones.
enum class OutageKind { outage, brownout };
std::string_view to_string(OutageKind kind);

struct OutageRecord {
  int64_t id = 0;
  OutageKind kind = OutageKind::outage;
  std::optional<int64_t> incident_id;  // outages only
  std::string probe;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;  // none while still open
  ErrorClass error = ErrorClass::none;
  std::string detail;
  int64_t down_samples = 0;
  std::string end_reason;  // "recovered", "shutdown", "blip_stopped"
};

// One probe's samples of one minute, summarized; kept far longer than raw samples.
struct Rollup {
  int64_t minute_ms = 0;
  int64_t count = 0;
  int64_t down = 0;
  int64_t degraded = 0;
  int64_t p50_us = 0;  // latency percentiles of the answered samples
  int64_t p95_us = 0;
  int64_t max_us = 0;
  int64_t first_ms = 0;  // send time of its first sample: a probe's first minute is only partly watched
};
// One probe's rollups over a range, added up in SQL.
struct RollupTotals {
  int64_t minutes = 0;  // minutes with at least one sample
  int64_t first_minute_ms = 0;
  int64_t last_minute_ms = 0;
  int64_t samples = 0;
  int64_t down = 0;
  int64_t degraded = 0;
  int64_t first_sample_ms = 0;  // the send time of the first sample
};
// What the store knows of one probe's outages, for counters that survive a restart.
struct OutageTotals {
  int64_t count = 0;
  int64_t closed_ms = 0;  // the summed durations of the closed ones
};

// Builds one probe-minute's rollup as its samples arrive, so the flush never
// has to decode the minute's block again to summarize it.
class RollupAccumulator {
 public:
  void add(const Sample& sample);
  Rollup rollup(int64_t minute_ms) const;

 private:
  int64_t count_ = 0;
  int64_t down_ = 0;
  int64_t degraded_ = 0;
  int64_t first_ms_ = INT64_MAX;
  std::vector<int64_t> latencies_;  // answered samples only: a timeout is not a latency
};

// blip's SQLite database. Samples are buffered and written by flush() in one
// transaction, packed per probe and minute; outages and blind windows are
// written as they happen.
class Store {
 public:
  enum class Mode { read_write, read_only };
  static constexpr int kSchemaVersion = 4;

  // Throws StoreError naming the file when it cannot be opened or migrated.
  Store(const std::string& path, Mode mode);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // Writing (the daemon).
  int64_t register_probe(const ProbeConfig& probe);
  void add_sample(int64_t probe_id, const Sample& sample);
  int64_t open_outage(int64_t probe_id, const OutageTransition& opened, OutageKind kind = OutageKind::outage,
                      std::optional<int64_t> incident_id = std::nullopt);
  int64_t open_incident(int64_t start_ms);
  void update_incident(int64_t incident_id, int64_t start_ms, std::optional<int64_t> end_ms);
  void close_outage(int64_t outage_id, int64_t end_ms, int64_t down_samples, const std::string& end_reason);
  // Ends every outage, brownout and incident still open (blip is stopping, or
  // a previous run stopped with some open).
  void close_open_outages(int64_t end_ms, const std::string& end_reason);
  void add_blind_window(const BlindWindow& window);
  // Writes every buffered sample and the "alive until" mark in one transaction.
  void flush(int64_t now_ms);
  int64_t prune_samples_before(int64_t cutoff_ms);
  int64_t prune_rollups_before(int64_t cutoff_ms);
  // When the previous run was last known alive (none for a new database).
  std::optional<int64_t> last_alive_ms() const;
  // Samples added and not yet flushed.
  int64_t pending_samples() const;

  // Reading (reports and tests).
  std::vector<std::string> probe_names() const;
  std::vector<OutageRecord> outages(int64_t from_ms, int64_t to_ms, const std::string& probe = "",
                                    OutageKind kind = OutageKind::outage) const;
  std::vector<Rollup> rollups(const std::string& probe, int64_t from_ms, int64_t to_ms) const;
  RollupTotals rollup_totals(const std::string& probe, int64_t from_ms, int64_t to_ms) const;
  // The same totals per bucket of `bucket_ms` (a multiple of a minute), only for buckets with samples.
  std::vector<RollupTotals> rollup_totals_by(const std::string& probe, int64_t from_ms, int64_t to_ms,
                                             int64_t bucket_ms) const;
  // Outages (not brownouts) per probe id, over the whole history.
  std::map<int64_t, OutageTotals> outage_totals() const;
  // Blind time per reason over the whole history, in ms.
  std::map<std::string, int64_t> blind_ms_by_reason() const;
  // The outages of the `limit` most recent incidents, by start.
  std::vector<OutageRecord> recent_incident_outages(int64_t limit) const;
  std::vector<BlindWindow> blind_windows(int64_t from_ms, int64_t to_ms) const;
  std::vector<Sample> samples(const std::string& probe, int64_t from_ms, int64_t to_ms) const;

 private:
  struct ProbeBuffer {
    std::vector<Sample> pending;
    std::optional<SampleBlockEncoder> block;
    RollupAccumulator minute;  // of the samples in `block`
  };
  class Statement;

  void exec(const char* sql) const;
  std::vector<OutageRecord> read_outages(Statement& select) const;
  void rollback() noexcept;
  void migrate();
  int64_t detail_id(const std::string& text);
  void write_block(int64_t probe_id, const ProbeBuffer& buffer);
  // Starts the buffer's block for a minute, continuing one a previous run stored.
  void begin_block(int64_t probe_id, int64_t minute_ms, ProbeBuffer& buffer);

  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<int64_t, ProbeBuffer> buffers_;
  std::unordered_map<std::string, int64_t> detail_ids_;
};

}  // namespace blip
