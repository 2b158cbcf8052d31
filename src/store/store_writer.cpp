#include "blip/store/store_writer.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"

namespace blip {
namespace {

constexpr int64_t kRetryEveryUs = 1'000'000;
constexpr int kCheckpointEveryWrites = 10;
constexpr int kPruneEveryWrites = 60;
constexpr int64_t kFailureLogEveryUs = 60'000'000;
constexpr int kWriterNice = 10;

int64_t queued_size(const Sample& sample) {
  return static_cast<int64_t>(sizeof(std::pair<int64_t, Sample>) + sample.detail.capacity());
}

bool file_identity(const std::string& path, dev_t& device, ino_t& inode) {
  struct stat status {};
  if (stat(path.c_str(), &status) != 0) return false;
  device = status.st_dev;
  inode = status.st_ino;
  return true;
}

// SQLite says "disk I/O error" for a file made read-only under it; the system says why.
std::string unwritable_reason(const std::string& path) {
  const std::string directory = std::filesystem::path(path).parent_path().string();
  for (const std::string& file :
       {path, path + "-wal", directory.empty() ? std::string(".") : directory}) {
    if (access(file.c_str(), W_OK) != 0 && errno != ENOENT) {
      return fmt::format(" ({} is not writable: {})", file, std::strerror(errno));
    }
  }
  return "";
}

}  // namespace

StoreWriter::Registered StoreWriter::copy(int64_t id, ComponentRef config) {
  return {id, config.visit([](const auto& probe_or_job) {
            return std::variant<ProbeConfig, JobConfig>(probe_or_job);
          })};
}

int64_t StoreWriter::register_in(Store& store, const Registered& registered) {
  return std::visit([&](const auto& probe_or_job) { return store.register_probe(probe_or_job); },
                    registered.second);
}

StoreWriter::StoreWriter(std::unique_ptr<Store> store, std::string path,
                         const std::vector<std::pair<int64_t, ComponentRef>>& probes,
                         StoreWriterOptions options)
    : path_(std::move(path)), options_(options), store_(std::move(store)) {
  store_->set_auto_checkpoint(false);
  file_identity(path_, device_, inode_);
  for (const auto& [id, config] : probes) {
    probes_.push_back(copy(id, config));
    probe_ids_[id] = id;
  }
  if (const auto& aside = store_->set_aside()) {
    health_.set_aside_at_ms = aside->at_ms;
    health_.set_aside_reason = aside->reason;
  }
  last_success_mono_us_ = mono_now_us();
  thread_ = std::thread([this] { run(); });
}

StoreWriter::~StoreWriter() { finish(std::chrono::milliseconds(0)); }

void StoreWriter::add_sample(int64_t probe_id, const Sample& sample) {
  std::lock_guard lock(mutex_);
  queue_.samples.emplace_back(probe_id, sample);
  queued_bytes_ += queued_size(sample);
  if (static_cast<int64_t>(queue_.samples.size()) > options_.max_queued_samples)
    drop_oldest_beyond_bound();
}

int64_t StoreWriter::add_probe(ComponentRef config) {
  int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_provisional_id_--;
    queue_.new_probes.push_back(copy(id, config));
  }
  wake_.notify_one();
  return id;
}

template <typename Row>
void StoreWriter::queue_row(std::vector<Row> Queue::*rows, const Row& row) {
  {
    std::lock_guard lock(mutex_);
    (queue_.*rows).push_back(row);
  }
  wake_.notify_one();
}

void StoreWriter::write_outage(const OutageRow& row) { queue_row(&Queue::outages, row); }
void StoreWriter::write_job_run(const JobRunRow& row) { queue_row(&Queue::job_runs, row); }
void StoreWriter::write_incident(const IncidentRow& row) { queue_row(&Queue::incidents, row); }
void StoreWriter::add_blind_window(const BlindWindow& window) {
  queue_row(&Queue::blind_windows, window);
}

template <typename Row>
bool StoreWriter::queue_and_wait(std::vector<Row> Queue::*rows, std::vector<Row> added,
                                 std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  std::move(added.begin(), added.end(), std::back_inserter(queue_.*rows));
  const uint64_t save = ++waited_saves_;
  wake_.notify_one();
  return waited_written_.wait_for(lock, limit, [&] { return waited_saves_stored_ >= save; });
}

bool StoreWriter::save_ship_cursors(std::vector<ShipCursor> cursors,
                                    std::chrono::milliseconds limit) {
  return queue_and_wait(&Queue::ship_cursors, std::move(cursors), limit);
}

bool StoreWriter::save_note(IncidentNoteRow note, std::chrono::milliseconds limit) {
  return queue_and_wait(&Queue::notes, {std::move(note)}, limit);
}

bool StoreWriter::save_notice(NoticeRow notice, std::chrono::milliseconds limit) {
  return queue_and_wait(&Queue::notices, {std::move(notice)}, limit);
}

