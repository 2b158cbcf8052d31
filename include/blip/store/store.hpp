#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"
#include "blip/store/rows.hpp"
#include "blip/store/sample_codec.hpp"

struct sqlite3;

namespace blip {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// What SQLite calls damaged (SQLITE_CORRUPT, SQLITE_NOTADB), or a stored block that does not
// decode.
class StoreCorrupt : public StoreError {
 public:
  using StoreError::StoreError;
};

// A damaged database that `blip run` moved aside at start-up to begin a new one.
struct StoreSetAside {
  std::string
      moved_to;        // the damaged file's new name (its -wal and -shm beside it, likewise named)
  std::string reason;  // what SQLite said, without the path
  int64_t at_ms = 0;   // when it was moved
  int64_t since_ms =
      0;  // the damaged file's last modification: the start of the store_damaged blind window
};

// What one bounded pruning step removes before a cutoff, and whether more is left.
struct PruneCutoffs {
  int64_t samples_before_ms =
      0;  // raw sample blocks, job run output, unreferenced details (--retain)
  int64_t rollups_before_ms = 0;  // per-minute rollups and blind windows (--retain-rollups)
};
struct PruneCounts {
  int64_t sample_blocks = 0;
  int64_t rollups = 0;
  int64_t job_outputs = 0;  // job runs whose output was cleared (the runs stay)
  int64_t details = 0;
  int64_t blind_windows = 0;
  bool more = false;  // a table had more to remove than one step takes
  int64_t total() const { return sample_blocks + rollups + job_outputs + details + blind_windows; }
  PruneCounts& operator+=(const PruneCounts& other);
};

// Everything one write puts into the database, in one transaction.
struct WriteBatch {
  std::vector<std::pair<int64_t, Sample>> samples;  // probe id, sample; each probe's in send order
  std::vector<IncidentRow> incidents;               // before the outages that name them
  std::vector<OutageRow> outages;
  std::vector<BlindWindow> blind_windows;
  std::vector<JobRunRow> job_runs;
  std::vector<ShipCursor> ship_cursors;
  std::vector<IncidentNoteRow> notes;  // an operator's words: inserted, never updated
  std::vector<NoticeRow> notices;
  std::vector<AlertIncidentRow> alert_incidents;  // in the order they changed
  int64_t alive_ms = 0;                           // written as the "last known alive" mark
};

// One percentile of a growing set of values, exact, in O(log n) an insert and
// O(1) a query: the element at sorted position min(n-1, floor(fraction n)).
class RunningPercentile {
 public:
  explicit RunningPercentile(double fraction) : fraction_(fraction) {}
  void add(int64_t value);
  int64_t value() const { return lower_.empty() ? 0 : lower_.top(); }

 private:
  double fraction_;
  std::priority_queue<int64_t> lower_;  // the smallest position+1 values; its top is the answer
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> upper_;
};

// Builds one probe-minute's rollup as its samples arrive: what a write costs
// does not grow through the minute, and the block is never decoded again.
class RollupAccumulator {
 public:
  void add(const Sample& sample);
  Rollup rollup(int64_t minute_ms) const;

 private:
  int64_t count_ = 0;
  int64_t down_ = 0;
  int64_t degraded_ = 0;
  int64_t first_ms_ = INT64_MAX;
  // Over answered samples only: a timeout is not a latency.
  RunningPercentile p50_{0.5};
  RunningPercentile p95_{0.95};
  int64_t max_us_ = 0;
  bool any_latency_ = false;
};

// What SQLite holds on the heap, over every connection of this process.
struct SqliteMemory {
  int64_t used_bytes = 0;        // everything SQLite has allocated
  int64_t page_cache_bytes = 0;  // of which cached database pages
};
SqliteMemory sqlite_memory();

// blip's SQLite database. Samples are packed per probe and minute: each write
// appends only its new samples as a part of the minute's block, and the
// minute's parts are merged into one row when it closes, so a write costs the
// same early and late in a minute. Outages, incidents and blind windows are
// rows. One process writes a database at a time (a lock file beside it).
class Store : public RecordSink {
 public:
  enum class Mode { read_write, read_only };
  // What read_write does with a database SQLite calls damaged: refuse it (StoreError), or
  // (`blip run`) move it aside with its -wal and -shm and start a new one. A database in
  // use by another blip, written by a newer one, or unreadable is refused either way.
  enum class Damaged { refuse, set_aside };
  static constexpr int kSchemaVersion = 12;
  // Each connection's page cache fills as the database grows, up to this; the
  // heap blip's connections (the writer, the feed's reader) take is bounded by it.
  static constexpr int kPageCacheKiB = 2048;

