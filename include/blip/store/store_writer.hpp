#pragma once
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "blip/store/store.hpp"

namespace blip {

struct StoreWriterOptions {
  // Samples queued beyond this (the disk stalled, the database locked or
  // full) drop the oldest; outages, incidents and blind windows never drop.
  int64_t max_queued_samples = 1'000'000;
  int64_t retain_ms = 14 * 86'400'000LL;  // raw sample blocks, job output, details no block uses
  int64_t retain_rollups_ms = 400 * 86'400'000LL;  // per-minute rollups, blind windows
  // Rows one pruning step removes from each table, in its own short transaction
  // after a write; steps follow write by write until nothing is left to prune.
  int64_t prune_rows_per_step = 1000;
};

// What the daemon prunes at `now_ms` (StoreWriter, and tests that run its pruning).
PruneCutoffs prune_cutoffs(int64_t now_ms, const StoreWriterOptions& options);

// The one thread that touches the database while blip runs. The loop hands it
// samples and rows through a bounded queue and never waits on the disk; the
// writer writes them in one transaction per turn (once a second, and at once
// when a row comes), checkpoints the WAL itself (PASSIVE, never inside a
// commit), prunes old data, retries what failed in order, reopens a database
// file that was removed or replaced, and records what it had to drop as a
// `store_dropped` blind window once it can write again.
class StoreWriter : public RecordSink {
 public:
  // Takes a store the caller has opened and prepared; `probes` are its probe
  // ids with their probe's or job's configuration, copied (to register them
  // again in a new file).
  StoreWriter(std::unique_ptr<Store> store, std::string path,
              const std::vector<std::pair<int64_t, ComponentRef>>& probes,
              StoreWriterOptions options);
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;
  ~StoreWriter() override;

  // The loop's side: each takes a mutex for a push, never more.
  void add_sample(int64_t probe_id, const Sample& sample) override;
  void write_outage(const OutageRow& row) override;
  void write_incident(const IncidentRow& row) override;
  void write_job_run(const JobRunRow& row) override;
  void add_blind_window(const BlindWindow& window);
  // A probe or job added while running (a reload), copied: the id to use for it now;
  // the writer registers it (or finds it by name) in the file before its first samples.
  int64_t add_probe(ComponentRef config);
  // A remote-write sender's acknowledged position: queued as a row (written at once), then
  // waits up to `limit` for the write that stores it; false if none did by then.
  bool save_ship_cursors(std::vector<ShipCursor> cursors, std::chrono::milliseconds limit);
  // An operator's note or notice (the feed's threads): queued as a row, then waits up to
  // `limit` for the write that stores it; false if none did by then (it stays queued).
  bool save_note(IncidentNoteRow note, std::chrono::milliseconds limit);
  bool save_notice(NoticeRow notice, std::chrono::milliseconds limit);
  // An alert's incident record (the loop): queued as a row, written at once. Returns its
  // ticket; `stored_alert_incidents()` is the highest ticket a write has stored so far, and
  // `on_alert_incidents_stored` (set before the first save) runs on the writer thread after
  // each write that stored some: the alerts send a message only once its record is stored.
  uint64_t save_alert_incident(AlertIncidentRow row);
  uint64_t stored_alert_incidents() const;
  void set_on_alert_incidents_stored(std::function<void()> stored);
  // The maintenance tick: write what is queued, with this "alive" mark.
  void flush(int64_t now_ms);
  StoreHealth health() const;
  // Writes everything queued and stops the thread; false if that did not succeed within `limit`.
  bool finish(std::chrono::milliseconds limit);

 private:
  // A probe's or a job's (first) id and configuration, as registered.
  using Registered = std::pair<int64_t, std::variant<ProbeConfig, JobConfig>>;
  static Registered copy(int64_t id, ComponentRef config);
  static int64_t register_in(Store& store, const Registered& registered);
  struct Queue {
    std::deque<std::pair<int64_t, Sample>> samples;
    std::vector<IncidentRow> incidents;
    std::vector<OutageRow> outages;
    std::vector<BlindWindow> blind_windows;
    std::vector<JobRunRow> job_runs;
    std::vector<ShipCursor> ship_cursors;
    std::vector<IncidentNoteRow> notes;
    std::vector<NoticeRow> notices;
    std::vector<AlertIncidentRow> alert_incidents;
    std::vector<Registered> new_probes;  // under a provisional id
    bool rows_empty() const {
      return incidents.empty() && outages.empty() && blind_windows.empty() && job_runs.empty() &&
             ship_cursors.empty() && notes.empty() && notices.empty() && alert_incidents.empty() &&
             new_probes.empty();
    }
  };
  // Queues a row (never dropped) and wakes the thread: rows are written at once.
  template <typename Row>
  void queue_row(std::vector<Row> Queue::*rows, const Row& row);
  // Queues rows and waits up to `limit` for the write that stores them.
  template <typename Row>
  bool queue_and_wait(std::vector<Row> Queue::*rows, std::vector<Row> added,
                      std::chrono::milliseconds limit);
  void run();
  // One write of `batch`; false (and the reason logged) if it failed.
  bool write(WriteBatch& batch);
  void maintain();
  bool reopen_if_replaced();
  void requeue(WriteBatch& batch);  // under mutex_: a failed batch goes back in front
  void drop_oldest_beyond_bound();  // under mutex_
  int64_t map_probe(int64_t original_id) const;

  std::string path_;
  std::vector<Registered> probes_;
  StoreWriterOptions options_;

  // The writer thread's own.
  std::unique_ptr<Store> store_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  std::map<int64_t, int64_t> probe_ids_;           // as first registered -> in the open file
  std::vector<Registered> unregistered_;           // added while running, not yet in the file
  std::map<int64_t, IncidentRow> incidents_seen_;  // rewritten into a new file
  std::map<int64_t, OutageRow> open_outages_;      // likewise
  int writes_ = 0;
  bool prune_more_ = false;  // the last pruning step left more: the next write prunes again
  PruneCounts pruned_;       // this pass so far, logged when it is done
  uint64_t store_damaged_blocks_ = 0;  // what store_ had counted when last looked at
  int64_t failing_since_mono_us_ = 0;
  int64_t last_failure_log_mono_us_ = 0;

  std::mutex stored_callback_mutex_;  // held while the callback runs, and to replace it
  std::function<void()> on_alert_incidents_stored_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable wake_;
  std::condition_variable waited_written_;
  uint64_t waited_saves_ = 0;                 // queue_and_wait() calls so far
  uint64_t waited_saves_stored_ = 0;          // of which a write has stored the rows
  uint64_t alert_incident_saves_ = 0;         // save_alert_incident() calls so far
  uint64_t alert_incident_saves_stored_ = 0;  // of which a write has stored the rows
  Queue queue_;
  int64_t alive_ms_ = 0;
  bool flush_requested_ = false;
  bool writing_ = false;  // a batch with samples or rows is being written
  bool stopping_ = false;
  int64_t finish_by_mono_us_ = 0;  // once stopping: retry a failed write until then
  int64_t queued_bytes_ = 0;
  uint64_t dropped_ = 0;
  int64_t dropped_from_ms_ = 0;  // the span of dropped samples not yet recorded as a blind window
  int64_t dropped_to_ms_ = 0;
  bool dropping_logged_ = false;
  int64_t last_success_mono_us_ = 0;
  int64_t next_provisional_id_ = -1;  // added probes count down: never a database id
  StoreHealth health_;

  std::thread thread_;
};

}  // namespace blip
