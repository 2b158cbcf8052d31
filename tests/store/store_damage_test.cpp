// A damaged database never stops blip (issue 17): at start-up a file SQLite calls
// damaged is moved aside with its -wal and -shm for a new one, and while running a
// damaged sample block costs that block, not the batch. Real SQLite files, damaged
// for real (random bytes over a page, over a block, over an overflow pointer).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "blip/store/store_writer.hpp"
#include "support/damaged_file.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kMinute = 1'700'000'040'000 - 1'700'000'040'000 % 60'000;  // a minute's start

ProbeConfig probe_named(const std::string& name) {
  ProbeConfig probe;
  probe.name = name;
  probe.type = "tcp";
  probe.target_display = "127.0.0.1:1";
  return probe;
}

Sample sample_at(int64_t sent_ms, int64_t latency_us) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.latency_us = latency_us;
  sample.status = Status::up;
  return sample;
}

// Files in `dir` whose name starts with `prefix`, sorted.
std::vector<std::string> files_starting(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void set_mtime(const std::string& path, int64_t wall_ms) {
  const timeval times[2] = {{wall_ms / 1000, (wall_ms % 1000) * 1000},
                            {wall_ms / 1000, (wall_ms % 1000) * 1000}};
  ASSERT_EQ(utimes(path.c_str(), times), 0);
}

// A blip database of a few dozen sample pages: three probes, an hour at 1 Hz with random
// latencies and phases (what a column codec cannot squeeze into a page or two).
void write_some_history(const std::string& path) {
  Store store(path, Store::Mode::read_write);
  std::vector<int64_t> ids;
  for (const char* name : {"web", "db", "redis"})
    ids.push_back(store.register_probe(probe_named(name)));
  std::mt19937_64 random(3);
  const auto up_to_90ms = [&random] { return static_cast<int64_t>(random() % 90'000); };
  for (int64_t t = kMinute; t < kMinute + 3'600'000; t += 1000) {
    for (size_t p = 0; p < ids.size(); ++p) {
      Sample sample = sample_at(t, 1000 + up_to_90ms());
      sample.phases = {up_to_90ms(), up_to_90ms(), up_to_90ms(), up_to_90ms()};
      store.add_sample(ids[p], sample);
    }
    if (t % 60'000 == 59'000) store.flush(t);
  }
  store.flush(kMinute + 3'600'000);
}

TEST(StoreSetAside, GarbageIsMovedAsideWithItsWalAndShmAndANewDatabaseBegins) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  test::write_garbage(path, 64 * 1024, 1);
  test::write_garbage(path + "-wal", 9000, 2);
  test::write_garbage(path + "-shm", 32 * 1024, 3);
  const std::string garbage = test::read_file(path);
  const std::string garbage_wal = test::read_file(path + "-wal");
  const int64_t written_ms = wall_now_ms() - 3'600'000;
  set_mtime(path, written_ms);
  set_mtime(path + "-wal", written_ms - 1000);

  // Without being asked to, a Store refuses it and leaves it as it was.
  EXPECT_THROW(Store(path, Store::Mode::read_write), StoreError);
  EXPECT_EQ(files_starting(dir.path(), "blip.db.damaged"), std::vector<std::string>{});
  EXPECT_EQ(test::read_file(path), garbage);
  EXPECT_EQ(test::read_file(path + "-wal"), garbage_wal);
  set_mtime(path, written_ms);
  set_mtime(path + "-wal", written_ms - 1000);

  const int64_t before_ms = wall_now_ms();
  {
    Store store(path, Store::Mode::read_write, Store::Damaged::set_aside);
    ASSERT_TRUE(store.set_aside());
    const StoreSetAside& aside = *store.set_aside();
    EXPECT_EQ(aside.reason, "file is not a database");
    EXPECT_GE(aside.at_ms, before_ms);
    EXPECT_EQ(aside.since_ms, written_ms) << "from the damaged file's last write";
    EXPECT_EQ(aside.moved_to.rfind(path + ".damaged-", 0), 0U) << aside.moved_to;
    EXPECT_EQ(test::read_file(aside.moved_to), garbage) << "moved as it was found";
    EXPECT_EQ(test::read_file(aside.moved_to + "-wal"), garbage_wal)
        << "its WAL beside it, untouched";
    EXPECT_TRUE(std::filesystem::exists(aside.moved_to + "-shm"));
    const auto blind = store.blind_windows(0, INT64_MAX);
    ASSERT_EQ(blind.size(), 1U);
    EXPECT_EQ(blind[0].reason, "store_damaged");
    EXPECT_EQ(blind[0].start_ms, written_ms);
    EXPECT_EQ(blind[0].end_ms, aside.at_ms);
    const int64_t web = store.register_probe(probe_named("web"));
    store.add_sample(web, sample_at(kMinute, 900));
    store.flush(kMinute);
  }
  EXPECT_EQ(files_starting(dir.path(), "blip.db.damaged").size(), 3U)
      << "the file, its -wal and -shm";
  Store reopened(path, Store::Mode::read_only);
  EXPECT_EQ(reopened.samples("web", 0, INT64_MAX).size(), 1U);
  EXPECT_FALSE(reopened.set_aside());
}

TEST(StoreSetAside, AValidDatabaseWithOneDamagedPageFailsQuickCheckAndIsMovedAside) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  write_some_history(path);
  const auto leaves = test::table_pages(path, "sample_blocks", "leaf");
  ASSERT_GT(leaves.size(), 10U);
  test::overwrite_page(path, leaves[leaves.size() / 2]);
  const std::string damaged = test::read_file(path);
  {
    // It still opens as a blip database of this schema: only quick_check finds the damage.
    Store plain(path, Store::Mode::read_only);
    EXPECT_EQ(plain.probe_names().size(), 3U);
  }
  Store store(path, Store::Mode::read_write, Store::Damaged::set_aside);
  ASSERT_TRUE(store.set_aside());
  EXPECT_EQ(store.set_aside()->reason.rfind("quick_check found damage: ", 0), 0U)
      << store.set_aside()->reason;
  EXPECT_EQ(store.set_aside()->reason.find(path), std::string::npos) << "no path in the reason";
  EXPECT_EQ(test::read_file(store.set_aside()->moved_to), damaged);
  EXPECT_TRUE(store.probe_names().empty()) << "a new database";
  EXPECT_EQ(store.blind_ms_by_reason().count("store_damaged"), 1U);
}

TEST(StoreSetAside, ASoundDatabaseIsKept) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  write_some_history(path);
  Store store(path, Store::Mode::read_write, Store::Damaged::set_aside);
  EXPECT_FALSE(store.set_aside());
  EXPECT_EQ(store.samples("db", 0, INT64_MAX).size(), 3600U);
  EXPECT_EQ(files_starting(dir.path(), "blip.db.damaged"), std::vector<std::string>{});
}