  // Throws StoreError naming the file when it cannot be opened or migrated,
  // or (read_write) when another process writes it.
  Store(const std::string& path, Mode mode, Damaged damaged = Damaged::refuse);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store() override;

  // Writing (the daemon through StoreWriter; the history generator and tests directly).
  // A probe, or a job (a row of `probes` of kJobType, and its settings for the report): the id of
  // the row.
  int64_t register_probe(const ProbeConfig& probe);
  int64_t register_probe(const JobConfig& job);
  // Buffers a sample for flush().
  void add_sample(int64_t probe_id, const Sample& sample) override;
  void write_outage(const OutageRow& row) override;
  void write_incident(const IncidentRow& row) override;
  void write_job_run(const JobRunRow& row) override;
  // One transaction; on failure nothing of it is stored and StoreError is thrown.
  void write(const WriteBatch& batch);
  // The highest outage and incident ids so far (the recorder numbers on from them).
  int64_t max_outage_id() const;
  int64_t max_incident_id() const;
  int64_t max_job_run_id() const;
  // SQLite checkpoints the WAL inside commits unless told not to; the writer thread checkpoints
  // itself.
  void set_auto_checkpoint(bool on);
  void checkpoint();  // PASSIVE: copies what no reader needs, never waits for one
  // Ends every outage, brownout and incident still open (blip is stopping, or
  // a previous run stopped with some open).
  void close_open_outages(int64_t end_ms, const std::string& end_reason);
  void add_blind_window(const BlindWindow& window);
  // Writes every buffered sample and the "alive until" mark in one transaction.
  void flush(int64_t now_ms);
  int64_t prune_samples_before(int64_t cutoff_ms);
  int64_t prune_rollups_before(int64_t cutoff_ms);
  // One step of retention, in one short transaction: at most `max_rows` rows of each
  // table (a tenth of that of job runs' output, each up to 10 KiB).
  PruneCounts prune_step(const PruneCutoffs& cutoffs, int64_t max_rows);
  // Set when this Store found its file damaged at opening and moved it aside (Damaged::set_aside).
  const std::optional<StoreSetAside>& set_aside() const { return set_aside_; }
  // Sample blocks found damaged while writing, and replaced (or, failing that, skipped).
  uint64_t damaged_blocks() const { return damaged_blocks_; }
  // Samples that could not be written at all because their block's pages were damaged.
  uint64_t damaged_dropped_samples() const { return damaged_dropped_samples_; }
  // When the previous run was last known alive (none for a new database).
  std::optional<int64_t> last_alive_ms() const;
  // Samples added and not yet flushed.
  int64_t pending_samples() const;

  // One snapshot over several reads (the remote-write sender's round): the reads inside it
  // neither take nor drop a snapshot of their own each, and all see the same commits. Only
  // around reads; one at a time per Store.
  class ReadTransaction {
   public:
    explicit ReadTransaction(const Store& store);
    ~ReadTransaction();
    ReadTransaction(const ReadTransaction&) = delete;
    ReadTransaction& operator=(const ReadTransaction&) = delete;

   private:
    const Store& store_;
  };

