// Nothing around blip blinds it: its database locked by another process, its
// disk full, read-only or gone, blip killed mid-burst, a second blip on the
// same file. Real faults on a real `blip run`; probing goes on through all of
// them and what could be kept is stored once the disk is back.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/damaged_file.hpp"
#include "support/freeze.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::Daemon;
using test::TempDir;
using test::wait_until;

void sleep_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

// Every gap between consecutive samples of each probe is about one interval: nothing was lost.
void expect_every_sample(const Store& store, int64_t from_ms, int64_t to_ms, int64_t interval_ms) {
  for (const std::string& probe : store.probe_names()) {
    SCOPED_TRACE(probe);
    const auto samples = store.samples(probe, from_ms, to_ms);
    ASSERT_GE(samples.size(), static_cast<size_t>((to_ms - from_ms) / interval_ms - 3));
    for (size_t i = 1; i < samples.size(); ++i) {
      ASSERT_LT(samples[i].sent_ms - samples[i - 1].sent_ms, interval_ms * 2)
          << "a gap at " << format_iso8601_ms(samples[i - 1].sent_ms);
    }
  }
}

// A small tmpfs of its own (tests run as root, as CI does); empty when it cannot be mounted.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0) mounted_ = true;
  }
  ~SmallDisk() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Fills what is left with one file.
  void fill() const {
    std::ofstream filler(path_ + "/filler", std::ios::binary);
    const std::string chunk(64 * 1024, 'x');
    while (filler.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
    }
  }
  void unfill() const { std::filesystem::remove(path_ + "/filler"); }

 private:
  std::string path_;
  bool mounted_ = false;
};

ino_t file_inode(const std::string& path) {
  struct stat status {};
  return stat(path.c_str(), &status) == 0 ? status.st_ino : 0;
}

// What blip set aside in `dir` (blip.db.damaged-…), sorted.
std::vector<std::string> damaged_files(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("blip.db.damaged-", 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void set_mtime(const std::string& path, int64_t wall_ms) {
  const timeval times[2] = {{wall_ms / 1000, (wall_ms % 1000) * 1000},
                            {wall_ms / 1000, (wall_ms % 1000) * 1000}};
  ASSERT_EQ(utimes(path.c_str(), times), 0);
}

std::string tcp_probes(int count, int port, const std::string& interval) {
  std::string config;
  for (int i = 0; i < count; ++i) {
    config += fmt::format(
        "[[probe]]\nname = \"port-{}\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{}\"\ninterval = "
        "\"{}\"\n\n",
        i, port, interval);
  }
  return config;
}

TEST(StoreFaults, ALockedDatabaseStallsNeitherProbingNorTheOutageEdges) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, test::http_config("web", nginx.url("/health"), "250ms", "1s"));
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(1s);
  const int64_t from_ms = wall_now_ms();
  // Another process holds the database's write lock for 8 s.
  ChildProcess locker(
      {"sh", "-c",
       "printf 'BEGIN EXCLUSIVE;\\nINSERT OR REPLACE INTO meta(key, value) VALUES(\"lock\", 1);\\n"
       ".shell sleep 8\\nROLLBACK;\\n' | sqlite3 " +
           blip.db()});
  sleep_for(2s);
  const auto [frozen_ms, thawed_ms] = test::freeze_for(nginx, 3s);
  // While locked: probing goes on, samples queue, /healthz says why.
  const double queued = blip.metric("blip_store_pending_samples");
  const auto health = test::http_request(blip.feed_url("/healthz"));
  ASSERT_EQ(locker.wait(20'000), 0);
  const int64_t unlocked_ms = wall_now_ms();
  EXPECT_GE(queued, 12.0) << "at least the freeze's samples wait in the queue";
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_NE(health.body.find("store:"), std::string::npos) << health.body;
  ASSERT_TRUE(wait_until([&] { return blip.metric("blip_store_pending_samples") < 8; }, 10s));
  sleep_for(1500ms);
  const std::string metrics = test::http_request(blip.feed_url("/metrics")).body;
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  const auto outages = store.outages(0, INT64_MAX, "web");
  ASSERT_EQ(outages.size(), 1U) << blip.log();
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(frozen_ms), 500.0);
  ASSERT_TRUE(outages[0].end_ms);
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thawed_ms), 500.0);
  EXPECT_TRUE(store.blind_windows(from_ms, INT64_MAX).empty())
      << "the loop never stalled: " << blip.log();
  expect_every_sample(store, from_ms, unlocked_ms + 1000, 250);
  std::smatch count;
  ASSERT_TRUE(
      std::regex_search(metrics, count, std::regex("blip_store_flush_seconds_count (\\d+)")));
  std::cerr << fmt::format("queued during the lock: {} samples; writes: {}\n", queued,
                           count[1].str());
}

