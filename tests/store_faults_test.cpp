// Nothing around blip blinds it: its database locked by another process, its
// disk full, read-only or gone, blip killed mid-burst, a second blip on the
// same file. Real faults on a real `blip run`; probing goes on through all of
// them and what could be kept is stored once the disk is back.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;
using test::ChildProcess;
using test::Daemon;
using test::TempDir;

void sleep_for(std::chrono::milliseconds duration) { std::this_thread::sleep_for(duration); }

// A metric's value from /metrics (the first series whose line starts with `series`), or -1.
double metric(const Daemon& blip, const std::string& series) {
  const std::string body = test::http_request(blip.feed_url("/metrics")).body;
  for (size_t at = body.find("\n" + series); at != std::string::npos; at = body.find("\n" + series, at + 1)) {
    const size_t space = body.find(' ', at + 1 + series.size());
    if (space == std::string::npos) break;
    return std::stod(body.substr(space + 1, body.find('\n', space) - space - 1));
  }
  return -1;
}

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

std::string tcp_probes(int count, int port, const std::string& interval) {
  std::string config;
  for (int i = 0; i < count; ++i) {
    config += fmt::format("[[probe]]\nname = \"port-{}\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{}\"\ninterval = \"{}\"\n\n",
                          i, port, interval);
  }
  return config;
}

TEST(StoreFaults, ALockedDatabaseStallsNeitherProbingNorTheOutageEdges) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, test::http_config("web", nginx.url("/health"), "250ms", "1s"));
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(1s);
  const int64_t from_ms = wall_now_ms();
  // Another process holds the database's write lock for 8 s.
  ChildProcess locker({"sh", "-c",
                       "printf 'BEGIN EXCLUSIVE;\\nINSERT OR REPLACE INTO meta(key, value) VALUES(\"lock\", 1);\\n"
                       ".shell sleep 8\\nROLLBACK;\\n' | sqlite3 " +
                           blip.db()});
  sleep_for(2s);
  const int64_t frozen_ms = wall_now_ms();
  nginx.freeze();
  sleep_for(3s);
  const int64_t thawed_ms = wall_now_ms();
  nginx.thaw();
  // While locked: probing goes on, samples queue, /healthz says why.
  const double queued = metric(blip, "blip_store_pending_samples");
  const auto health = test::http_request(blip.feed_url("/healthz"));
  ASSERT_EQ(locker.wait(20'000), 0);
  const int64_t unlocked_ms = wall_now_ms();
  EXPECT_GE(queued, 12.0) << "at least the freeze's samples wait in the queue";
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_NE(health.body.find("store:"), std::string::npos) << health.body;
  ASSERT_TRUE(wait_until([&] { return metric(blip, "blip_store_pending_samples") < 8; }, 10s));
  sleep_for(1500ms);
  const std::string metrics = test::http_request(blip.feed_url("/metrics")).body;
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  const auto outages = store.outages(0, INT64_MAX, "web");
  ASSERT_EQ(outages.size(), 1U) << blip.log();
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(frozen_ms), 500.0);
  ASSERT_TRUE(outages[0].end_ms);
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thawed_ms), 500.0);
  EXPECT_TRUE(store.blind_windows(from_ms, INT64_MAX).empty()) << "the loop never stalled: " << blip.log();
  expect_every_sample(store, from_ms, unlocked_ms + 1000, 250);
  std::smatch count;
  ASSERT_TRUE(std::regex_search(metrics, count, std::regex("blip_store_flush_seconds_count (\\d+)")));
  std::cerr << fmt::format("queued during the lock: {} samples; writes: {}\n", queued, count[1].str());
}

