#include "blip/daemon/daemon.hpp"

#include <algorithm>
#include <csignal>
#include <deque>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "blip/alerts/alert_dispatcher.hpp"
#include "blip/alerts/alert_events.hpp"
#include "blip/alerts/blip_trouble.hpp"
#include "blip/alerts/heartbeat.hpp"
#include "blip/analysis/maintenance.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/descriptors.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"
#include "blip/core/loop_watch.hpp"
#include "blip/daemon/service_manager.hpp"
#include "blip/feed/operator_desk.hpp"
#include "blip/feed/status_feed.hpp"
#include "blip/jobs/job_monitor.hpp"
#include "blip/jobs/ping_inbox.hpp"
#include "blip/probes/probe_runtime.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "blip/remote/remote_sender.hpp"
#include "blip/scheduler/scheduler.hpp"
#include "blip/store/store.hpp"
#include "blip/store/store_writer.hpp"

namespace blip {
namespace {

constexpr uint64_t kFlushEveryMs = 1000;
// Inside compose's 10 s stop timeout, after at most one probe timeout of draining.
constexpr std::chrono::milliseconds kFinishWithin{5000};
// The writer writes every second: samples waiting this long mean the store is not writing, and
// the heartbeat is withheld.
constexpr int64_t kStoreStuckMs = 15'000;
// How long an operator's note waits for the writer to store it (the writer writes rows at once).
constexpr std::chrono::milliseconds kOperatorSaveWithin{3000};
constexpr int64_t kMaintenanceShownAheadMs = 7 * 86'400'000LL;
// What the store knows of each job's runs carries over a restart.
constexpr int64_t kJobHistoryRuns = 100;

// Jobs by name and token, for the listener (which never sees the configuration).
std::vector<std::pair<std::string, std::string>> job_tokens(const std::vector<JobConfig>& jobs) {
  std::vector<std::pair<std::string, std::string>> tokens;
  for (const JobConfig& job : jobs) tokens.emplace_back(job.name, job.settings.token);
  return tokens;
}

// The names a notice may list: the probes and jobs running.
std::set<std::string> component_names(const std::vector<ComponentRef>& components) {
  std::set<std::string> names;
  for (const ComponentRef& component : components) names.insert(component->name);
  return names;
}

// What the feed shows of each probe and job.
std::vector<ComponentConfig> common_parts(const std::vector<ComponentRef>& components) {
  std::vector<ComponentConfig> parts;
  for (const ComponentRef& component : components) parts.push_back(*component);
  return parts;
}

// Every hung attempt holds a socket: say at start whether the limit covers the worst case.
void log_descriptor_room(int64_t limit, const std::vector<ProbeConfig>& configs) {
  const int64_t in_use = open_descriptor_count();
  const int64_t worst = worst_case_sockets(configs);
  const int64_t per_probe =
      configs.empty() ? 1 : std::max<int64_t>(1, worst / static_cast<int64_t>(configs.size()));
  const int64_t room = std::max<int64_t>(0, (limit - in_use) / per_probe);
  if (in_use + worst > limit) {
    log_warn(
        "run: open files limit {} is below what these probes can need ({} open now + {} sockets "
        "when every "
        "target hangs); room for about {} probes like these. An attempt that finds no descriptor "
        "is stored "
        "as blind, never as the target's failure. Raise the limit (ulimit -n, or the container's "
        "nofile "
        "ulimit)",
        limit, in_use, worst, room);
  } else {
    log_info(
        "run: open files limit={} open={} worst_case_sockets={} room for about {} probes like "
        "these",
        limit, in_use, worst, room);
  }
}

// Startup's one look at the database; from then on only the writer thread touches it.
struct OpenedStore {
  std::unique_ptr<Store> store;
  SampleRecorder::Start recorder_start;
  std::map<size_t, std::vector<JobRunRow>> job_history;  // by probe index, newest first
  int64_t last_job_run_id = 0;
  std::map<std::string, double> blind_seconds;
  std::vector<AlertIncidentRow> alert_incidents;  // what the alerts had left to tell
};

OpenedStore open_store(const std::string& path, const std::string& vantage,
                       const std::vector<ComponentRef>& configs, int64_t started_ms) {
  OpenedStore opened;
  try {
    // A damaged database is moved aside for a new one: no damaged file stops probing.
    opened.store =
        std::make_unique<Store>(path, Store::Mode::read_write, Store::Damaged::set_aside);
    Store& store = *opened.store;
    store.set_vantage(vantage);
    // Whatever a previous run left open ended, as far as we know, when it was last alive.
    if (auto last_alive = store.last_alive_ms()) {
      store.close_open_outages(*last_alive, "blip_stopped");
      if (started_ms > *last_alive)
        store.add_blind_window({*last_alive, started_ms, "not_running"});
    }
    for (const auto& [reason, ms] : store.blind_ms_by_reason()) {
      opened.blind_seconds[reason] = static_cast<double>(ms) / 1000.0;
    }
    opened.recorder_start = SampleRecorder::read_start(store, configs);
    for (size_t i = 0; i < configs.size(); ++i) {
      if (!configs[i].job()) continue;
      for (JobRunRecord& run : store.job_runs(configs[i]->name, 0, INT64_MAX, kJobHistoryRuns)) {
        opened.job_history[i].push_back(std::move(run));
      }
    }
    opened.last_job_run_id = store.max_job_run_id();
    opened.alert_incidents = store.alert_incidents();
  } catch (const StoreError& error) {
    throw DaemonStartError(error.what());
  }
  return opened;
}

}  // namespace

// The parts, declared in the order they are built (and destroyed in reverse).
struct Daemon::Parts {
  Parts(LoadedConfig loaded_config, DaemonSettings daemon_settings);

