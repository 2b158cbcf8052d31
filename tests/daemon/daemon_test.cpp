// The daemon in-process, on its own loop in a thread (no binary): start-up
// errors, the order of a reload, and what a stop stores, against a real nginx.
#include "blip/daemon/daemon.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::http_config;
using test::TempDir;

DaemonSettings settings_in(const TempDir& dir) {
  DaemonSettings settings;
  settings.config_dir = dir.file("probes.d");
  settings.db_path = dir.file("blip.db");
  settings.retain_ms = 14 * 86'400'000LL;
  settings.retain_rollups_ms = 400 * 86'400'000LL;
  settings.store_queue_ms = 60'000;
  settings.handle_signals = false;
  return settings;
}

LoadedConfig load(const std::string& config_dir) {
  LoadedConfig loaded = load_config_directory(config_dir);
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors.front().to_string());
  return loaded;
}

// Runs a daemon on a thread of its own; its exit status comes back through `exit`.
struct RunningDaemon {
  RunningDaemon(LoadedConfig config, DaemonSettings settings)
      : daemon(std::move(config), std::move(settings)),
        exit(std::async(std::launch::async, [this] { return daemon.run(); })) {}
  ~RunningDaemon() {
    if (exit.valid()) {
      daemon.request_stop();
      exit.wait();
    }
  }
  // Waits up to `within` for the published snapshot to satisfy `holds`.
  bool wait_for(const std::function<bool(const LiveSnapshot&)>& holds,
                std::chrono::milliseconds within = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto snapshot = daemon.snapshot(); snapshot && holds(*snapshot)) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  int stop() {
    daemon.request_stop();
    EXPECT_EQ(exit.wait_for(20s), std::future_status::ready) << "the daemon did not stop";
    return exit.get();
  }

  Daemon daemon;
  std::future<int> exit;
};

std::vector<std::string> probe_names(const LiveSnapshot& snapshot) {
  std::vector<std::string> names;
  for (const ComponentConfig& config : *snapshot.configs) names.push_back(config.name);
  return names;
}

uint64_t samples_seen(const LiveSnapshot& snapshot, size_t probe) {
  uint64_t total = 0;
  for (uint64_t count : snapshot.probes.at(probe).samples_by_status) total += count;
  return total;
}

TEST(DaemonInProcess, StartErrorsAreThrownWithTheirMessage) {
  TempDir dir;
  dir.write(
      "probes.d/jobs.toml",
      "[[job]]\nname = \"backup\"\nschedule = \"0 3 * * *\"\ntoken = \"0123456789abcdef0123\"\n");
  DaemonSettings settings = settings_in(dir);
  try {
    Daemon daemon(load(settings.config_dir), settings);
    FAIL() << "a job without a listener started";
  } catch (const DaemonStartError& error) {
    EXPECT_NE(std::string(error.what()).find("/ping/<token>"), std::string::npos) << error.what();
  }

  // A taken port: the listener fails before the store is opened.
  TempDir other;
  other.write("probes.d/web.toml", http_config("web", "http://127.0.0.1:9/", "100ms", "1s"));
  DaemonSettings first = settings_in(other);
  first.listen = parse_listen_address("127.0.0.1:" + std::to_string(test::free_port()), nullptr);
  ASSERT_TRUE(first.listen);
  Daemon holder(load(first.config_dir), first);
  DaemonSettings second = first;
  second.db_path = other.file("second.db");
  EXPECT_THROW(Daemon(load(second.config_dir), second), DaemonStartError);
  EXPECT_NE(access(second.db_path.c_str(), F_OK), 0) << "the store was opened before the listener";
}

// Removed probes end before added ones start: the removed probe's last sample
// was sent before the added one's first, and nothing of the removed one is
// stored after the reload; an invalid directory changes nothing.
TEST(DaemonInProcess, ReloadRemovesThenAddsAndAnInvalidDirectoryChangesNothing) {
  test::NginxServer nginx;
  TempDir dir;
  dir.write("probes.d/probes.toml", http_config("old", nginx.url("/health"), "100ms", "1s"));
  DaemonSettings settings = settings_in(dir);
  RunningDaemon running(load(settings.config_dir), settings);
  ASSERT_TRUE(running.wait_for([](const LiveSnapshot& s) { return samples_seen(s, 0) >= 5; }));

  dir.write("probes.d/probes.toml", http_config("new", nginx.url("/health"), "100ms", "1s"));
  running.daemon.request_reload();
  ASSERT_TRUE(running.wait_for([](const LiveSnapshot& s) {
    return probe_names(s) == std::vector<std::string>{"new"} && samples_seen(s, 0) >= 5;
  }));

  dir.write("probes.d/probes.toml", "[[probe]]\nname = \"broken\"\ntype = \"nope\"\n");
  running.daemon.request_reload();
  std::this_thread::sleep_for(
      1500ms);  // a reload reads the directory on a thread, then applies on the loop
  const auto after_invalid = running.daemon.snapshot();
  EXPECT_EQ(probe_names(*after_invalid), std::vector<std::string>{"new"});
  ASSERT_EQ(running.stop(), 0);

  Store store(settings.db_path, Store::Mode::read_only);
  const auto old_samples = store.samples("old", 0, INT64_MAX);
  const auto new_samples = store.samples("new", 0, INT64_MAX);
  ASSERT_GE(old_samples.size(), 5u);
  ASSERT_GE(new_samples.size(), 5u);
  EXPECT_LE(old_samples.back().sent_ms, new_samples.front().sent_ms);
  EXPECT_TRUE(store.samples("broken", 0, INT64_MAX).empty());
}

// A stop ends open outages as "shutdown" and stores them and every sample up
// to the stop before run() returns.
TEST(DaemonInProcess, StopClosesOutagesThenStoresEverythingBeforeRunReturns) {
  test::NginxServer nginx;
  TempDir dir;
  dir.write("probes.d/probes.toml",
            http_config("web", nginx.url("/health"), "100ms", "1s") +
                http_config("gone", "http://127.0.0.1:" + std::to_string(test::free_port()) + "/",
                            "100ms", "1s"));
  DaemonSettings settings = settings_in(dir);
  RunningDaemon running(load(settings.config_dir), settings);
  ASSERT_TRUE(running.wait_for(
      [](const LiveSnapshot& s) { return s.probes.at(1).open_outage.has_value(); }));
  std::this_thread::sleep_for(500ms);
  const int64_t stop_ms = wall_now_ms();
  ASSERT_EQ(running.stop(), 0);

  Store store(settings.db_path, Store::Mode::read_only);
  const auto samples = store.samples("web", 0, INT64_MAX);
  ASSERT_FALSE(samples.empty());
  // Sent every 100 ms until the stop: the last one stored is within a second of it.
  EXPECT_GE(samples.back().sent_ms, stop_ms - 1000);
  const auto outages = store.outages(0, INT64_MAX, "gone");
  ASSERT_EQ(outages.size(), 1u);
  ASSERT_TRUE(outages[0].end_ms.has_value())
      << "the open outage was not closed before the writer finished";
  EXPECT_EQ(outages[0].end_reason, "shutdown");
  EXPECT_GE(*outages[0].end_ms, stop_ms);
  EXPECT_TRUE(store.outages(0, INT64_MAX, "web").empty());
}

}  // namespace
}  // namespace blip
