// `blip run`: the daemon. Wires scheduler -> sample recorder -> store, plus
// one maintenance timer (flush, retention, feed snapshot), the loop watch,
// and the feed server on its own threads.
#include <algorithm>
#include <csignal>
#include <deque>
#include <numeric>
#include <iostream>
#include <mutex>
#include <thread>

#include "blip/cli/commands.hpp"
#include "blip/cli/probe_runtime.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/descriptors.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/loop_watch.hpp"
#include "blip/feed/feed_server.hpp"
#include "blip/alerts/alert_dispatcher.hpp"
#include "blip/alerts/outage_phase.hpp"
#include "blip/analysis/maintenance.hpp"
#include "blip/core/logging.hpp"
#include "blip/jobs/job_monitor.hpp"
#include "blip/jobs/ping_inbox.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "blip/scheduler/scheduler.hpp"
#include "blip/store/store.hpp"
#include "blip/store/store_writer.hpp"

namespace blip {
namespace {

constexpr uint64_t kFlushEveryMs = 1000;
// Inside compose's 10 s stop timeout, after at most one probe timeout of draining.
constexpr std::chrono::milliseconds kFinishWithin{5000};

// The recorder is built before the writer (it registers the probes the
// writer then needs), so it writes through this until the writer exists.
struct DeferredSink : RecordSink {
  RecordSink* target = nullptr;
  void add_sample(int64_t probe_id, const Sample& sample) override { target->add_sample(probe_id, sample); }
  void write_outage(const OutageRow& row) override { target->write_outage(row); }
  void write_incident(const IncidentRow& row) override { target->write_incident(row); }
  void write_job_run(const JobRunRow& row) override { target->write_job_run(row); }
};

}  // namespace

namespace {

// "a, b,c" -> {"a", "b", "c"}; empty items dropped.
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) items.emplace_back(item);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return items;
}

// Every hung attempt holds a socket: say at start whether the limit covers the worst case.
void log_descriptor_room(int64_t limit, const std::vector<ProbeConfig>& configs) {
  const int64_t in_use = open_descriptor_count();
  const int64_t worst = worst_case_sockets(configs);
  const int64_t per_probe = configs.empty() ? 1 : std::max<int64_t>(1, worst / static_cast<int64_t>(configs.size()));
  const int64_t room = std::max<int64_t>(0, (limit - in_use) / per_probe);
  if (in_use + worst > limit) {
    log_warn("run: open files limit {} is below what these probes can need ({} open now + {} sockets when every "
             "target hangs); room for about {} probes like these. An attempt that finds no descriptor is stored "
             "as blind, never as the target's failure. Raise the limit (ulimit -n, or the container's nofile "
             "ulimit)",
             limit, in_use, worst, room);
  } else {
    log_info("run: open files limit={} open={} worst_case_sockets={} room for about {} probes like these", limit,
             in_use, worst, room);
  }
}

}  // namespace