  void listen();
  void publish();
  void tell_troubles(const LiveSnapshot& snapshot);
  void tell_trouble(const AlertEvent& event);
  void record(size_t index, const Sample& sample);
  void outage_changed(size_t index, const OutageRow& row);
  void take_pings();
  void stop_signal();
  void finish();
  void start_reload();
  void apply_reload(const LoadedConfig& next);
  void start_senders();
  const ComponentConfig* active_named(const std::string& name) const;
  ComponentRef keep(ComponentRef config);  // a copy at a stable address

  const DaemonSettings settings;
  const LoadedConfig loaded;
  const std::vector<ComponentRef> components = loaded.components();
  const int64_t started_ms = wall_now_ms();
  const MaintenanceCalendar windows{loaded.maintenance};

  // The feed reads the store through its own connection and the loop only
  // through the board. It listens before the store opens, so a taken port
  // changes nothing.
  PingInbox pings;
  OperatorDesk desk;  // notes and notices, connected to the writer once it runs
  SnapshotBoard board;
  std::optional<StatusFeed> feed;
  std::optional<FeedServer> private_face;
  std::optional<FeedServer> public_face;

  std::map<std::string, double> blind_seconds;
  std::optional<StoreWriter> writer;
  // The listeners outlive the writer: the desk lets go of it first, however the parts end.
  struct DeskRelease {
    OperatorDesk& desk;
    ~DeskRelease() { desk.disconnect(); }
  } desk_release{desk};
  // Each reads the store on its own thread and saves its cursor through the writer. A reload
  // that changes [[remote_write]] retires them (they end by themselves; joined at shutdown).
  std::vector<RemoteWriteConfig> remote_writes = loaded.remote_writes;
  std::vector<std::unique_ptr<RemoteSender>> senders;
  std::vector<std::unique_ptr<RemoteSender>> retired_senders;
  std::optional<SampleRecorder> recorder;
  AlertEvents alert_events{started_ms};
  BlipTroubleWatch trouble_watch;

  // Probes and jobs by index (recorder, jobs and alerts number them alike); a
  // reload only appends, and a removed one's slot stays empty. `active` is the
  // configuration order. The scheduler and the runtime number only the
  // probes: `probe_slots` holds each one's slot.
  std::vector<ComponentRef> slots = components;
  std::vector<size_t> probe_slots;
  std::vector<size_t> active;
  std::shared_ptr<const std::vector<ComponentConfig>> active_configs;
  // Those a reload adds, at stable addresses: the parts keep references into them.
  std::deque<ProbeConfig> added_probes;
  std::deque<JobConfig> added_jobs;

