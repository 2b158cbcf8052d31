// Ships a stored history to a remote-write endpoint with blip's own RemoteSender (the code
// `blip run` uses, minus probing) until everything it would send is acknowledged, then prints
// the samples, the points and the CPU time this process used. bench/fleet.sh runs it.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include "blip/core/logging.hpp"
#include "blip/remote/remote_sender.hpp"
#include "blip/remote/series.hpp"
#include "blip/store/store.hpp"

namespace {

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ship a blip database to a remote-write endpoint, then exit"};
  std::string db_path;
  std::string url;
  int timeout_s = 600;
  app.add_option("--db", db_path)->required();
  app.add_option("--url", url)->required();
  app.add_option("--timeout", timeout_s, "give up after this many seconds")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  blip::configure_logging("warn", "text");  // on stderr: stdout is the one result line

  int64_t to_send = 0;  // samples the sender ships: all but each probe's held-back last ones
  std::string vantage;
  auto cursors = std::make_shared<blip::Store>(db_path, blip::Store::Mode::read_write);
  vantage = cursors->vantage();
  for (const blip::StoredComponent& probe : cursors->components()) {
    const int64_t stored = cursors->rollup_totals(probe.name, 0, INT64_MAX).samples;
    to_send += std::max<int64_t>(0, stored - static_cast<int64_t>(blip::settle_samples(probe)));
  }
  std::mutex cursors_mutex;
  int64_t shipped = 0;  // samples whose cursor was saved
  blip::RemoteWriteConfig config;
  config.url = url;
  blip::RemoteSenderOptions options;
  options.db_path = db_path;
  options.vantage = vantage;
  options.retain_ms = INT64_MAX / 2;
  options.catch_up_pause = std::chrono::milliseconds(0);
  const double cpu_before = cpu_seconds();
  const auto started = std::chrono::steady_clock::now();
  blip::RemoteSender sender(config, options, [&](std::vector<blip::ShipCursor> saved) {
    std::lock_guard lock(cursors_mutex);
    blip::WriteBatch batch;
    batch.ship_cursors = std::move(saved);
    cursors->write(batch);
    return true;
  });
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const blip::RemoteWriteStats stats = sender.stats();
    {
      std::lock_guard lock(cursors_mutex);
      shipped = 0;
      for (const auto& [probe, sent_ms] : cursors->ship_cursors(blip::endpoint_label(url))) {
        if (probe.empty()) continue;
        const int64_t minute_ms = sent_ms - sent_ms % 60'000;
        shipped +=
            cursors->rollup_totals(probe, 0, minute_ms).samples +
            static_cast<int64_t>(cursors->samples(probe, minute_ms, sent_ms + 1, false).size());
      }
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (shipped >= to_send || elapsed > timeout_s) {
      sender.stop();
      const double cpu = cpu_seconds() - cpu_before;
      std::cout << fmt::format(
          "vantage={} samples={} of={} points={} rejected={} retried={} seconds={:.2f} "
          "cpu_seconds={:.3f} cpu_ms_per_1000_samples={:.3f}\n",
          vantage, shipped, to_send, stats.sent, stats.rejected, stats.retried, elapsed, cpu,
          shipped > 0 ? cpu * 1e6 / static_cast<double>(shipped) : 0.0);
      return shipped >= to_send ? 0 : 1;
    }
  }
}