TEST(StoreFaults, AFullDiskDropsTheOldestSamplesAndRecordsTheSpanOnceItHasRoom) {
  TempDir dir;
  SmallDisk disk(dir.file("disk"), "2m");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  test::NginxServer nginx;
  // 4 probes at 100 ms, and a queue of 3 s: full after about 3 s of a full disk.
  Daemon blip(dir, tcp_probes(4, nginx.port(), "100ms"), {"--store-queue", "3s"},
              dir.file("disk/blip.db"));
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(2s);
  disk.fill();
  const int64_t filled_ms = wall_now_ms();
  ASSERT_TRUE(wait_until([&] { return blip.metric("blip_store_dropped_samples_total") > 0; }, 20s))
      << blip.log();
  const auto health = test::http_request(blip.feed_url("/healthz"));
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find("store:"), std::string::npos) << health.body;
  const double probed =
      blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(3s);
  EXPECT_GT(blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}"),
            probed + 20)
      << "probing goes on";
  const double dropped = blip.metric("blip_store_dropped_samples_total");
  EXPECT_GT(dropped, 40.0);
  const int64_t freed_ms = wall_now_ms();
  disk.unfill();
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s))
      << test::http_request(blip.feed_url("/healthz")).body << blip.log();
  sleep_for(1s);
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  std::vector<BlindWindow> dropped_windows;
  for (const BlindWindow& window : store.blind_windows(0, INT64_MAX)) {
    if (window.reason == "store_dropped") dropped_windows.push_back(window);
  }
  ASSERT_EQ(dropped_windows.size(), 1U) << blip.log();
  EXPECT_GE(dropped_windows[0].start_ms, filled_ms - 3000);
  EXPECT_LE(dropped_windows[0].end_ms, freed_ms);
  // What it still held when the disk had room again: the last queue's worth (3 s) before that,
  // less the second at most until the writer's next try, when the oldest kept dropping.
  expect_every_sample(store, freed_ms - 1500, freed_ms + 500, 100);
  EXPECT_TRUE(store.outages(0, INT64_MAX).empty());
}

// A read-only remount is refused while blip holds its files open (EBUSY, measured); the
// immutable flag makes the files read-only under a running blip, for root too, on ext4.
TEST(StoreFaults, ADatabaseMadeReadOnlyIsLoggedProbingGoesOnAndTheQueueIsWrittenWhenItIsWritable) {
  TempDir dir;
  test::NginxServer nginx;
  Daemon blip(dir, tcp_probes(2, nginx.port(), "100ms"));
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(1s);
  const std::vector<std::string> files = {blip.db(), blip.db() + "-wal"};
  auto set_immutable = [&](bool on) {
    for (const std::string& file : files) {
      std::string output;
      if (test::run_command({"chattr", on ? "+i" : "-i", file}, &output) != 0) return output;
    }
    return std::string();
  };
  if (const std::string error = set_immutable(true); !error.empty()) {
    GTEST_SKIP() << "this filesystem cannot make a file immutable: " << error;
  }
  const int64_t read_only_ms = wall_now_ms();
  const bool logged =
      wait_until([&] { return blip.log().find("store: write failed") != std::string::npos; }, 10s);
  const bool unhealthy =
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 503; }, 10s);
  const double probed =
      blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(2s);
  const double probed_later =
      blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  ASSERT_EQ(set_immutable(false), "");
  const int64_t writable_ms = wall_now_ms();
  EXPECT_TRUE(logged) << blip.log();
  const std::string log = blip.log();
  const size_t failed_at = log.find("store: write failed");
  EXPECT_NE(log.find("is not writable"), std::string::npos) << "the log says why";
  if (failed_at != std::string::npos)
    std::cerr << "logged: " << log.substr(failed_at, log.find('\n', failed_at) - failed_at) << "\n";
  EXPECT_TRUE(unhealthy);
  EXPECT_GT(probed_later, probed + 10) << "probing goes on";
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s))
      << blip.log();
  EXPECT_NE(blip.log().find("store: writing again after"), std::string::npos) << blip.log();
  sleep_for(1s);
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  expect_every_sample(store, read_only_ms - 1000, writable_ms + 1000, 100);
  EXPECT_TRUE(store.blind_windows(0, INT64_MAX).empty()) << blip.log();
}