  ProbeRuntime runtime{loaded.probes};
  std::optional<Scheduler> scheduler;
  std::optional<JobMonitor> jobs;
  std::optional<AlertDispatcher> alerts;
  // The writer's thread says an alert's incident record is stored: its message may go.
  AsyncWake alert_records_stored{
      runtime.loop.get(), [this] { alerts->records_stored(writer->stored_alert_incidents()); }};
  // Before the wake goes, however the parts end: the writer's thread may outlive it.
  struct AlertRecordsRelease {
    std::optional<StoreWriter>& writer;
    ~AlertRecordsRelease() {
      if (writer) writer->set_on_alert_incidents_stored(nullptr);
    }
  } alert_records_release{writer};
  std::optional<Heartbeats> heartbeats;
  std::optional<LoopWatch> loop_watch;
  ServiceManager service{runtime.loop.get()};
  uint64_t snapshot_sequence = 0;
  uint64_t published_transitions = 0;
  // Transitions within one loop iteration make one snapshot.
  Timer publish_soon{runtime.loop.get(), [this] { publish(); }};
  // The one maintenance timer: the writer writes what is queued, the feed gets a snapshot.
  Timer maintenance{runtime.loop.get(), [this] {
                      writer->flush(wall_now_ms());
                      publish();
                    }};
  // Pings come from the listener's threads; the loop applies them.
  AsyncWake pings_ready{runtime.loop.get(), [this] { take_pings(); }};

  // A reload reads probes.d on a thread of its own (the loop never waits for the disk).
  std::mutex reload_mutex;
  std::optional<LoadedConfig> reloaded;  // guarded by reload_mutex
  std::thread reload_thread;
  AsyncWake reload_ready{runtime.loop.get(), [this] {
                           std::optional<LoadedConfig> next;
                           {
                             std::lock_guard lock(reload_mutex);
                             next = std::exchange(reloaded, std::nullopt);
                           }
                           if (!next) return;
                           reload_thread.join();
                           apply_reload(*next);
                         }};
  AsyncWake reload_requested{runtime.loop.get(), [this] { start_reload(); }};
  AsyncWake stop_requested{runtime.loop.get(), [this] { stop_signal(); }};
  std::vector<SignalWatcher> signals;