int run_daemon(const RunOptions& options) {
  const int64_t open_files_limit = raise_open_files_limit();
  auto loaded = load_config_or_report(options.config_dir, std::cerr);
  if (!loaded) return kExitUsage;
  const std::vector<ComponentRef> configs = loaded->components();
  std::string problem;
  auto retain_ms = parse_duration_ms(options.retain, &problem);
  if (!retain_ms) {
    std::cerr << "--retain: " << problem << '\n';
    return kExitUsage;
  }
  auto retain_rollups_ms = parse_duration_ms(options.retain_rollups, &problem);
  if (!retain_rollups_ms) {
    std::cerr << "--retain-rollups: " << problem << '\n';
    return kExitUsage;
  }
  auto parse_listen = [&](const std::string& text, const char* flag) -> std::optional<std::optional<ListenAddress>> {
    if (text == "off") return std::optional<ListenAddress>();
    auto address = parse_listen_address(text, &problem);
    if (!address) {
      std::cerr << flag << ": " << problem << '\n';
      return std::nullopt;
    }
    return address;
  };
  auto listen_option = parse_listen(options.listen, "--listen");
  auto public_listen_option = parse_listen(options.public_listen, "--public-listen");
  if (!listen_option || !public_listen_option) return kExitUsage;
  const std::optional<ListenAddress> listen = *listen_option;
  const std::optional<ListenAddress> public_listen = *public_listen_option;
  FeedAccess access;
  if (auto proxies = parse_address_ranges(options.trusted_proxies, &problem)) {
    access.trusted_proxies = std::move(*proxies);
  } else {
    std::cerr << "--trusted-proxy: " << problem << '\n';
    return kExitUsage;
  }
  for (const std::string& name : split_list(options.allowed_hosts)) {
    if (name.find_first_of(" /:[]@") != std::string::npos) {
      std::cerr << "--allowed-hosts: \"" << name << "\" is not a host name (no port, no scheme)\n";
      return kExitUsage;
    }
    access.allowed_hosts.push_back(name);
  }
  auto queue_ms = parse_duration_ms(options.store_queue, &problem);
  if (!queue_ms || *queue_ms < 1000) {
    std::cerr << "--store-queue: " << (queue_ms ? "must be at least 1s" : problem) << '\n';
    return kExitUsage;
  }
  auto idle_timeout_ms = parse_duration_ms(options.feed_idle_timeout, &problem);
  if (!idle_timeout_ms || *idle_timeout_ms < 1000) {
    std::cerr << "--feed-idle-timeout: " << (idle_timeout_ms ? "must be at least 1s" : problem) << '\n';
    return kExitUsage;
  }
  auto request_timeout_ms = parse_duration_ms(options.feed_request_timeout, &problem);
  if (!request_timeout_ms || *request_timeout_ms < 1000) {
    std::cerr << "--feed-request-timeout: " << (request_timeout_ms ? "must be at least 1s" : problem) << '\n';
    return kExitUsage;
  }
  if (!loaded->jobs.empty() && !listen) {
    std::cerr << "--listen off: jobs report in through the listener's /ping/<token>; give it an address\n";
    return kExitUsage;
  }
  // Jobs by name and token, for the listener (which never sees the configuration).
  PingInbox pings;
  auto job_tokens = [](const std::vector<JobConfig>& jobs) {
    std::vector<std::pair<std::string, std::string>> tokens;
    for (const JobConfig& job : jobs) tokens.emplace_back(job.name, job.settings.token);
    return tokens;
  };
  pings.set_jobs(job_tokens(loaded->jobs));
  // What the feed shows of each probe and job.
  auto common_parts = [](const std::vector<ComponentRef>& components) {
    std::vector<ComponentConfig> parts;
    for (const ComponentRef& component : components) parts.push_back(*component);
    return parts;
  };
  // The feed reads the store through its own connection and the loop only through
  // the board. It listens before the store opens, so a taken port changes nothing.
  SnapshotBoard board;
  std::optional<StatusFeed> feed;
  std::optional<FeedServer> private_face;
  std::optional<FeedServer> public_face;
  if (listen || public_listen) {
    feed.emplace(common_parts(configs), loaded->page, board, options.db_path);
    FeedLimits limits;
    limits.max_connections = options.feed_max_connections;
    limits.max_connections_per_client = options.feed_max_connections_per_client;
    limits.idle_timeout_seconds = static_cast<unsigned>(*idle_timeout_ms / 1000);
    limits.request_time_ms = *request_timeout_ms;
    try {
      if (listen) private_face.emplace(*feed, &pings, Audience::operator_view, *listen, limits, access);
      if (public_listen) public_face.emplace(*feed, nullptr, Audience::public_view, *public_listen, limits, access);
    } catch (const std::runtime_error& error) {
      std::cerr << error.what() << '\n';
      return kExitUsage;
    }
    if (listen) {
      if (!listen->loopback) log_warn("feed: listening beyond loopback face=private address={}", listen->text);
      log_info("feed: listening face=private address={}", listen->text);
    }
    if (public_listen) log_info("feed: listening face=public address={}", public_listen->text);
  }

  // Startup touches the database from here, once; from then on only the writer thread does.
  const int64_t started_ms = wall_now_ms();
  std::unique_ptr<Store> store;
  std::map<std::string, double> blind_seconds;
  try {
    // A damaged database is moved aside for a new one: no damaged file stops probing.
    store = std::make_unique<Store>(options.db_path, Store::Mode::read_write, Store::Damaged::set_aside);
    // Whatever a previous run left open ended, as far as we know, when it was last alive.
    if (auto last_alive = store->last_alive_ms()) {
      store->close_open_outages(*last_alive, "blip_stopped");
      if (started_ms > *last_alive) store->add_blind_window({*last_alive, started_ms, "not_running"});
    }
    for (const auto& [reason, ms] : store->blind_ms_by_reason()) {
      blind_seconds[reason] = static_cast<double>(ms) / 1000.0;
    }
  } catch (const StoreError& error) {
    std::cerr << error.what() << '\n';
    return kExitUsage;
  }
  StoreWriterOptions writer_options;
  writer_options.retain_ms = *retain_ms;
  writer_options.retain_rollups_ms = *retain_rollups_ms;
  writer_options.max_queued_samples = 0;
  for (const ComponentRef& config : configs)
    writer_options.max_queued_samples += *queue_ms / config->interval_ms + 1;
  DeferredSink writer_sink;
  std::optional<StoreWriter> writer;  // built once the recorder has registered the probes
  std::optional<SampleRecorder> recorder;
  try {
    recorder.emplace(*store, writer_sink, configs);
  } catch (const StoreError& error) {
    std::cerr << error.what() << '\n';
    return kExitUsage;
  }
  // What the store knows of each job's runs carries over a restart (read now: the writer owns the store next).
  constexpr int64_t kJobHistoryRuns = 100;
  std::map<size_t, std::vector<JobRunRow>> job_history;
  int64_t last_job_run_id = 0;
  try {
    for (size_t i = 0; i < configs.size(); ++i) {
      if (!configs[i].job()) continue;
      for (JobRunRecord& run : store->job_runs(configs[i]->name, 0, INT64_MAX, kJobHistoryRuns)) {
        job_history[i].push_back(std::move(run));
      }
    }
    last_job_run_id = store->max_job_run_id();
  } catch (const StoreError& error) {
    std::cerr << error.what() << '\n';
    return kExitUsage;
  }
  std::vector<std::pair<int64_t, ComponentRef>> registered;
  const auto probe_ids = recorder->probe_ids();
  for (size_t i = 0; i < configs.size(); ++i) registered.emplace_back(probe_ids[i], configs[i]);
  writer.emplace(std::move(store), options.db_path, registered, writer_options);
  writer_sink.target = &*writer;
  log_info("store: writer started queue_limit_samples={} (about {} MB)", writer_options.max_queued_samples,
           writer_options.max_queued_samples * 100 / 1'000'000);
  ProbeRuntime runtime(loaded->probes);
  // Probes and jobs by index (recorder, jobs and alerts number them alike); a reload only
  // appends, and a removed one's slot stays empty. `active` is the configuration order.
  // Those a reload adds, at stable addresses: the parts keep references into them.
  std::deque<ProbeConfig> added_probes;
  std::deque<JobConfig> added_jobs;
  auto keep = [&](ComponentRef config) -> ComponentRef {
    if (const ProbeConfig* probe = config.probe()) return added_probes.emplace_back(*probe);
    return added_jobs.emplace_back(*config.job());
  };
  std::vector<ComponentRef> slots = configs;
  // The scheduler and the runtime number only the probes: each one's slot.
  std::vector<size_t> probe_slots;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].probe()) probe_slots.push_back(i);
  }
  std::vector<size_t> active(configs.size());
  std::iota(active.begin(), active.end(), size_t{0});
  auto active_configs = std::make_shared<const std::vector<ComponentConfig>>(common_parts(configs));

  // What the feed sees: a snapshot the loop publishes every second and after transitions.
  // Built once the recorder's sink exists (they feed it); the snapshot reads them when they do.
  const MaintenanceCalendar windows(loaded->maintenance);
  constexpr int64_t kMaintenanceShownAheadMs = 7 * 86'400'000LL;
  std::optional<JobMonitor> jobs;
  std::optional<AlertDispatcher> alerts;
  uint64_t snapshot_sequence = 0;
  uint64_t published_transitions = 0;
  std::optional<LoopWatch> loop_watch;
  auto publish = [&] {
    if (!feed) return;
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
      if (jobs) snapshot->probes.back().job = jobs->live(index, snapshot->taken_wall_ms);
      snapshot->probes.back().in_maintenance = windows.active(*slots[index], snapshot->taken_wall_ms).has_value();
    }
    snapshot->maintenance = windows.between(snapshot->taken_wall_ms, snapshot->taken_wall_ms + kMaintenanceShownAheadMs);
    if (alerts) {
      for (const AlertCount& count : alerts->counts()) {
        snapshot->alert_counts.push_back(
            {std::string(to_string(count.kind)), std::string(to_string(count.result)), count.count});
      }
    }
    if (loop_watch) {
      snapshot->loop_lag_us = loop_watch->last_lag_us();
      snapshot->loop_lag = loop_watch->lag_histogram();
    }
    snapshot->blind_seconds = blind_seconds;
    snapshot->store = writer->health();
    board.publish(std::move(snapshot));
  };
  // Transitions within one loop iteration make one snapshot.
  Timer publish_soon(runtime.loop.get(), publish);
  auto record = [&](size_t index, const Sample& sample) {
    recorder->record(index, sample);
    if (feed && recorder->transitions() != published_transitions) publish_soon.start(0);
  };
  Scheduler scheduler(
      runtime.loop.get(), loaded->probes, runtime.probes,
      [&](size_t probe, const Sample& sample) { record(probe_slots[probe], sample); });
  jobs.emplace(runtime.loop.get(), *writer, last_job_run_id, record);
  for (size_t i = 0; i < configs.size(); ++i) {
    if (const JobConfig* job = configs[i].job())
      jobs->add(i, *job, probe_ids[i], job_history[i], started_ms);
  }
  // Alerts: told of each outage as the recorder opens and closes it; held in maintenance windows.
  auto config_named = [&](const std::string& name) -> const ComponentConfig* {
    for (size_t index : active) {
      if (slots[index]->name == name) return &*slots[index];
    }
    return nullptr;
  };
  alerts.emplace(runtime.loop.get(), runtime.curl, loaded->alerts, [&](const AlertEvent& event) {
    const ComponentConfig* config = config_named(event.probe);
    return config && windows.active(*config, event.start_ms != 0 ? event.start_ms : event.at_ms).has_value();
  });
  OutagePhaseTracker phases;
  SampleRecorder::OutageHooks hooks;
  hooks.in_maintenance = [&](const ComponentConfig& config, int64_t start_ms) {
    return windows.active(config, start_ms).has_value();
  };
  auto event_of = [&](AlertEvent::Kind kind, const ComponentConfig& config) {
    AlertEvent event;
    event.kind = kind;
    event.probe = config.name;
    event.probe_kind = config.kind;
    event.probe_type = config.type;
    event.tags = config.tags;
    event.at_ms = wall_now_ms();
    return event;
  };
  hooks.changed = [&](size_t index, const OutageRow& row) {
    const ComponentConfig& config = *slots[index];
    AlertEvent event =
        event_of(row.end_ms ? AlertEvent::Kind::outage_closed : AlertEvent::Kind::outage_opened, config);
    event.outage_id = row.id;
    event.start_ms = row.start_ms;
    event.end_ms = row.end_ms.value_or(0);
    event.error = row.error;
    event.detail = row.detail;
    std::optional<std::string> newly_found;
    if (!row.end_ms) {
      auto observation = phases.opened(config.name, row.start_ms, started_ms);
      event.text = std::move(observation.phase_text);
      newly_found = std::move(observation.newly_found);
    }
    alerts->notify(event);
    if (newly_found) {
      AlertEvent found = event;
      found.kind = AlertEvent::Kind::pattern_found;
      found.text = *newly_found;
      alerts->notify(found);
    }
  };
  recorder->set_outage_hooks(std::move(hooks));
  jobs->set_forecast_sink([&](size_t index, const std::string& text) {
    const ComponentConfig& config = *slots[index];
    AlertEvent event = event_of(AlertEvent::Kind::job_forecast, config);
    event.text = text;
    log_warn("job: forecast job={} text={}", config.name, text);
    alerts->notify(event);
  });
  // Pings come from the listener's threads; the loop applies them, each to the job its token named.
  AsyncWake pings_ready(runtime.loop.get(), [&] {
    for (auto& [name, ping] : pings.take()) {
      for (size_t index : active) {
        if (slots[index]->name == name && slots[index].job()) jobs->ping(index, ping);
      }
    }
  });
  pings.set_wake([&] { pings_ready.send(); });
  pings_ready.send();  // any that came before the loop was ready

  loop_watch.emplace(runtime.loop.get(), [&](const BlindWindow& window) {
    log_warn("blind: reason={} start={} duration={}", window.reason, format_iso8601_ms(window.start_ms),
             format_duration_brief(window.end_ms - window.start_ms));
    blind_seconds[window.reason] += static_cast<double>(window.end_ms - window.start_ms) / 1000.0;
    writer->add_blind_window(window);
  });
  scheduler.set_stall_detector([&](int64_t since_mono_us) { return loop_watch->stalled_since(since_mono_us); });

  int exit_code = kExitOk;
  // The one maintenance timer: the writer writes what is queued, the feed gets a snapshot.
  Timer maintenance(runtime.loop.get(), [&] {
    writer->flush(wall_now_ms());
    publish();
  });
  maintenance.start(kFlushEveryMs, kFlushEveryMs);

  bool stopping = false;
  auto finish = [&] {
    loop_watch->stop();
    jobs->stop();
    alerts->stop(0);  // a send still going is abandoned: stopping never waits on an endpoint
    maintenance.stop();
    publish_soon.stop();
    recorder->close_open(wall_now_ms(), "shutdown");
    // The last chance to store what is queued: the writer retries for a while, then the exit status says so.
    writer->flush(wall_now_ms());
    if (!writer->finish(kFinishWithin)) {
      log_error("run: samples could not be stored; exiting with status 1");
      exit_code = 1;
    }
    const auto& lag = scheduler.schedule_lag();
    log_info("run: stopped samples={} schedule_lag_p50_us={} schedule_lag_p99_us={} max_loop_lag_us={}",
             lag.count(), lag.percentile_us(0.5), lag.percentile_us(0.99), loop_watch->max_lag_us());
    runtime.loop.stop();
  };
  auto on_signal = [&] {
    if (!stopping) {
      stopping = true;
      log_info("run: stopping, waiting for probes in flight");
      scheduler.stop(finish);
    } else {
      log_warn("run: second signal, abandoning probes in flight");
      scheduler.abandon();
      finish();
    }
  };
  // SIGHUP: probes.d again, read on a thread of its own (the loop never waits for the disk).
  // Unchanged probes keep their state, schedule and open outages; an invalid directory
  // changes nothing.
  auto apply_reload = [&](const LoadedConfig& next) {
    if (stopping) return;
    if (!next.ok()) {
      for (const ConfigError& error : next.errors) log_error("reload: rejected error={}", error.to_string());
      log_error("reload: rejected {} error{} in {}; the running configuration is kept", next.errors.size(),
                next.errors.size() == 1 ? "" : "s", options.config_dir);
      return;
    }
    const std::vector<ComponentRef> next_configs = next.components();
    const ComponentChanges changes = compare_components(slots, next_configs);
    const int64_t now_ms = wall_now_ms();
    for (size_t index : changes.removed) {
      jobs->remove(index);
      if (auto probe = std::find(probe_slots.begin(), probe_slots.end(), index);
          probe != probe_slots.end()) {
        const auto scheduled = static_cast<size_t>(probe - probe_slots.begin());
        scheduler.remove(scheduled);
        runtime.probes[scheduled].reset();
      }
      recorder->remove_probe(index, now_ms, "removed");
      slots[index] = {};
    }
    std::vector<size_t> order;
    std::vector<ComponentRef> running;
    for (size_t i = 0; i < next_configs.size(); ++i) {
      size_t index = changes.kept[i].value_or(slots.size());
      if (!changes.kept[i]) {
        const ComponentRef config = keep(next_configs[i]);
        const int64_t probe_id = writer->add_probe(config);
        recorder->add_probe(*config, probe_id);
        if (const ProbeConfig* probe = config.probe()) {
          probe_slots.push_back(index);
          scheduler.add(*probe, runtime.add(*probe));
        }
        if (const JobConfig* job = config.job()) jobs->add(index, *job, probe_id, {}, now_ms);
        slots.push_back(config);
      }
      order.push_back(index);
      running.push_back(slots[index]);
    }
    active = std::move(order);
    pings.set_jobs(job_tokens(next.jobs));
    active_configs = std::make_shared<const std::vector<ComponentConfig>>(common_parts(running));
    publish();
    const auto added = static_cast<size_t>(std::count(changes.kept.begin(), changes.kept.end(), std::nullopt));
    log_info("reload: probes={} kept={} added={} removed={}", active.size(), active.size() - added, added,
             changes.removed.size());
  };
  std::mutex reload_mutex;
  std::optional<LoadedConfig> reloaded;  // guarded by reload_mutex
  std::thread reload_thread;
  AsyncWake reload_ready(runtime.loop.get(), [&] {
    std::optional<LoadedConfig> next;
    {
      std::lock_guard lock(reload_mutex);
      next = std::exchange(reloaded, std::nullopt);
    }
    if (!next) return;
    reload_thread.join();
    apply_reload(*next);
  });
  SignalWatcher sighup(runtime.loop.get(), SIGHUP, [&] {
    if (stopping || reload_thread.joinable()) return;  // one reload at a time
    reload_thread = std::thread([&] {
      LoadedConfig next = load_config_directory(options.config_dir);
      {
        std::lock_guard lock(reload_mutex);
        reloaded = std::move(next);
      }
      reload_ready.send();
    });
  });
  SignalWatcher sigterm(runtime.loop.get(), SIGTERM, on_signal);
  SignalWatcher sigint(runtime.loop.get(), SIGINT, on_signal);

  publish();
  log_info("run: started probes={} db={} config={}", configs.size(), options.db_path, options.config_dir);
  log_descriptor_room(open_files_limit, loaded->probes);
  scheduler.start();
  jobs->start();
  runtime.loop.run();
  pings.set_wake(nullptr);  // the listener outlives the loop's handles
  if (reload_thread.joinable()) reload_thread.join();
  return exit_code;
}

}  // namespace blip