TEST(StoreSetAside, ANewerBlipsDatabaseOrOneInUseIsNeverMoved) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  write_some_history(path);
  test::run_sql(path, "PRAGMA user_version=99");
  const std::string newer = test::read_file(path);
  try {
    Store store(path, Store::Mode::read_write, Store::Damaged::set_aside);
    FAIL() << "opened a schema-99 database";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find("was written by a newer blip (schema 99"),
              std::string::npos)
        << error.what();
  }
  EXPECT_EQ(test::read_file(path), newer);
  EXPECT_EQ(files_starting(dir.path(), "blip.db.damaged"), std::vector<std::string>{});

  // Damaged, but another blip holds it: refused before it is even read.
  test::TempDir other;
  const std::string held = other.file("blip.db");
  { Store first(held, Store::Mode::read_write); }
  Store first(held, Store::Mode::read_write);
  test::overwrite_at(held, 0, "garbage garbage garbage");
  EXPECT_THROW(Store(held, Store::Mode::read_write, Store::Damaged::set_aside), StoreError);
  EXPECT_EQ(files_starting(other.path(), "blip.db.damaged"), std::vector<std::string>{});
}

// The two stores' blocks of minute kMinute: web's damaged, db's sound; then a write of both.
struct DamagedBlockCase {
  test::TempDir dir;
  std::string path = dir.file("blip.db");
  int64_t web = 0;
  int64_t db = 0;