TEST(StoreFaults, ARemovedDatabaseDirectoryIsLoggedProbingGoesOnAndANewFileIsWrittenWhenItIsBack) {
  TempDir dir;
  test::NginxServer nginx;
  std::filesystem::create_directories(dir.file("data"));
  const std::string db = dir.file("data/blip.db");
  Daemon blip(dir, tcp_probes(2, nginx.port(), "100ms"), {}, db);
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(1s);
  std::filesystem::remove_all(dir.file("data"));
  ASSERT_TRUE(wait_until(
      [&] { return blip.log().find("was removed or replaced") != std::string::npos; }, 10s))
      << blip.log();
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 503; }, 10s));
  const double probed =
      blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(2s);
  EXPECT_GT(blip.metric("blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}"),
            probed + 10)
      << "probing goes on";
  std::filesystem::create_directories(dir.file("data"));
  const int64_t recreated_ms = wall_now_ms();
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s))
      << blip.log();
  sleep_for(1500ms);
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(db, Store::Mode::read_only);
  EXPECT_EQ(store.probe_names(), (std::vector<std::string>{"port-0", "port-1"}));
  // The new file holds what was queued while the directory was gone, and all after.
  expect_every_sample(store, recreated_ms - 1500, recreated_ms + 1500, 100);
}

TEST(StoreFaults, KillDashNineInAWriteBurstLeavesAConsistentDatabase) {
  test::RedisServer redis;
  TempDir dir;
  std::string config;
  for (int i = 0; i < 500; ++i) {
    config += fmt::format(
        "[[probe]]\nname = \"redis-{}\"\ntype = \"redis\"\naddress = \"127.0.0.1:{}\"\n"
        "interval = \"50ms\"\ntimeout = \"1s\"\n\n",
        i, redis.port());
  }
  Daemon blip(dir, config);
  sleep_for(5s);
  const int64_t killed_ms = wall_now_ms();
  blip.process().signal(SIGKILL);
  blip.process().wait();
  std::string integrity;
  ASSERT_EQ(test::run_command({"sqlite3", blip.db(), "PRAGMA integrity_check"}, &integrity), 0)
      << integrity;
  EXPECT_EQ(integrity, "ok\n");
  Store store(blip.db(), Store::Mode::read_write);  // opens and recovers the WAL
  int64_t total = 0;
  for (int i = 0; i < 500; i += 50) {
    const std::string probe = fmt::format("redis-{}", i);
    SCOPED_TRACE(probe);
    const auto samples = store.samples(probe, 0, INT64_MAX);
    ASSERT_GE(samples.size(), 10U);
    EXPECT_GE(samples.back().sent_ms, killed_ms - 1000 - 250) << "at most the last second is lost";
  }
  for (const std::string& probe : store.probe_names())
    total += static_cast<int64_t>(store.samples(probe, 0, INT64_MAX).size());
  std::cerr << fmt::format("stored {} samples of 500 probes in about 5 s ({:.0f}/s)\n", total,
                           static_cast<double>(total) / 5.0);
}

TEST(StoreFaults, ASecondBlipOnTheSameDatabaseIsRefused) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon first(dir, tcp_probes(1, nginx.port(), "250ms"));
  ASSERT_TRUE(wait_until(
      [&] { return test::http_request(first.feed_url("/healthz")).status == 200; }, 10s));
  const ino_t inode = file_inode(first.db());
  std::string output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", first.db(),
                               "--listen", "off"},
                              &output),
            2);
  EXPECT_NE(output.find(fmt::format("database {} is in use by another blip (pid {})", first.db(),
                                    first.process().pid())),
            std::string::npos)
      << output;
  EXPECT_TRUE(first.process().running());
  EXPECT_EQ(file_inode(first.db()), inode) << "never moved aside";
  EXPECT_EQ(damaged_files(dir), std::vector<std::string>{});
  ASSERT_EQ(first.stop(), 0) << first.log();
  Store store(first.db(), Store::Mode::read_only);
  EXPECT_TRUE(store.blind_windows(0, INT64_MAX).empty())
      << "the second did not touch the first's data";
}

// Issue 17: a damaged database never stops blip. It is moved aside with its -wal and
// -shm, a new one begins, the gap is a store_damaged blind window, probing goes on,
// /healthz stays 200 (a 503 would restart the container in a loop) and says so.
struct SetAsideSeen {
  std::string health;
  int health_status = 0;
  double set_aside_at = -1;
  double blind_seconds = -1;
  std::string lint;
};