uint64_t StoreWriter::save_alert_incident(AlertIncidentRow row) {
  uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    queue_.alert_incidents.push_back(std::move(row));
    ticket = ++alert_incident_saves_;
  }
  wake_.notify_one();
  return ticket;
}

uint64_t StoreWriter::stored_alert_incidents() const {
  std::lock_guard lock(mutex_);
  return alert_incident_saves_stored_;
}

void StoreWriter::set_on_alert_incidents_stored(std::function<void()> stored) {
  std::lock_guard lock(stored_callback_mutex_);  // waits for a call under way
  on_alert_incidents_stored_ = std::move(stored);
}

void StoreWriter::flush(int64_t now_ms) {
  {
    std::lock_guard lock(mutex_);
    alive_ms_ = now_ms;
    flush_requested_ = true;
  }
  wake_.notify_one();
}

StoreHealth StoreWriter::health() const {
  std::lock_guard lock(mutex_);
  StoreHealth health = health_;
  health.queued_samples = static_cast<int64_t>(queue_.samples.size());
  health.queued_bytes = queued_bytes_;
  health.queued_rows = static_cast<int64_t>(queue_.incidents.size() + queue_.outages.size() +
                                            queue_.blind_windows.size() + queue_.job_runs.size());
  health.dropped_samples = dropped_;
  // A batch taken from the queue is unwritten until its write succeeds: a write waiting on a
  // locked file empties the queue for a moment, and the heartbeat must not beat in that moment.
  if (writing_ || health.queued_samples + health.queued_rows > 0) {
    health.unwritten_for_ms = (mono_now_us() - last_success_mono_us_) / 1000;
  }
  return health;
}

bool StoreWriter::finish(std::chrono::milliseconds limit) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable())
      return health_.last_write_ok && queue_.samples.empty() && queue_.rows_empty();
    stopping_ = true;
    finish_by_mono_us_ =
        mono_now_us() + std::chrono::duration_cast<std::chrono::microseconds>(limit).count();
  }
  wake_.notify_one();
  thread_.join();
  std::lock_guard lock(mutex_);
  return health_.last_write_ok && queue_.samples.empty() && queue_.rows_empty();
}

void StoreWriter::drop_oldest_beyond_bound() {
  if (!dropping_logged_) {
    log_error(
        "store: the database is not keeping up; dropping the oldest queued samples (the queue "
        "holds {} "
        "samples, about {} MB); outages and incidents are kept",
        options_.max_queued_samples, queued_bytes_ / 1'000'000);
    dropping_logged_ = true;
  }
  while (static_cast<int64_t>(queue_.samples.size()) > options_.max_queued_samples) {
    const Sample& oldest = queue_.samples.front().second;
    dropped_from_ms_ =
        dropped_from_ms_ == 0 ? oldest.sent_ms : std::min(dropped_from_ms_, oldest.sent_ms);
    dropped_to_ms_ = std::max(dropped_to_ms_, oldest.completed_ms());
    queued_bytes_ -= queued_size(oldest);
    queue_.samples.pop_front();
    ++dropped_;
  }
}

void StoreWriter::requeue(WriteBatch& batch) {
  for (auto it = batch.samples.rbegin(); it != batch.samples.rend(); ++it) {
    queued_bytes_ += queued_size(it->second);
    queue_.samples.push_front(std::move(*it));
  }
  if (static_cast<int64_t>(queue_.samples.size()) > options_.max_queued_samples)
    drop_oldest_beyond_bound();
  queue_.incidents.insert(queue_.incidents.begin(), batch.incidents.begin(), batch.incidents.end());
  queue_.outages.insert(queue_.outages.begin(), batch.outages.begin(), batch.outages.end());
  queue_.job_runs.insert(queue_.job_runs.begin(), batch.job_runs.begin(), batch.job_runs.end());
  queue_.ship_cursors.insert(queue_.ship_cursors.begin(), batch.ship_cursors.begin(),
                             batch.ship_cursors.end());
  queue_.notes.insert(queue_.notes.begin(), batch.notes.begin(), batch.notes.end());
  queue_.notices.insert(queue_.notices.begin(), batch.notices.begin(), batch.notices.end());
  queue_.alert_incidents.insert(queue_.alert_incidents.begin(), batch.alert_incidents.begin(),
                                batch.alert_incidents.end());
  // The dropped span is added afresh to each attempt: only the batch's own windows go back.
  std::erase_if(batch.blind_windows,
                [](const BlindWindow& window) { return window.reason == "store_dropped"; });
  queue_.blind_windows.insert(queue_.blind_windows.begin(), batch.blind_windows.begin(),
                              batch.blind_windows.end());
}