  // web gets `web_samples` samples in the minute's first 30 s (one row), db 30.
  explicit DamagedBlockCase(int web_samples) {
    Store store(path, Store::Mode::read_write);
    web = store.register_probe(probe_named("web"));
    db = store.register_probe(probe_named("db"));
    std::mt19937_64 random(5);
    for (int i = 0; i < web_samples; ++i) {
      store.add_sample(web, sample_at(kMinute + i * 30'000 / web_samples,
                                      static_cast<int64_t>(random() % 3'000'000)));
    }
    for (int i = 0; i < 30; ++i) store.add_sample(db, sample_at(kMinute + i * 1000, 700));
    store.flush(kMinute + 30'000);
  }
  // The second half of the minute and the next minute, as a restarted blip writes them.
  static WriteBatch next_batch(int64_t web, int64_t db) {
    WriteBatch batch;
    batch.alive_ms = kMinute + 120'000;
    for (int64_t t = kMinute + 30'000; t < kMinute + 120'000; t += 1000) {
      batch.samples.emplace_back(web, sample_at(t, 800));
      batch.samples.emplace_back(db, sample_at(t, 700));
    }
    return batch;
  }
};

TEST(StoreDamagedBlock, ABlockThatDoesNotDecodeIsBegunAnewAndTheRestOfTheBatchIsStored) {
  DamagedBlockCase setup(30);
  // Bytes that are no block: a varint that runs past the end.
  test::run_sql(setup.path,
                "UPDATE sample_blocks SET data = x'ffffffffffffffffffff' WHERE probe_id = " +
                    std::to_string(setup.web));
  Store store(setup.path, Store::Mode::read_write);
  const WriteBatch batch = DamagedBlockCase::next_batch(setup.web, setup.db);
  ASSERT_NO_THROW(store.write(batch));
  EXPECT_EQ(store.damaged_blocks(), 1U);
  EXPECT_EQ(store.damaged_dropped_samples(), 0U);
  EXPECT_EQ(store.samples("db", 0, INT64_MAX).size(), 120U)
      << "the other probe's samples, all of them";
  const auto web = store.samples("web", 0, INT64_MAX);
  ASSERT_EQ(web.size(), 90U) << "the damaged block's 30 are lost; the write's 90 are stored";
  EXPECT_EQ(web.front().sent_ms, kMinute + 30'000);
  const auto rollups = store.rollups("web", 0, INT64_MAX);
  ASSERT_EQ(rollups.size(), 2U);
  EXPECT_EQ(rollups[0].count, 30) << "the minute's rollup agrees with its block";
  // Found once: later writes go on without meeting it again.
  WriteBatch later;
  later.alive_ms = kMinute + 180'000;
  later.samples.emplace_back(setup.web, sample_at(kMinute + 125'000, 800));
  ASSERT_NO_THROW(store.write(later));
  EXPECT_EQ(store.damaged_blocks(), 1U);
}

TEST(StoreDamagedBlock, ABlockWhosePagesSqliteCallsCorruptCostsThatBlockOnly) {
  // web's block is large enough to spill into a chain of overflow pages; its first
  // overflow page then points past the end of the file: SQLite says "database disk
  // image is malformed" reading it, and cannot delete it either.
  DamagedBlockCase setup(6000);
  const auto overflow = test::table_pages(setup.path, "sample_blocks", "overflow");
  ASSERT_GE(overflow.size(), 2U);
  test::overwrite_at(setup.path, (overflow[0] - 1) * 4096, std::string("\x7f\xff\xff\xf0", 4));
  Store store(setup.path, Store::Mode::read_write);
  ASSERT_NO_THROW(store.write(DamagedBlockCase::next_batch(setup.web, setup.db)));
  EXPECT_EQ(store.damaged_blocks(), 1U);
  EXPECT_EQ(store.samples("db", 0, INT64_MAX).size(), 120U);
  // web's new samples are stored beside the block that could not be removed.
  const auto rollups = store.rollups("web", 0, INT64_MAX);
  ASSERT_EQ(rollups.size(), 2U);
  EXPECT_EQ(rollups[0].count, 30);
  EXPECT_EQ(rollups[1].count, 60);
  EXPECT_EQ(store.samples("web", kMinute + 120'000, INT64_MAX).size(), 0U);
  WriteBatch later;
  later.alive_ms = kMinute + 240'000;
  for (int64_t t = kMinute + 120'000; t < kMinute + 240'000; t += 1000)
    later.samples.emplace_back(setup.web, sample_at(t, 800));
  ASSERT_NO_THROW(store.write(later))
      << "closing the minute removes its own parts, not the damaged row";
  EXPECT_EQ(store.samples("web", kMinute + 180'000, INT64_MAX).size(), 60U);
  EXPECT_EQ(store.damaged_blocks(), 1U);
}

TEST(StoreDamagedBlock, TheWriterThreadCommitsTheBatchAndCountsTheBlock) {
  DamagedBlockCase setup(30);
  test::run_sql(setup.path,
                "UPDATE sample_blocks SET data = x'ffffffffffffffffffff' WHERE probe_id = " +
                    std::to_string(setup.web));
  auto store = std::make_unique<Store>(setup.path, Store::Mode::read_write);
  StoreWriter writer(std::move(store), setup.path,
                     {{setup.web, probe_named("web")}, {setup.db, probe_named("db")}},
                     StoreWriterOptions{});
  for (const auto& [probe, sample] : DamagedBlockCase::next_batch(setup.web, setup.db).samples) {
    writer.add_sample(probe, sample);
  }
  writer.flush(wall_now_ms());
  ASSERT_TRUE(test::wait_until([&] { return writer.health().queued_samples == 0; },
                               std::chrono::seconds(10)));
  ASSERT_TRUE(writer.finish(std::chrono::seconds(5)));
  const StoreHealth health = writer.health();
  EXPECT_TRUE(health.last_write_ok) << health.last_error;
  EXPECT_EQ(health.damaged_blocks, 1U);
  Store reader(setup.path, Store::Mode::read_only);
  EXPECT_EQ(reader.samples("db", 0, INT64_MAX).size(), 120U);
  EXPECT_EQ(reader.samples("web", 0, INT64_MAX).size(), 90U);
}

}  // namespace
}  // namespace blip
