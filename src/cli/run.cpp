// `blip run`: the daemon. Wires scheduler -> sample recorder -> store, plus
// one maintenance timer (flush, retention) and the loop watch.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/probe_runtime.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/loop_watch.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "blip/scheduler/scheduler.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

constexpr uint64_t kFlushEveryMs = 1000;
constexpr int kPruneEveryTicks = 60;

}  // namespace

int run_daemon(const RunOptions& options) {
  auto configs = load_probes_or_report(options.config_dir, std::cerr);
  if (!configs) return kExitUsage;
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
  std::optional<Store> store;
  try {
    store.emplace(options.db_path, Store::Mode::read_write);
  } catch (const StoreError& error) {
    std::cerr << error.what() << '\n';
    return kExitUsage;
  }

  // Whatever a previous run left open ended, as far as we know, when it was last alive.
  const int64_t started_ms = wall_now_ms();
  if (auto last_alive = store->last_alive_ms()) {
    store->close_open_outages(*last_alive, "blip_stopped");
    if (started_ms > *last_alive) store->add_blind_window({*last_alive, started_ms, "not_running"});
  }
  SampleRecorder recorder(*store, *configs);
  ProbeRuntime runtime(*configs);
  Scheduler scheduler(runtime.loop.get(), *configs, runtime.probes,
                      [&](size_t index, const Sample& sample) { recorder.record(index, sample); });

  LoopWatch loop_watch(runtime.loop.get(), [&](const BlindWindow& window) {
    spdlog::warn("blind: reason={} start={} duration={}", window.reason, format_iso8601_ms(window.start_ms),
                 format_duration_brief(window.end_ms - window.start_ms));
    try {
      store->add_blind_window(window);
    } catch (const StoreError& error) {
      spdlog::error("store: blind window write failed err={}", error.what());
    }
  });

  auto flush = [&] {
    try {
      store->flush(wall_now_ms());
      return true;
    } catch (const StoreError& error) {
      spdlog::error("store: flush failed, samples kept for the next try err={}", error.what());
      return false;
    }
  };
  int exit_code = kExitOk;
  int maintenance_ticks = 0;
  Timer maintenance(runtime.loop.get(), [&] {
    flush();
    if (++maintenance_ticks % kPruneEveryTicks == 0) {
      try {
        int64_t removed = store->prune_samples_before(wall_now_ms() - *retain_ms);
        int64_t removed_rollups = store->prune_rollups_before(wall_now_ms() - *retain_rollups_ms);
        if (removed + removed_rollups > 0) {
          spdlog::info("store: pruned sample_blocks={} rollups={}", removed, removed_rollups);
        }
      } catch (const StoreError& error) {
        spdlog::error("store: prune failed err={}", error.what());
      }
    }
  });
  maintenance.start(kFlushEveryMs, kFlushEveryMs);

  bool stopping = false;
  auto finish = [&] {
    loop_watch.stop();
    maintenance.stop();
    try {
      recorder.close_open(wall_now_ms(), "shutdown");
    } catch (const StoreError& error) {
      spdlog::error("store: closing outages failed err={}", error.what());
    }
    // The last chance to store what is buffered: retry a little, then say so in the exit status.
    bool flushed = false;
    for (int attempt = 0; attempt < 3 && !flushed; ++attempt) flushed = flush();
    if (!flushed) {
      spdlog::error("run: samples could not be stored; exiting with status 1");
      exit_code = 1;
    }
    const auto& lag = scheduler.schedule_lag();
    spdlog::info("run: stopped samples={} schedule_lag_p50_us={} schedule_lag_p99_us={} max_loop_lag_us={}",
                 lag.count(), lag.percentile_us(0.5), lag.percentile_us(0.99), loop_watch.max_lag_us());
    runtime.loop.stop();
  };
  auto on_signal = [&] {
    if (!stopping) {
      stopping = true;
      spdlog::info("run: stopping, waiting for probes in flight");
      scheduler.stop(finish);
    } else {
      spdlog::warn("run: second signal, abandoning probes in flight");
      scheduler.abandon();
      finish();
    }
  };
  SignalWatcher sigterm(runtime.loop.get(), SIGTERM, on_signal);
  SignalWatcher sigint(runtime.loop.get(), SIGINT, on_signal);

  spdlog::info("run: started probes={} db={} config={}", configs->size(), options.db_path, options.config_dir);
  scheduler.start();
  runtime.loop.run();
  return exit_code;
}

}  // namespace blip
