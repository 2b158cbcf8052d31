// Ships a stored history to a remote-write endpoint with blip's own RemoteSender (the code
// `blip run` uses, minus probing) until everything it would send is acknowledged, then prints
// the samples, the points and the CPU time this process used. bench/fleet.sh runs it.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <map>
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
  size_t max_samples = blip::RemoteSenderOptions{}.max_samples_per_request;
  app.add_option("--db", db_path)->required();
  app.add_option("--url", url)->required();
  app.add_option("--timeout", timeout_s, "give up after this many seconds")->capture_default_str();
  app.add_option("--max-samples", max_samples, "raw samples a request at most")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  blip::configure_logging("warn", "text");  // on stderr: stdout is the one result line

  // Where each probe's cursor ends once everything the sender ships is acknowledged (its last
  // samples are held back until later ones come): read before the clock starts.
  int64_t to_send = 0;
  std::map<std::string, int64_t> final_cursors;
  auto cursors = std::make_shared<blip::Store>(db_path, blip::Store::Mode::read_write);
  const std::string vantage = cursors->vantage();
  for (const blip::StoredComponent& probe : cursors->components()) {
    const auto samples = cursors->samples(probe.name, 0, INT64_MAX, false);
    const size_t held = blip::settle_samples(probe);
    if (samples.size() <= held) continue;
    to_send += static_cast<int64_t>(samples.size() - held);
    final_cursors[probe.name] = samples[samples.size() - held - 1].sent_ms;
  }
  std::mutex cursors_mutex;
  blip::RemoteWriteConfig config;
  config.url = url;
  blip::RemoteSenderOptions options;
  options.db_path = db_path;
  options.vantage = vantage;
  options.retain_ms = INT64_MAX / 2;
  options.catch_up_pause = std::chrono::milliseconds(0);
  options.max_samples_per_request = max_samples;
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
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const blip::RemoteWriteStats stats = sender.stats();
    bool done = true;
    {
      std::lock_guard lock(cursors_mutex);
      const auto saved = cursors->ship_cursors(blip::endpoint_label(url));
      for (const auto& [probe, final_ms] : final_cursors) {
        auto cursor = saved.find(probe);
        done = done && cursor != saved.end() && cursor->second >= final_ms;
      }
    }
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (done || elapsed > timeout_s) {
      sender.stop();
      // The sender thread's own CPU: what `blip run` spends per endpoint (not this
      // program's polling).
      const double cpu = sender.stats().cpu_seconds;
      const double process_cpu = cpu_seconds() - cpu_before;
      std::cout << fmt::format(
          "vantage={} samples={} of={} points={} rejected={} retried={} seconds={:.2f} "
          "cpu_seconds={:.3f} cpu_ms_per_1000_samples={:.3f} process_cpu_seconds={:.3f}\n",
          vantage, done ? to_send : 0, to_send, stats.sent, stats.rejected, stats.retried, elapsed,
          cpu, cpu * 1e6 / static_cast<double>(std::max<int64_t>(1, to_send)), process_cpu);
      return done ? 0 : 1;
    }
  }
}