  bool stopping = false;
  int exit_code = 0;
};

Daemon::Parts::Parts(LoadedConfig loaded_config, DaemonSettings daemon_settings)
    : settings(std::move(daemon_settings)), loaded(std::move(loaded_config)) {
  listen();
  OpenedStore opened = open_store(settings.db_path, settings.vantage, components, started_ms);
  blind_seconds = std::move(opened.blind_seconds);
  StoreWriterOptions writer_options;
  writer_options.retain_ms = settings.retain_ms;
  writer_options.retain_rollups_ms = settings.retain_rollups_ms;
  writer_options.max_queued_samples = 0;
  std::vector<std::pair<int64_t, ComponentRef>> registered;
  for (size_t i = 0; i < components.size(); ++i) {
    writer_options.max_queued_samples += settings.store_queue_ms / components[i]->interval_ms + 1;
    registered.emplace_back(opened.recorder_start.probe_ids[i], components[i]);
  }
  writer.emplace(std::move(opened.store), settings.db_path, registered, writer_options);
  log_info("store: writer started queue_limit_samples={} (about {} MB)",
           writer_options.max_queued_samples, writer_options.max_queued_samples * 100 / 1'000'000);
  recorder.emplace(opened.recorder_start, *writer, components);
  desk.connect({settings.db_path,
                [this](IncidentNoteRow note) {
                  return writer->save_note(std::move(note), kOperatorSaveWithin);
                },
                [this](NoticeRow notice) {
                  return writer->save_notice(std::move(notice), kOperatorSaveWithin);
                }});
  start_senders();

  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].probe()) probe_slots.push_back(i);
  }
  active.resize(components.size());
  std::iota(active.begin(), active.end(), size_t{0});
  active_configs = std::make_shared<const std::vector<ComponentConfig>>(common_parts(components));

  uv_loop_t* loop = runtime.loop.get();
  scheduler.emplace(
      loop, loaded.probes, runtime.probes,
      [this](size_t probe, const Sample& sample) { record(probe_slots[probe], sample); });
  jobs.emplace(loop, *writer, opened.last_job_run_id,
               [this](size_t index, const Sample& sample) { record(index, sample); });
  for (size_t i = 0; i < components.size(); ++i) {
    if (const JobConfig* job = components[i].job()) {
      jobs->add(i, *job, opened.recorder_start.probe_ids[i], opened.job_history[i], started_ms);
    }
  }
  // Alerts: told of each outage as the recorder opens and closes it; held in maintenance windows.
  alerts.emplace(loop, runtime.curl, loaded.alerts, [this](const AlertEvent& event) {
    const ComponentConfig* config = active_named(event.probe);
    return config &&
           windows.active(*config, event.start_ms != 0 ? event.start_ms : event.at_ms).has_value();
  });
  // An incident's record is stored before its message goes; what the last run left is restored.
  alerts->set_record_save(
      [this](AlertIncidentRow row) { return writer->save_alert_incident(std::move(row)); });
  writer->set_on_alert_incidents_stored([this] { alert_records_stored.send(); });
  alerts->restore(opened.alert_incidents, component_names(components), started_ms);
  // The operator's words reach the incident's next message.
  alerts->set_note_lookup([this](int64_t incident_id) -> std::optional<IncidentNote> {
    auto note = desk.latest_note(incident_id);
    if (!note) return std::nullopt;
    return IncidentNote{note->status, note->text, note->at_ms};
  });
  // The dead-man's switch beats only while the store writes (the loop's own timer beats it).
  heartbeats.emplace(loop, runtime.curl, loaded.heartbeats, [this]() -> std::optional<std::string> {
    // A failed write leaves its samples waiting: waiting too long is the one test.
    const StoreHealth health = writer->health();
    if (health.unwritten_for_ms > kStoreStuckMs)
      return fmt::format("samples unwritten for {}",
                         format_duration_brief(health.unwritten_for_ms));
    return std::nullopt;
  });
  SampleRecorder::OutageHooks hooks;
  hooks.in_maintenance = [this](const ComponentConfig& config, int64_t start_ms) {
    return windows.active(config, start_ms).has_value();
  };
  hooks.changed = [this](size_t index, const OutageRow& row) { outage_changed(index, row); };
  recorder->set_outage_hooks(std::move(hooks));
  jobs->set_forecast_sink([this](size_t index, const std::string& text) {
    log_warn("job: forecast job={} text={}", slots[index]->name, text);
    alerts->notify(alert_events.job_forecast(*slots[index], text, wall_now_ms()));
  });
  pings.set_wake([this] { pings_ready.send(); });
  pings_ready.send();  // any that came before the loop was ready

  loop_watch.emplace(loop, [this](const BlindWindow& window) {
    log_warn("blind: reason={} start={} duration={}", window.reason,
             format_iso8601_ms(window.start_ms),
             format_duration_brief(window.end_ms - window.start_ms));
    blind_seconds[window.reason] += static_cast<double>(window.end_ms - window.start_ms) / 1000.0;
    writer->add_blind_window(window);
    for (const AlertEvent& event : trouble_watch.blind(window, wall_now_ms())) tell_trouble(event);
  });
  scheduler->set_stall_detector(
      [this](int64_t since_mono_us) { return loop_watch->stalled_since(since_mono_us); });
  if (settings.handle_signals) {
    signals.emplace_back(loop, SIGHUP, [this] { start_reload(); });
    signals.emplace_back(loop, SIGTERM, [this] { stop_signal(); });
    signals.emplace_back(loop, SIGINT, [this] { stop_signal(); });
  }
}

void Daemon::Parts::start_senders() {
  for (const RemoteWriteConfig& remote : remote_writes) {
    RemoteSenderOptions options;
    options.db_path = settings.db_path;
    options.vantage = settings.vantage;
    options.retain_ms = settings.retain_ms;
    senders.push_back(
        std::make_unique<RemoteSender>(remote, options, [this](std::vector<ShipCursor> cursors) {
          return writer->save_ship_cursors(std::move(cursors), kFinishWithin);
        }));
  }
}