SetAsideSeen run_on_damaged_database(const TempDir& dir, Daemon& blip) {
  SetAsideSeen seen;
  EXPECT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s))
      << blip.log();
  // Samples go into the new file.
  EXPECT_TRUE(wait_until(
      [&] {
        return blip.metric(
                   "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}") > 8;
      },
      10s));
  const auto health = test::http_request(blip.feed_url("/healthz"));
  seen.health = health.body;
  seen.health_status = health.status;
  seen.set_aside_at = blip.metric("blip_store_set_aside_timestamp_seconds");
  seen.blind_seconds = blip.metric("blip_blind_seconds_total{reason=\"store_damaged\"}");
  dir.write("metrics.txt", test::http_request(blip.feed_url("/metrics")).body);
  test::run_command({"sh", "-c", "promtool check metrics < " + dir.file("metrics.txt")},
                    &seen.lint);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(blip.stop(), 0) << blip.log();
  return seen;
}

TEST(StoreFaults, AGarbageDatabaseIsSetAsideAndBlipProbesIntoANewOne) {
  test::NginxServer nginx;
  TempDir dir;
  test::write_garbage(dir.file("blip.db"), 64 * 1024);
  const std::string garbage = test::read_file(dir.file("blip.db"));
  const int64_t last_written_ms = wall_now_ms() - 600'000;
  set_mtime(dir.file("blip.db"), last_written_ms);
  const int64_t started_ms = wall_now_ms();
  Daemon blip(dir, tcp_probes(1, nginx.port(), "100ms"));
  const SetAsideSeen seen = run_on_damaged_database(dir, blip);
  const int64_t stopped_ms = wall_now_ms();

  EXPECT_EQ(seen.health_status, 200);
  EXPECT_NE(seen.health.find(
                "ok\nstore: the database was damaged (file is not a database) and set aside at "),
            std::string::npos)
      << seen.health;
  EXPECT_EQ(seen.health.find(dir.path()), std::string::npos) << "no file path: " << seen.health;
  EXPECT_NEAR(seen.set_aside_at, static_cast<double>(started_ms) / 1000.0, 10.0);
  EXPECT_NEAR(seen.blind_seconds, static_cast<double>(started_ms - last_written_ms) / 1000.0, 10.0);
  EXPECT_EQ(seen.lint, "");
  EXPECT_NE(blip.log().find(
                "store: damaged database set aside path=" + dir.file("blip.db") +
                " reason=\"file is not a database\" moved_to=" + dir.file("blip.db.damaged-")),
            std::string::npos)
      << blip.log();

  const std::vector<std::string> aside = damaged_files(dir);
  ASSERT_EQ(aside.size(), 1U) << "no -wal or -shm beside a file that was never a database";
  EXPECT_EQ(test::read_file(dir.file(aside[0])), garbage) << "kept as it was found";
  Store store(blip.db(), Store::Mode::read_only);
  EXPECT_GE(store.samples("port-0", 0, INT64_MAX).size(), 10U)
      << "samples are stored in the new file";
  const auto blind = store.blind_windows(0, INT64_MAX);
  ASSERT_FALSE(blind.empty());
  EXPECT_EQ(blind[0].reason, "store_damaged");
  EXPECT_NEAR(static_cast<double>(blind[0].start_ms), static_cast<double>(last_written_ms), 1000.0)
      << "from the damaged file's last write";
  EXPECT_GE(blind[0].end_ms, started_ms);
  EXPECT_LE(blind[0].end_ms, stopped_ms);
}