void StoreWriter::run() {
  // The probe loop comes first: when the cores are busy, writing waits, probing does not.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWriterNice);
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || flush_requested_ || !queue_.rows_empty(); });
    WriteBatch batch;
    batch.alive_ms = alive_ms_ != 0 ? alive_ms_ : wall_now_ms();
    batch.samples.assign(std::make_move_iterator(queue_.samples.begin()),
                         std::make_move_iterator(queue_.samples.end()));
    queue_.samples.clear();
    queued_bytes_ = 0;
    batch.incidents = std::exchange(queue_.incidents, {});
    batch.outages = std::exchange(queue_.outages, {});
    batch.blind_windows = std::exchange(queue_.blind_windows, {});
    batch.job_runs = std::exchange(queue_.job_runs, {});
    batch.ship_cursors = std::exchange(queue_.ship_cursors, {});
    batch.notes = std::exchange(queue_.notes, {});
    batch.notices = std::exchange(queue_.notices, {});
    batch.alert_incidents = std::exchange(queue_.alert_incidents, {});
    const uint64_t waited_saves = waited_saves_;
    const uint64_t alert_incident_saves = alert_incident_saves_;
    for (auto& added : std::exchange(queue_.new_probes, {}))
      unregistered_.push_back(std::move(added));
    const int64_t dropped_to_ms = dropped_to_ms_;
    if (dropped_to_ms != 0)
      batch.blind_windows.push_back({dropped_from_ms_, dropped_to_ms, "store_dropped"});
    flush_requested_ = false;
    writing_ = !batch.samples.empty() || !batch.incidents.empty() || !batch.outages.empty() ||
               !batch.blind_windows.empty() || !batch.job_runs.empty();
    lock.unlock();

    const int64_t began_us = mono_now_us();
    const bool ok = write(batch);
    const double seconds = static_cast<double>(mono_now_us() - began_us) / 1e6;
    if (ok) {
      log_debug("store: wrote samples={} rows={} seconds={:.6f}", batch.samples.size(),
                batch.incidents.size() + batch.outages.size() + batch.blind_windows.size(),
                seconds);
    }

    lock.lock();
    writing_ = false;
    health_.write_seconds.observe(seconds);
    health_.last_write_ok = ok;
    if (ok) {
      health_.last_error.clear();
      last_success_mono_us_ = mono_now_us();
      waited_saves_stored_ = waited_saves;
      waited_written_.notify_all();
      if (!batch.alert_incidents.empty()) {
        alert_incident_saves_stored_ = alert_incident_saves;
        // Outside mutex_: the callback wakes the loop, which reads stored_alert_incidents().
        lock.unlock();
        {
          std::lock_guard callback_lock(stored_callback_mutex_);
          if (on_alert_incidents_stored_) on_alert_incidents_stored_();
        }
        lock.lock();
      }
      if (dropped_to_ms != 0) {
        log_warn(
            "store: writing again; {} samples from {} to {} were dropped and are stored as a "
            "store_dropped "
            "blind window",
            dropped_, format_iso8601_ms(dropped_from_ms_), format_iso8601_ms(dropped_to_ms));
        // Samples dropped while this write ran start the next span.
        dropped_from_ms_ = dropped_to_ms_ == dropped_to_ms ? 0 : dropped_to_ms;
        if (dropped_to_ms_ == dropped_to_ms) dropped_to_ms_ = 0;
        dropping_logged_ = false;
      }
      // After telling who waits on this write (a cursor, an alert's record): a checkpoint or a
      // prune step is no reason to hold a page back.
      lock.unlock();
      maintain();
      lock.lock();
    } else {
      requeue(batch);
    }
    const bool drained = queue_.samples.empty() && queue_.rows_empty();
    if (stopping_ && ((ok && drained) || mono_now_us() >= finish_by_mono_us_)) return;
    if (!ok) {
      // Back off, then try again whether or not anything new came.
      const int64_t wait_us =
          stopping_ ? std::min(kRetryEveryUs, finish_by_mono_us_ - mono_now_us()) : kRetryEveryUs;
      wake_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(0, wait_us)),
                     [&] { return stopping_ && mono_now_us() >= finish_by_mono_us_; });
      flush_requested_ = true;
    }
  }
}

int64_t StoreWriter::map_probe(int64_t original_id) const {
  auto found = probe_ids_.find(original_id);
  return found == probe_ids_.end() ? original_id : found->second;
}

bool StoreWriter::reopen_if_replaced() {
  if (store_) {
    dev_t device = 0;
    ino_t inode = 0;
    if (file_identity(path_, device, inode) && device == device_ && inode == inode_) return false;
    log_error(
        "store: the database file {} was removed or replaced; samples are kept until it can be "
        "created "
        "there again",
        path_);
    store_.reset();
  }
  store_damaged_blocks_ = 0;
  auto store =
      std::make_unique<Store>(path_, Store::Mode::read_write);  // throws while it cannot be created
  store->set_auto_checkpoint(false);
  for (const Registered& registered : probes_)
    probe_ids_[registered.first] = register_in(*store, registered);
  file_identity(path_, device_, inode_);
  store_ = std::move(store);
  log_warn("store: writing to a new database file {}", path_);
  return true;
}