void Daemon::Parts::listen() {
  if (!loaded.jobs.empty() && !settings.listen) {
    throw DaemonStartError(
        "--listen off: jobs report in through the listener's /ping/<token>; give it an address");
  }
  if (!settings.listen && !settings.public_listen) return;
  pings.set_jobs(job_tokens(loaded.jobs));  // before the first check-in can come
  desk.set_token(loaded.page.operator_token);
  desk.set_components(component_names(components));
  feed.emplace(common_parts(components), loaded.page, board, settings.db_path);
  try {
    if (settings.listen) {
      private_face.emplace(*feed, &pings, &desk, Audience::operator_view, *settings.listen,
                           settings.feed_limits, settings.feed_access);
    }
    if (settings.public_listen) {
      public_face.emplace(*feed, nullptr, nullptr, Audience::public_view, *settings.public_listen,
                          settings.feed_limits, settings.feed_access);
    }
  } catch (const std::runtime_error& error) {
    throw DaemonStartError(error.what());
  }
  if (settings.listen) {
    if (!settings.listen->loopback)
      log_warn("feed: listening beyond loopback face=private address={}", settings.listen->text);
    log_info("feed: listening face=private address={}", settings.listen->text);
  }
  if (settings.public_listen)
    log_info("feed: listening face=public address={}", settings.public_listen->text);
}

// What the feed sees: a snapshot the loop publishes every second and after transitions.
void Daemon::Parts::publish() {
  auto snapshot = std::make_shared<LiveSnapshot>();
  snapshot->sequence = ++snapshot_sequence;
  snapshot->transitions = published_transitions = recorder->transitions();
  snapshot->taken_wall_ms = wall_now_ms();
  snapshot->taken_mono_us = mono_now_us();
  snapshot->started_wall_ms = started_ms;
  snapshot->configs = active_configs;
  snapshot->probes.reserve(active.size());
  for (size_t index : active) {
    snapshot->probes.push_back(recorder->live()[index]);
    snapshot->probes.back().job = jobs->live(index, snapshot->taken_wall_ms);
    snapshot->probes.back().in_maintenance =
        windows.active(*slots[index], snapshot->taken_wall_ms).has_value();
  }
  snapshot->maintenance =
      windows.between(snapshot->taken_wall_ms, snapshot->taken_wall_ms + kMaintenanceShownAheadMs);
  for (const AlertCount& count : alerts->counts()) {
    snapshot->alert_counts.push_back(
        {std::string(to_string(count.kind)), std::string(to_string(count.result)), count.count});
  }
  const HeartbeatCounts beats = heartbeats->counts();
  snapshot->heartbeat_counts = {
      {"sent", beats.sent}, {"failed", beats.failed}, {"withheld", beats.withheld}};
  snapshot->loop_lag_us = loop_watch->last_lag_us();
  snapshot->loop_lag = loop_watch->lag_histogram();
  snapshot->blind_seconds = blind_seconds;
  snapshot->store = writer->health();
  snapshot->vantage = settings.vantage;
  for (const auto& sender : senders) snapshot->remote_writes.push_back(sender->stats());
  tell_troubles(*snapshot);
  board.publish(std::move(snapshot));
}

// Alerts about blip itself, from the counters the snapshot just read.
void Daemon::Parts::tell_troubles(const LiveSnapshot& snapshot) {
  BlipCounters counters;
  counters.dropped_samples = snapshot.store.dropped_samples;
  counters.dropped_log_lines = log_dropped_lines();
  counters.store_set_aside_at_ms = snapshot.store.set_aside_at_ms;
  counters.store_set_aside_reason = snapshot.store.set_aside_reason;
  for (const RemoteWriteStats& remote : snapshot.remote_writes)
    counters.remote_writes.push_back({remote.endpoint, remote.rejected, remote.expired});
  for (const AlertEvent& event : trouble_watch.observe(counters, snapshot.taken_wall_ms))
    tell_trouble(event);
}

void Daemon::Parts::tell_trouble(const AlertEvent& event) {
  if (event.kind == AlertEvent::Kind::outage_opened) {
    log_warn("alerts: blip trouble trouble={} spell={} text={}", event.trouble, event.incident_id,
             event.detail);
  } else {
    log_info("alerts: blip trouble over trouble={} spell={} text={}", event.trouble,
             event.incident_id, event.detail);
  }
  alerts->notify(event);
}