TEST(StoreFaults, ABlipDatabaseWithOneDamagedPageIsSetAsideWithItsWalAndShm) {
  test::NginxServer nginx;
  TempDir dir;
  const std::string db = dir.file("blip.db");
  {
    // An hour of three probes' history, written by blip's own store.
    Store store(db, Store::Mode::read_write);
    std::vector<int64_t> ids;
    for (const char* name : {"port-0", "old-1", "old-2"}) {
      ProbeConfig config;
      config.name = name;
      config.type = "tcp";
      config.target_display = "127.0.0.1:1";
      ids.push_back(store.register_probe(config));
    }
    const int64_t from_ms = wall_now_ms() - 3'600'000;
    std::mt19937_64 random(3);
    for (int64_t t = from_ms; t < from_ms + 3'600'000; t += 1000) {
      for (size_t p = 0; p < ids.size(); ++p) {
        Sample sample;
        sample.sent_ms = t;
        sample.status = Status::up;
        // Random numbers, so that the hour's blocks fill more than a few pages.
        sample.latency_us = 1000 + static_cast<int64_t>(random() % 90'000);
        sample.phases = {
            static_cast<int64_t>(random() % 90'000), static_cast<int64_t>(random() % 90'000),
            static_cast<int64_t>(random() % 90'000), static_cast<int64_t>(random() % 90'000)};
        store.add_sample(ids[p], sample);
      }
      if (t % 60'000 < 1000) store.flush(t);
    }
    store.flush(from_ms + 3'600'000);
  }
  const auto leaves = test::table_pages(db, "sample_blocks", "leaf");
  ASSERT_GT(leaves.size(), 10U);
  test::overwrite_page(db, leaves[leaves.size() / 2]);
  // A WAL with a commit not yet checkpointed, and its shared memory, as a killed blip leaves them.
  test::leave_wal(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('left_in_the_wal', 1)");
  ASSERT_TRUE(std::filesystem::exists(db + "-wal"));
  ASSERT_TRUE(std::filesystem::exists(db + "-shm"));
  const std::string damaged = test::read_file(db);
  const std::string wal = test::read_file(db + "-wal");

  Daemon blip(dir, tcp_probes(1, nginx.port(), "100ms"));
  const SetAsideSeen seen = run_on_damaged_database(dir, blip);
  EXPECT_EQ(seen.health_status, 200);
  EXPECT_NE(seen.health.find("store: the database was damaged (quick_check found damage: "),
            std::string::npos)
      << seen.health;
  EXPECT_GT(seen.set_aside_at, 0.0);
  EXPECT_GE(seen.blind_seconds, 0.0);
  EXPECT_EQ(seen.lint, "");

  const std::vector<std::string> aside = damaged_files(dir);
  ASSERT_EQ(aside.size(), 3U) << "the file, its -wal and its -shm";
  EXPECT_EQ(test::read_file(dir.file(aside[0])), damaged);
  EXPECT_EQ(aside[1], aside[0] + "-shm");
  EXPECT_EQ(aside[2], aside[0] + "-wal");
  EXPECT_EQ(test::read_file(dir.file(aside[2])), wal)
      << "the WAL was not checkpointed into the damaged file";
  Store store(db, Store::Mode::read_only);
  EXPECT_EQ(store.probe_names(), std::vector<std::string>{"port-0"}) << "a new file";
  EXPECT_GE(store.samples("port-0", 0, INT64_MAX).size(), 10U);
  EXPECT_EQ(store.blind_ms_by_reason().count("store_damaged"), 1U);
}

TEST(StoreFaults, ADatabaseOfANewerBlipOrOneBlipCannotReadIsNeverMoved) {
  test::NginxServer nginx;
  TempDir dir;
  dir.write("probes.d/probes.toml", tcp_probes(1, nginx.port(), "100ms"));
  const std::string db = dir.file("blip.db");
  { Store store(db, Store::Mode::read_write); }
  test::run_sql(db, "PRAGMA user_version=99");
  const std::string newer = test::read_file(db);
  std::string output;
  EXPECT_EQ(
      test::run_command(
          {BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", db, "--listen", "off"}, &output),
      2);
  EXPECT_NE(output.find("database " + db + " was written by a newer blip (schema 99"),
            std::string::npos)
      << output;
  EXPECT_EQ(test::read_file(db), newer);
  EXPECT_EQ(damaged_files(dir), std::vector<std::string>{});

  // Unreadable for its permissions: blip as an unprivileged user, the file root's alone.
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run blip as another user";
  test::write_garbage(db, 64 * 1024);
  const std::string garbage = test::read_file(db);
  chmod(db.c_str(), 0600);
  chmod(dir.path().c_str(), 0777);
  chmod(dir.file("probes.d").c_str(), 0755);
  chmod(dir.file("probes.d/probes.toml").c_str(), 0644);
  EXPECT_EQ(test::run_command(
                {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                 BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", db, "--listen", "off"},
                &output),
            2);
  EXPECT_NE(output.find("cannot open database " + db), std::string::npos) << output;
  EXPECT_EQ(test::read_file(db), garbage);
  EXPECT_EQ(damaged_files(dir), std::vector<std::string>{});
}

}  // namespace
}  // namespace blip