bool StoreWriter::write(WriteBatch& batch) {
  try {
    const bool fresh_file = reopen_if_replaced();
    // Probes added while running, before any of their rows: found by name, or new.
    for (Registered& registered : unregistered_) {
      probe_ids_[registered.first] = register_in(*store_, registered);
      probes_.push_back(std::move(registered));
    }
    unregistered_.clear();
    const bool same_ids = std::all_of(probe_ids_.begin(), probe_ids_.end(),
                                      [](const auto& ids) { return ids.first == ids.second; });
    if (fresh_file || !same_ids) {
      // A new file lacks this run's open incidents and outages, and numbers its probes anew.
      WriteBatch copy = batch;
      if (fresh_file) {
        std::vector<IncidentRow> incidents;
        for (const auto& [id, incident] : incidents_seen_) incidents.push_back(incident);
        copy.incidents.insert(copy.incidents.begin(), incidents.begin(), incidents.end());
        std::vector<OutageRow> outages;
        for (const auto& [id, outage] : open_outages_) outages.push_back(outage);
        copy.outages.insert(copy.outages.begin(), outages.begin(), outages.end());
      }
      for (auto& [probe_id, sample] : copy.samples) probe_id = map_probe(probe_id);
      for (OutageRow& outage : copy.outages) outage.probe_id = map_probe(outage.probe_id);
      for (JobRunRow& run : copy.job_runs) run.probe_id = map_probe(run.probe_id);
      store_->write(copy);
    } else {
      store_->write(batch);
    }
    for (const IncidentRow& incident : batch.incidents) {
      if (incident.end_ms) {
        incidents_seen_.erase(incident.id);
      } else {
        incidents_seen_[incident.id] = incident;
      }
    }
    for (const OutageRow& outage : batch.outages) {
      if (outage.end_ms) {
        open_outages_.erase(outage.id);
      } else {
        open_outages_[outage.id] = outage;
      }
    }
    if (const uint64_t damaged = store_->damaged_blocks(); damaged != store_damaged_blocks_) {
      std::lock_guard lock(mutex_);
      health_.damaged_blocks += damaged - store_damaged_blocks_;
      store_damaged_blocks_ = damaged;
    }
    if (failing_since_mono_us_ != 0) {
      log_warn("store: writing again after {}",
               format_duration_brief((mono_now_us() - failing_since_mono_us_) / 1000));
      failing_since_mono_us_ = 0;
    }
    return true;
  } catch (const StoreError& error) {
    const std::string reason = error.what() + unwritable_reason(path_);
    const int64_t now_us = mono_now_us();
    if (failing_since_mono_us_ == 0 || now_us - last_failure_log_mono_us_ > kFailureLogEveryUs) {
      if (failing_since_mono_us_ == 0) {
        log_error("store: write failed, samples kept for the next try err={}", reason);
      } else {
        log_error("store: write failed, samples kept for the next try failing_for={} err={}",
                  format_duration_brief((now_us - failing_since_mono_us_) / 1000), reason);
      }
      last_failure_log_mono_us_ = now_us;
    }
    if (failing_since_mono_us_ == 0) failing_since_mono_us_ = now_us;
    std::lock_guard lock(mutex_);
    health_.last_error = reason;
    return false;
  }
}

PruneCutoffs prune_cutoffs(int64_t now_ms, const StoreWriterOptions& options) {
  return {now_ms - options.retain_ms, now_ms - options.retain_rollups_ms};
}

void StoreWriter::maintain() {
  ++writes_;
  try {
    if (writes_ % kCheckpointEveryWrites == 0) store_->checkpoint();
    // Pruning goes in bounded steps, one after each write, so no write waits long behind it.
    if (prune_more_ || writes_ % kPruneEveryWrites == 0) {
      const PruneCounts removed =
          store_->prune_step(prune_cutoffs(wall_now_ms(), options_), options_.prune_rows_per_step);
      pruned_ += removed;
      prune_more_ = removed.more;
      if (!prune_more_ && pruned_.total() > 0) {
        log_info(
            "store: pruned sample_blocks={} rollups={} job_outputs={} details={} blind_windows={}",
            pruned_.sample_blocks, pruned_.rollups, pruned_.job_outputs, pruned_.details,
            pruned_.blind_windows);
        pruned_ = {};
      }
    }
  } catch (const StoreError& error) {
    prune_more_ = false;
    log_error("store: maintenance failed err={}", error.what());
  }
}

}  // namespace blip