void Daemon::Parts::record(size_t index, const Sample& sample) {
  recorder->record(index, sample);
  // An incident open when blip stopped ends for this probe at its first sample that is not down.
  if (alerts->awaiting_restart() &&
      (sample.status == Status::up || sample.status == Status::degraded))
    alerts->probe_back(slots[index]->name, sample.completed_ms());
  if (recorder->transitions() != published_transitions) publish_soon.start(0);
}

void Daemon::Parts::outage_changed(size_t index, const OutageRow& row) {
  for (const AlertEvent& event : alert_events.outage_changed(*slots[index], row, wall_now_ms())) {
    alerts->notify(event);
  }
}

void Daemon::Parts::take_pings() {
  for (auto& [name, ping] : pings.take()) {
    for (size_t index : active) {
      if (slots[index]->name == name && slots[index].job()) jobs->ping(index, ping);
    }
  }
}

const ComponentConfig* Daemon::Parts::active_named(const std::string& name) const {
  for (size_t index : active) {
    if (slots[index]->name == name) return &*slots[index];
  }
  return nullptr;
}

void Daemon::Parts::stop_signal() {
  if (!stopping) {
    stopping = true;
    service.stopping();
    log_info("run: stopping, waiting for probes in flight");
    scheduler->stop([this] { finish(); });
  } else {
    log_warn("run: second signal, abandoning probes in flight");
    scheduler->abandon();
    finish();
  }
}

// Shutdown's order: nothing new starts (probes drained or abandoned before
// this), open outages end, the writer stores everything queued, the loop ends.
void Daemon::Parts::finish() {
  loop_watch->stop();
  jobs->stop();
  heartbeats->stop();
  // A send still going is abandoned (stopping never waits on an endpoint); an incident's message
  // stays pending in its record and is sent after the restart.
  alerts->stop(0);
  maintenance.stop();
  publish_soon.stop();
  recorder->close_open(wall_now_ms(), "shutdown");
  // Before the writer: each saves its cursor.
  for (const auto& sender : senders) sender->stop();
  for (const auto& sender : retired_senders) sender->stop();
  desk.disconnect();  // a note in hand is queued first; later ones are refused
  // The last chance to store what is queued: the writer retries for a while, then the exit status
  // says so.
  writer->flush(wall_now_ms());
  if (!writer->finish(kFinishWithin)) {
    log_error("run: samples could not be stored; exiting with status 1");
    exit_code = 1;
  }
  const auto& lag = scheduler->schedule_lag();
  log_info(
      "run: stopped samples={} schedule_lag_p50_us={} schedule_lag_p99_us={} max_loop_lag_us={}",
      lag.count(), lag.percentile_us(0.5), lag.percentile_us(0.99), loop_watch->max_lag_us());
  runtime.loop.stop();
}

ComponentRef Daemon::Parts::keep(ComponentRef config) {
  if (const ProbeConfig* probe = config.probe()) return added_probes.emplace_back(*probe);
  return added_jobs.emplace_back(*config.job());
}

void Daemon::Parts::start_reload() {
  if (stopping || reload_thread.joinable()) return;  // one reload at a time
  service.reloading();
  reload_thread = std::thread([this] {
    LoadedConfig next = load_config_directory(settings.config_dir);
    {
      std::lock_guard lock(reload_mutex);
      reloaded = std::move(next);
    }
    reload_ready.send();
  });
}