  // Reading (reports and tests). The reads a sender or a feed repeats keep their prepared
  // statements: a Store is used by one thread at a time.
  std::vector<std::string> probe_names() const;
  std::vector<OutageRecord> outages(int64_t from_ms, int64_t to_ms, const std::string& probe = "",
                                    OutageKind kind = OutageKind::outage) const;
  std::vector<Rollup> rollups(const std::string& probe, int64_t from_ms, int64_t to_ms) const;
  // Whole hours of the range from hour_totals, only the minutes at its edges from the rollups.
  RollupTotals rollup_totals(const std::string& probe, int64_t from_ms, int64_t to_ms) const;
  // The same totals per hour with samples, from hour_totals, for the hours starting in
  // [from_ms, to_ms): what rollup_totals_by(probe, from_ms, to_ms, one hour) answers when
  // both are whole hours, in a row an hour instead of sixty.
  std::vector<RollupTotals> hour_totals(const std::string& probe, int64_t from_ms,
                                        int64_t to_ms) const;
  // The same totals per bucket of `bucket_ms` (a multiple of a minute), only for buckets with
  // samples.
  std::vector<RollupTotals> rollup_totals_by(const std::string& probe, int64_t from_ms,
                                             int64_t to_ms, int64_t bucket_ms) const;
  // Outages (not brownouts) per probe id, over the whole history.
  std::map<int64_t, OutageTotals> outage_totals() const;
  // Blind time per reason over the whole history, in ms.
  std::map<std::string, int64_t> blind_ms_by_reason() const;
  // The outages of the `limit` most recent incidents, by start.
  std::vector<OutageRecord> recent_incident_outages(int64_t limit) const;
  std::vector<BlindWindow> blind_windows(int64_t from_ms, int64_t to_ms) const;
  // Sent in [from_ms, to_ms); without details, a down sample's text is left empty (cheaper).
  std::vector<Sample> samples(const std::string& probe, int64_t from_ms, int64_t to_ms,
                              bool with_details = true) const;
  // The first minute from `from_ms`'s on with a block of `probe`'s samples (INT64_MIN: any).
  std::optional<int64_t> first_sample_minute(const std::string& probe, int64_t from_ms) const;
  // Samples stored in the first `minutes` minutes with any from `from_ms`'s minute on.
  int64_t samples_stored_from(const std::string& probe, int64_t from_ms, int64_t minutes) const;
  // This database's vantage point (`blip run --vantage`); empty when never set.
  void set_vantage(const std::string& name);
  std::string vantage() const;
  // Every probe and job registered, by name.
  std::vector<StoredComponent> components() const;
  // How far a remote-write endpoint has acknowledged: probe name ('' blind windows) -> ms.
  std::map<std::string, int64_t> ship_cursors(const std::string& endpoint) const;
  // Every job the store knows, with its settings as last registered (the token left out).
  std::vector<std::pair<std::string, JobSettings>> jobs() const;
  // A job's runs that started (or, without a start, ended) in [from_ms, to_ms), newest first, at
  // most `limit`.
  std::vector<JobRunRecord> job_runs(const std::string& job, int64_t from_ms, int64_t to_ms,
                                     int64_t limit) const;
  bool incident_exists(int64_t incident_id) const;
  // The operator's notes on these incidents: incident by incident, each's oldest first.
  std::vector<IncidentNoteRow> incident_notes(const std::vector<int64_t>& incident_ids) const;
  // The latest note on an incident (the alerts' next message quotes it), if any.
  std::optional<IncidentNoteRow> latest_incident_note(int64_t incident_id) const;
  // The notices shown at `now_ms` (no end, or one after it), oldest first.
  std::vector<NoticeRow> notices_shown_at(int64_t now_ms) const;
  // What the alerts left to tell when blip last stopped (read at start-up), by alert and id.
  std::vector<AlertIncidentRow> alert_incidents() const;