TEST(StoreFaults, AFullDiskDropsTheOldestSamplesAndRecordsTheSpanOnceItHasRoom) {
  TempDir dir;
  SmallDisk disk(dir.file("disk"), "2m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  test::NginxServer nginx;
  // 4 probes at 100 ms, and a queue of 3 s: full after about 3 s of a full disk.
  Daemon blip(dir, tcp_probes(4, nginx.port(), "100ms"), {"--store-queue", "3s"}, dir.file("disk/blip.db"));
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(2s);
  disk.fill();
  const int64_t filled_ms = wall_now_ms();
  ASSERT_TRUE(wait_until([&] { return metric(blip, "blip_store_dropped_samples_total") > 0; }, 20s)) << blip.log();
  const auto health = test::http_request(blip.feed_url("/healthz"));
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find("store:"), std::string::npos) << health.body;
  const double probed = metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(3s);
  EXPECT_GT(metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}"), probed + 20)
      << "probing goes on";
  const double dropped = metric(blip, "blip_store_dropped_samples_total");
  EXPECT_GT(dropped, 40.0);
  const int64_t freed_ms = wall_now_ms();
  disk.unfill();
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s))
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
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
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
  const bool logged = wait_until([&] { return blip.log().find("store: write failed") != std::string::npos; }, 10s);
  const bool unhealthy = wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 503; }, 10s);
  const double probed = metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(2s);
  const double probed_later = metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  ASSERT_EQ(set_immutable(false), "");
  const int64_t writable_ms = wall_now_ms();
  EXPECT_TRUE(logged) << blip.log();
  const std::string log = blip.log();
  const size_t failed_at = log.find("store: write failed");
  EXPECT_NE(log.find("is not writable"), std::string::npos) << "the log says why";
  if (failed_at != std::string::npos) std::cerr << "logged: " << log.substr(failed_at, log.find('\n', failed_at) - failed_at) << "\n";
  EXPECT_TRUE(unhealthy);
  EXPECT_GT(probed_later, probed + 10) << "probing goes on";
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s)) << blip.log();
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
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s));
  sleep_for(1s);
  std::filesystem::remove_all(dir.file("data"));
  ASSERT_TRUE(wait_until([&] { return blip.log().find("was removed or replaced") != std::string::npos; }, 10s))
      << blip.log();
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 503; }, 10s));
  const double probed = metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}");
  sleep_for(2s);
  EXPECT_GT(metric(blip, "blip_probe_samples_total{probe=\"port-0\",type=\"tcp\",result=\"up\"}"), probed + 10)
      << "probing goes on";
  std::filesystem::create_directories(dir.file("data"));
  const int64_t recreated_ms = wall_now_ms();
  ASSERT_TRUE(wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 10s)) << blip.log();
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
    config += fmt::format("[[probe]]\nname = \"redis-{}\"\ntype = \"redis\"\naddress = \"127.0.0.1:{}\"\n"
                          "interval = \"50ms\"\ntimeout = \"1s\"\n\n",
                          i, redis.port());
  }
  Daemon blip(dir, config);
  sleep_for(5s);
  const int64_t killed_ms = wall_now_ms();
  blip.process().signal(SIGKILL);
  blip.process().wait();
  std::string integrity;
  ASSERT_EQ(test::run_command({"sqlite3", blip.db(), "PRAGMA integrity_check"}, &integrity), 0) << integrity;
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
  for (const std::string& probe : store.probe_names()) total += static_cast<int64_t>(store.samples(probe, 0, INT64_MAX).size());
  std::cerr << fmt::format("stored {} samples of 500 probes in about 5 s ({:.0f}/s)\n", total, static_cast<double>(total) / 5.0);
}

TEST(StoreFaults, ASecondBlipOnTheSameDatabaseIsRefused) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon first(dir, tcp_probes(1, nginx.port(), "250ms"));
  ASSERT_TRUE(wait_until([&] { return test::http_request(first.feed_url("/healthz")).status == 200; }, 10s));
  std::string output;
  EXPECT_EQ(test::run_command({BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", first.db(), "--listen", "off"},
                              &output),
            2);
  EXPECT_NE(output.find(fmt::format("database {} is in use by another blip (pid {})", first.db(), first.process().pid())),
            std::string::npos)
      << output;
  EXPECT_TRUE(first.process().running());
  ASSERT_EQ(first.stop(), 0) << first.log();
  Store store(first.db(), Store::Mode::read_only);
  EXPECT_TRUE(store.blind_windows(0, INT64_MAX).empty()) << "the second did not touch the first's data";
}

}  // namespace
}  // namespace blip