// Unchanged probes keep their state, schedule and open outages; an invalid
// directory changes nothing. Removed probes end first, then added ones are
// registered with the writer before anything can record for them.
void Daemon::Parts::apply_reload(const LoadedConfig& next) {
  if (stopping) return;
  if (!next.ok()) {
    for (const ConfigError& error : next.errors)
      log_error("reload: rejected error={}", error.to_string());
    log_error("reload: rejected {} error{} in {}; the running configuration is kept",
              next.errors.size(), next.errors.size() == 1 ? "" : "s", settings.config_dir);
    service.ready("reload rejected: the running configuration is kept");
    return;
  }
  const std::vector<ComponentRef> next_components = next.components();
  const ComponentChanges changes = compare_components(slots, next_components);
  const int64_t now_ms = wall_now_ms();
  for (size_t index : changes.removed) {
    jobs->remove(index);
    if (auto probe = std::find(probe_slots.begin(), probe_slots.end(), index);
        probe != probe_slots.end()) {
      const auto scheduled = static_cast<size_t>(probe - probe_slots.begin());
      scheduler->remove(scheduled);
      runtime.probes[scheduled].reset();
    }
    recorder->remove_probe(index, now_ms, "removed");
    // A restored incident waiting on this probe's first sample after a restart: it is back
    // as far as the alerts can ever tell.
    alerts->probe_back(slots[index]->name, now_ms);
    slots[index] = {};
  }
  std::vector<size_t> order;
  std::vector<ComponentRef> running;
  for (size_t i = 0; i < next_components.size(); ++i) {
    size_t index = changes.kept[i].value_or(slots.size());
    if (!changes.kept[i]) {
      const ComponentRef config = keep(next_components[i]);
      const int64_t probe_id = writer->add_probe(config);
      recorder->add_probe(*config, probe_id);
      if (const ProbeConfig* probe = config.probe()) {
        probe_slots.push_back(index);
        scheduler->add(*probe, runtime.add(*probe));
      }
      if (const JobConfig* job = config.job()) jobs->add(index, *job, probe_id, {}, now_ms);
      slots.push_back(config);
    }
    order.push_back(index);
    running.push_back(slots[index]);
  }
  active = std::move(order);
  pings.set_jobs(job_tokens(next.jobs));
  desk.set_components(component_names(running));
  if (next.remote_writes != remote_writes) {
    // The new set starts from the cursors the old one stored (a retired sender's last
    // acknowledged request may be sent again).
    for (auto& sender : senders) sender->request_stop();
    std::move(senders.begin(), senders.end(), std::back_inserter(retired_senders));
    senders.clear();
    remote_writes = next.remote_writes;
    start_senders();
    log_info("reload: remote_write endpoints={}", remote_writes.size());
  }
  active_configs = std::make_shared<const std::vector<ComponentConfig>>(common_parts(running));
  publish();
  const auto added =
      static_cast<size_t>(std::count(changes.kept.begin(), changes.kept.end(), std::nullopt));
  log_info("reload: probes={} kept={} added={} removed={}", active.size(), active.size() - added,
           added, changes.removed.size());
  service.ready(fmt::format("probing {} components", active.size()));
}

Daemon::Daemon(LoadedConfig config, DaemonSettings settings)
    : parts_(std::make_unique<Parts>(std::move(config), std::move(settings))) {}

Daemon::~Daemon() {
  if (!parts_) return;
  parts_->pings.set_wake(nullptr);  // the listener outlives the loop's handles
  if (parts_->reload_thread.joinable()) parts_->reload_thread.join();
}

int Daemon::run() {
  Parts& parts = *parts_;
  parts.maintenance.start(kFlushEveryMs, kFlushEveryMs);
  parts.publish();
  log_info("run: started probes={} db={} config={}", parts.components.size(),
           parts.settings.db_path, parts.settings.config_dir);
  if (parts.settings.open_files_limit > 0) {
    log_descriptor_room(parts.settings.open_files_limit, parts.loaded.probes);
    // Short of sockets for the worst case: no bursts, each probe spread on its own.
    if (open_descriptor_count() + worst_case_sockets(parts.loaded.probes) >
        parts.settings.open_files_limit)
      parts.scheduler->set_start_group_size(1);
  }
  parts.scheduler->start();
  parts.jobs->start();
  parts.service.ready(fmt::format("probing {} components", parts.components.size()));
  parts.runtime.loop.run();
  parts.pings.set_wake(nullptr);
  if (parts.reload_thread.joinable()) parts.reload_thread.join();
  return parts.exit_code;
}

void Daemon::request_stop() { parts_->stop_requested.send(); }

void Daemon::request_reload() { parts_->reload_requested.send(); }

std::shared_ptr<const LiveSnapshot> Daemon::snapshot() const { return parts_->board.current(); }

}  // namespace blip
