#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blip/core/metric_histogram.hpp"
#include "blip/core/sample.hpp"

// What the store takes and gives back, as plain data: the recorder, the job
// monitor, the feed and the report use these without SQLite.
namespace blip {

// Outages are runs of down samples; brownouts are runs of degraded ones.
enum class OutageKind { outage, brownout };
inline std::string_view to_string(OutageKind kind) {
  return kind == OutageKind::outage ? "outage" : "brownout";
}

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
  std::string end_reason;       // "recovered", "shutdown", "blip_stopped"
  bool in_maintenance = false;  // began inside a maintenance window of its probe
};

// One outage or brownout as the recorder knows it, written as an upsert: writing
// it again when it closes, or into a database recreated meanwhile, is safe.
struct OutageRow {
  int64_t id = 0;  // assigned by the recorder
  int64_t probe_id = 0;
  OutageKind kind = OutageKind::outage;
  std::optional<int64_t> incident_id;  // outages only
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
  ErrorClass error = ErrorClass::none;
  std::string detail;
  int64_t down_samples = 0;
  std::string end_reason;
  bool in_maintenance = false;
};
struct IncidentRow {
  int64_t id = 0;
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;
};

// An operator's words on an incident (`blip incident note`), shown as one of its
// Statuspage incident_updates on both faces. Stored once, never changed.
struct IncidentNoteRow {
  int64_t id = 0;  // assigned by the database
  int64_t incident_id = 0;
  std::string status;  // "identified", "monitoring" or "resolved"
  std::string text;
  int64_t at_ms = 0;
};
// An operator's notice (`blip notice`): an incident of its own on both faces until `until_ms`.
struct NoticeRow {
  int64_t id = 0;  // assigned by the database
  std::string text;
  std::vector<std::string> components;  // probe and job names; empty: none in particular
  std::optional<int64_t> until_ms;      // none: shown until removed from the database
  int64_t at_ms = 0;
};

// What an `[[alert]]` told of one of its incidents (`group = "incident"`), kept while the
// incident has something left to tell, so a restart neither repeats an opened message nor
// forgets a resolved one. Written whole each time it changes (an upsert; `done` deletes it).
struct AlertIncidentMemberRow {
  std::string probe;
  std::string probe_type;
  ErrorClass error = ErrorClass::none;
  std::string detail;
  int64_t down_ms = 0;
  int64_t up_ms = 0;  // 0: down when last written
  bool told = false;  // named by a message already sent
};
struct AlertIncidentRow {
  std::string alert;         // the [[alert]]'s name
  int64_t incident_id = 0;   // the store's incident its first outage belonged to
  std::string last_message;  // "opened", "grew" or "resolved": the last one decided
  bool pending = false;      // that message was not yet settled by its endpoint (send it again)
  std::vector<AlertIncidentMemberRow> members;  // the root first, then as they went down
  int64_t updated_ms = 0;
  bool done = false;  // nothing left to tell: the row is deleted
};

// One run of a job, as its pings told it; written as an upsert (at the start, again at the end).
struct JobRunRow {
  int64_t id = 0;  // assigned by the job monitor
  int64_t probe_id = 0;
  std::string rid;                  // the job's own run id (`?rid=`), empty when it sent none
  std::optional<int64_t> start_ms;  // none when only the end was reported
  std::optional<int64_t> end_ms;    // none while running (or never reported)
  std::optional<int> exit_status;   // none for a plain /fail or while running
  bool failed = false;
  std::string output;  // the end ping's body: the last lines of the job's output, cleaned
};
struct JobRunRecord : JobRunRow {
  std::string job;  // the job's name
};

// A probe or job as the store registered it: what reading its samples back needs.
struct StoredComponent {
  std::string name;
  std::string type;  // a probe type, or "job"
  int64_t interval_ms = 0;
  int confirm = 1;
};

// How far one remote-write endpoint has acknowledged one probe's samples (probe '': blip's
// blind windows, by start).
struct ShipCursor {
  std::string endpoint;
  std::string probe;
  int64_t sent_ms = 0;
};

// What SampleRecorder writes through: the Store itself (synchronously: the
// history generator, tests) or the StoreWriter (its own thread: `blip run`).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void add_sample(int64_t probe_id, const Sample& sample) = 0;
  virtual void write_outage(const OutageRow& row) = 0;
  virtual void write_incident(const IncidentRow& row) = 0;
  virtual void write_job_run(const JobRunRow& row) = 0;
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
  int64_t first_ms =
      0;  // send time of its first sample: a probe's first minute is only partly watched
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
// Adds b's totals to a's.
void add_rollup_totals(RollupTotals& a, const RollupTotals& b);
// What the store knows of one probe's outages, for counters that survive a restart.
struct OutageTotals {
  int64_t count = 0;
  int64_t closed_ms = 0;  // the summed durations of the closed ones
};

// What the writer reports to the loop, for /healthz and /metrics.
struct StoreHealth {
  bool last_write_ok = true;
  std::string last_error;
  int64_t queued_samples = 0;
  int64_t queued_bytes = 0;  // about: the samples and their details
  int64_t queued_rows = 0;   // outages, incidents, blind windows
  uint64_t dropped_samples = 0;
  // How long what is queued now has waited since the last write that succeeded (0: nothing waits).
  int64_t unwritten_for_ms = 0;
  MetricHistogram write_seconds{kLatencyBuckets};
  // At start-up the database was damaged and set aside (0: it was not); why, in SQLite's words.
  int64_t set_aside_at_ms = 0;
  std::string set_aside_reason;
  uint64_t damaged_blocks = 0;  // sample blocks found damaged while writing, begun anew
};

}  // namespace blip