 private:
  int64_t register_component(const ComponentConfig& component);
  struct ProbeBuffer {
    std::vector<Sample> pending;              // add_sample()'s, until flush()
    std::optional<SampleBlockEncoder> block;  // every sample of the open minute
    RollupAccumulator minute;                 // of the samples in `block`
    std::vector<int64_t> part_rows;           // the open minute's rows, merged when it closes
    std::vector<int64_t> replace_minutes;     // minutes whose stored rows are damaged: begun anew
  };
  struct CachedDetail {
    int64_t id = 0;
    int64_t touched_ms = 0;  // the last_used_ms written for it
  };
  class Statement;
  class ResetAfterRead;

  void exec(const char* sql) const;
  // Opens the connection, sets it up and migrates; with `check_damage`, first finds
  // whether SQLite calls the file damaged (StoreCorrupt) and leaves it as it was if so.
  void open_connection(Mode mode, bool check_damage);
  void close_connection() noexcept;
  StoreSetAside move_aside(const std::string& reason);
  std::vector<OutageRecord> read_outages(Statement& select) const;
  void rollback() noexcept;
  void forget_details() noexcept;  // after a rollback or a prune: ids may no longer exist
  void migrate();
  int64_t detail_id(const std::string& text, int64_t block_minute_ms);
  void write_rollup(int64_t probe_id, const ProbeBuffer& buffer);
  // Sets a probe's hour_totals row of the hour starting at `hour_ms` to what its rollups add
  // up to (none: no row), in the caller's transaction.
  void recount_hour(int64_t probe_id, int64_t hour_ms);
  // Replaces the minute's parts by one row of all its samples.
  void close_minute(int64_t probe_id, ProbeBuffer& buffer);
  void insert_block(int64_t probe_id, const SampleBlockEncoder& block);  // one sample_blocks row
  // Starts the buffer's block for a minute, continuing what a previous run stored of it
  // (not for a minute in replace_minutes: what was stored of it is damaged and gone).
  void begin_block(int64_t probe_id, int64_t minute_ms, ProbeBuffer& buffer);
  // One transaction of the batch, without the samples of `skipped` probes. With
  // `find_damage`, damage met in a probe's samples throws DamagedSamples naming them.
  void write_once(const WriteBatch& batch, bool find_damage, const std::set<int64_t>& skipped);
  // One probe's samples; `working_minute_ms` tells, on a throw, which minute it was at.
  void write_probe_samples(int64_t probe_id, const std::vector<const Sample*>& samples,
                           int64_t& working_minute_ms);
  // What a write learns from damage in one probe's samples (outside any transaction, so
  // SQLite's corruption errors bar no later write): the minute's rows are removed and the
  // minute begun anew or, if that was done already, the probe skipped. False: nothing new.
  bool learn_from_damage(int64_t probe_id, int64_t minute_ms, const std::string& error,
                         std::set<int64_t>& skipped);
  void upsert_outage(const OutageRow& row);
  void upsert_incident(const IncidentRow& row);
  void upsert_job_run(const JobRunRow& row);
  void upsert_ship_cursor(const ShipCursor& cursor);
  void insert_note(const IncidentNoteRow& row);
  void insert_notice(const NoticeRow& row);
  void save_alert_incident(const AlertIncidentRow& row);

  // A prepared statement kept for the writes a second makes thousands of, and for the reads
  // repeated per probe (a read resets it when done: see ResetAfterRead). Found by the
  // address of its text: a literal, or a string that lives as long as the program.
  Statement& prepared(const char* sql) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
  mutable std::unordered_map<const char*, std::unique_ptr<Statement>> prepared_;
  std::map<int64_t, ProbeBuffer> buffers_;
  std::unordered_map<std::string, CachedDetail> detail_ids_;
  int64_t detail_count_ = -1;  // rows in details, once counted
  std::optional<StoreSetAside> set_aside_;
  uint64_t damaged_blocks_ = 0;
  uint64_t damaged_dropped_samples_ = 0;
  std::set<std::pair<int64_t, int64_t>>
      damage_reported_;  // (probe id, minute): counted and logged once
  std::set<int64_t>
      undeletable_rows_;  // damaged sample_blocks rows SQLite cannot delete: never read again
};

}  // namespace blip
