#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blip/analysis/maintenance.hpp"
#include "blip/analysis/outage_tracker.hpp"
#include "blip/config/config.hpp"
#include "blip/core/metric_histogram.hpp"
#include "blip/core/sample.hpp"
#include "blip/remote/remote_write_stats.hpp"
#include "blip/store/rows.hpp"

namespace blip {

// The phases /metrics reports, named as blackbox_exporter names them.
inline constexpr std::array<std::string_view, 6> kMetricPhases{"resolve",    "connect",  "tls",
                                                               "processing", "transfer", "total"};

// What the loop knows about one job right now (JobMonitor), for the feed and metrics.
struct JobLiveState {
  std::string state;   // up, running, late, overrunning, failed
  int64_t due_ms = 0;  // a start later than this is late (0: none expected, or running)
  std::optional<int64_t> running_since_ms;
  std::optional<JobRunRow> last_run;  // the last that ended
};

// A probe's state as its outages and brownouts confirm it (one failed sample opens
// nothing): what the page, the documents and /metrics show. The numbers are
// blip_probe_state's.
enum class ConfirmedState { up = 0, degraded = 1, down = 2 };
std::string_view to_string(ConfirmedState state);

// What the loop knows about one probe right now.
struct ProbeLiveState {
  std::optional<Sample> last_sample;
  int64_t state_changed_ms = 0;  // when it last went down, degraded or back (0: not yet)
  std::optional<OutageTransition> open_outage;  // as it opened
  int64_t open_outage_incident = 0;             // its incident, as stored
  std::optional<int64_t> open_brownout_start_ms;
  std::array<uint64_t, 4> samples_by_status{};  // up, degraded, down, blind since blip started
  int64_t outages_total = 0;                    // ever, as the store knows them
  int64_t closed_outage_ms = 0;                 // the durations of every closed outage, ever
  std::optional<int64_t> cert_expiry_ms;        // the last known peer certificate expiry (Unix ms)
  std::array<MetricHistogram, kMetricPhases.size()> durations{
      MetricHistogram(kLatencyBuckets), MetricHistogram(kLatencyBuckets),
      MetricHistogram(kLatencyBuckets), MetricHistogram(kLatencyBuckets),
      MetricHistogram(kLatencyBuckets), MetricHistogram(kLatencyBuckets)};

  std::optional<JobLiveState> job;  // jobs only: filled in where the snapshot is taken
  bool in_maintenance = false;      // a maintenance window covers it now

  void observe(const Sample& sample);
  ConfirmedState confirmed() const;
};

// Alerts sent, failed, … by kind, for /metrics.
struct AlertCountRow {
  std::string kind;
  std::string result;
  uint64_t count = 0;
};

// An immutable picture of the daemon, published by the loop at least once a
// second and on every transition; the feed's threads only ever read it.
struct LiveSnapshot {
  uint64_t sequence = 0;     // grows with every snapshot
  uint64_t transitions = 0;  // outage and brownout openings and closings since blip started
  int64_t taken_wall_ms = 0;
  int64_t taken_mono_us = 0;
  int64_t started_wall_ms = 0;
  // The running probes and jobs (a reload changes them) and their states, in that order.
  std::shared_ptr<const std::vector<ComponentConfig>> configs;
  std::vector<ProbeLiveState> probes;
  int64_t loop_lag_us = 0;  // of the last LoopWatch tick
  MetricHistogram loop_lag;
  std::map<std::string, double> blind_seconds;  // by reason, ever, as the store knows them
  StoreHealth store;                            // the writer thread's queue and last write
  std::vector<MaintenanceWindow> maintenance;   // active now or starting within 7 days
  std::vector<AlertCountRow> alert_counts;
  std::vector<std::pair<std::string, uint64_t>> heartbeat_counts;  // beats by result
  std::string vantage;                                             // `blip run --vantage`
  std::vector<RemoteWriteStats> remote_writes;  // one per [[remote_write]] endpoint
};

// Hands snapshots from the loop to the feed: the loop swaps a pointer and
// never waits for a reader longer than that.
class SnapshotBoard {
 public:
  void publish(std::shared_ptr<const LiveSnapshot> snapshot) {
    std::lock_guard lock(mutex_);
    current_ = std::move(snapshot);
  }
  std::shared_ptr<const LiveSnapshot> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const LiveSnapshot> current_;
};

}  // namespace blip
