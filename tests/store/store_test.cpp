#include "blip/store/store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <random>

#include "blip/store/sample_codec.hpp"
#include "support/damaged_file.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

Sample make_sample(int64_t sent_ms, Status status, int64_t latency_us) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.latency_us = latency_us;
  sample.status = status;
  sample.phases = {latency_us / 10, latency_us / 5, 0, latency_us / 2};
  if (status == Status::down) {
    sample.error = ErrorClass::refused;
    sample.detail = "connection refused";
  }
  return sample;
}

// Times are kept to 10 µs.
void expect_same(const Sample& a, const Sample& b) {
  EXPECT_EQ(a.sent_ms, b.sent_ms);
  EXPECT_NEAR(a.latency_us, b.latency_us, 5);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.error, b.error);
  EXPECT_NEAR(a.phases.dns_us, b.phases.dns_us, 5);
  EXPECT_NEAR(a.phases.connect_us, b.phases.connect_us, 5);
  EXPECT_NEAR(a.phases.tls_us, b.phases.tls_us, 5);
  EXPECT_NEAR(a.phases.first_byte_us, b.phases.first_byte_us, 5);
}

ProbeConfig probe_named(const std::string& name) {
  ProbeConfig probe;
  probe.name = name;
  probe.type = "http";
  probe.target_display = "http://127.0.0.1/health";
  return probe;
}

TEST(SampleCodec, RoundTripsRandomSamplesIncludingClockStepsBack) {
  std::mt19937_64 random(42);
  SampleBlockEncoder encoder(1'700'000'000'000);
  std::vector<Sample> written;
  int64_t t = 1'700'000'000'000;
  for (int i = 0; i < 500; ++i) {
    t += static_cast<int64_t>(random() % 400) - 20;  // occasionally backwards
    auto status = static_cast<Status>(random() % 3);
    written.push_back(make_sample(t, status, static_cast<int64_t>(random() % 3'000'000)));
    encoder.append(written.back(), status == Status::down ? 7 : 0);
  }
  auto decoded = decode_sample_block(1'700'000'000'000, encoder.bytes());
  ASSERT_EQ(decoded.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    expect_same(decoded[i].sample, written[i]);
    EXPECT_EQ(decoded[i].detail_id, written[i].status == Status::down ? 7 : 0);
  }
}

TEST(SampleCodec, TypicalSampleTakesFarLessThanAPlainRow) {
  SampleBlockEncoder encoder(0);
  // A loopback HTTP probe at 4 Hz with a little jitter in its send times.
  for (int i = 0; i < 240; ++i)
    encoder.append(make_sample(i * 250 + i % 3, Status::up, 900 + i % 50), 0);
  double bytes_per_sample = static_cast<double>(encoder.bytes().size()) / 240.0;
  EXPECT_LE(bytes_per_sample, 8.0);
}

TEST(SampleCodec, TruncatedBlockIsAnErrorNotACrash) {
  SampleBlockEncoder encoder(0);
  encoder.append(make_sample(5, Status::down, 1'000'000), 3);
  std::string bytes = encoder.bytes();
  EXPECT_THROW(decode_sample_block(0, bytes.substr(0, bytes.size() - 1)), std::runtime_error);
}

// Found by fuzz_sample_codec: a corrupt varint overflowed int64 (UB) instead of being an error.
TEST(SampleCodec, OutOfRangeTimesInACorruptBlockAreAnError) {
  const std::string huge_varint = "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";  // 2^63 - 1
  // Send-time delta 0, header "up, no phases", then a latency of 2^63 - 1 units of 10 µs.
  EXPECT_THROW(decode_sample_block(0, std::string("\x00\x00", 2) + huge_varint),
               std::runtime_error);
  // A delta of delta that puts the send time past int64's range (zigzag 2^63 - 1 is -2^62).
  EXPECT_THROW(decode_sample_block(INT64_MIN + 5, huge_varint + std::string("\x00\x00", 2)),
               std::runtime_error);
  // A send time beyond a century from its block's minute.
  SampleBlockEncoder far(0);
  far.append(make_sample(int64_t{200} * 365 * 86'400'000, Status::up, 1'000), 0);
  EXPECT_THROW(decode_sample_block(0, far.bytes()), std::runtime_error);
}

// A database from before layout 2: its layout-1 blocks read, and a minute a blip before the
// upgrade left open goes on from its part row and is closed in layout 2.
TEST(Store, LayoutOneBlocksFromBeforeStillReadAndTheirOpenMinuteGoesOn) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  const int64_t minute = 1'764'633'600'000;
  int64_t id = 0;
  {
    Store store(path, Store::Mode::read_write);
    id = store.register_probe(probe_named("web"));
  }
  std::vector<Sample> written;
  auto insert_legacy = [&](int64_t base_ms, int from, int to) {
    SampleBlockEncoder block(base_ms, SampleBlockEncoder::Layout::legacy);
    for (int i = from; i < to; ++i) {
      written.push_back(make_sample(minute - 60'000 + 1000 * i,
                                    i % 7 == 3 ? Status::down : Status::up, 1'000 + 37 * i));
      block.append(written.back(), written.back().status == Status::down ? 1 : 0);
    }
    std::string hex;
    for (unsigned char c : block.bytes()) hex += fmt::format("{:02x}", c);
    test::run_sql(path, fmt::format("INSERT INTO sample_blocks(probe_id, minute_ms, count, data) "
                                    "VALUES({}, {}, {}, x'{}')",
                                    id, base_ms, block.count(), hex));
  };
  insert_legacy(minute - 60'000, 0, 60);  // a closed minute
  insert_legacy(minute, 60, 90);          // the first half of the open one, as a part row
  {
    Store store(path, Store::Mode::read_write);
    for (int i = 90; i < 125; ++i) {  // the rest of the minute, and into the next
      written.push_back(make_sample(minute - 60'000 + 1000 * i, Status::up, 2'000 + i));
      store.add_sample(id, written.back());
    }
    store.flush(minute + 65'000);
  }
  Store reader(path, Store::Mode::read_only);
  const auto read = reader.samples("web", 0, INT64_MAX);
  ASSERT_EQ(read.size(), written.size());
  for (size_t i = 0; i < read.size(); ++i) expect_same(read[i], written[i]);
  // The open minute was merged into one row, now in layout 2; the closed one is as it was.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* rows = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT minute_ms, count, hex(substr(data, 1, 2)) FROM "
                               "sample_blocks ORDER BY minute_ms, id",
                               -1, &rows, nullptr),
            SQLITE_OK);
  std::vector<std::string> seen;
  while (sqlite3_step(rows) == SQLITE_ROW) {
    seen.push_back(fmt::format("{} {} {}", (sqlite3_column_int64(rows, 0) - minute) / 60'000,
                               sqlite3_column_int64(rows, 1),
                               reinterpret_cast<const char*>(sqlite3_column_text(rows, 2))));
  }
  sqlite3_finalize(rows);
  sqlite3_close(db);
  ASSERT_EQ(seen.size(), 3U);
  EXPECT_EQ(seen[0].substr(0, 6), "-1 60 ");
  EXPECT_NE(seen[0].substr(6), "0022");
  EXPECT_EQ(seen[1], "0 60 0022");
  EXPECT_EQ(seen[2], "1 5 0022");
}

TEST(Store, SamplesOutagesAndBlindWindowsRoundTrip) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  std::vector<Sample> written;
  {
    Store store(path, Store::Mode::read_write);
    int64_t web = store.register_probe(probe_named("web"));
    for (int i = 0; i < 600; ++i) {  // 2.5 minutes at 4 Hz, spanning minute blocks
      written.push_back(
          make_sample(1'700'000'000'000 + i * 250, i % 50 == 7 ? Status::down : Status::up, 1200));
      store.add_sample(web, written.back());
      if (i % 40 == 0) store.flush(written.back().sent_ms);
    }
    store.flush(1'700'000'200'000);
    OutageRow refused{1,
                      web,
                      OutageKind::outage,
                      std::nullopt,
                      1'700'000'001'000,
                      std::nullopt,
                      ErrorClass::refused,
                      "connection refused",
                      2,
                      ""};
    store.write_outage(refused);
    refused.end_ms = 1'700'000'004'000;
    refused.down_samples = 12;
    refused.end_reason = "recovered";
    store.write_outage(refused);  // the same row again, closed
    store.write_outage({2, web, OutageKind::outage, std::nullopt, 1'700'000'100'000, std::nullopt,
                        ErrorClass::timeout, "slow", 2, ""});
    store.add_blind_window({1'700'000'050'000, 1'700'000'051'000, "loop_stall"});
  }
  Store store(path, Store::Mode::read_only);
  auto samples = store.samples("web", 0, INT64_MAX);
  ASSERT_EQ(samples.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    expect_same(samples[i], written[i]);
    EXPECT_EQ(samples[i].detail, written[i].detail);
  }
  auto outages = store.outages(0, INT64_MAX);
  ASSERT_EQ(outages.size(), 2U);
  EXPECT_EQ(outages[0].probe, "web");
  EXPECT_EQ(outages[0].end_ms, 1'700'000'004'000);
  EXPECT_EQ(outages[0].down_samples, 12);
  EXPECT_EQ(outages[0].error, ErrorClass::refused);
  EXPECT_FALSE(outages[1].end_ms.has_value());
  EXPECT_EQ(store.outages(1'700'000'050'000, INT64_MAX).size(), 1U) << "only the open one overlaps";
  ASSERT_EQ(store.blind_windows(0, INT64_MAX).size(), 1U);
  EXPECT_EQ(store.last_alive_ms(), 1'700'000'200'000);
}

TEST(SampleCodec, DetailTemplatesKeepTheTextAndMoveTheNumbersOut) {
  std::string numbers;
  const std::string text = "replay 12.5 MB behind receive for 31.2s (max_lag 30s), 0 of 3";
  const std::string template_text = detail_template(text, numbers);
  EXPECT_EQ(numbers, "12.5,31.2,30,0,3");
  EXPECT_EQ(template_text.find_first_of("0123456789"), std::string::npos) << template_text;
  EXPECT_EQ(detail_from_template(template_text, numbers), text);
  EXPECT_EQ(detail_template("v1.2.3 at 10.0.0.1:5432.", numbers),
            std::string("v\x1f.\x1f at \x1f.\x1f:\x1f."));
  EXPECT_EQ(detail_from_template(detail_template("v1.2.3 at 10.0.0.1:5432.", numbers), numbers),
            "v1.2.3 at 10.0.0.1:5432.");
  EXPECT_EQ(detail_template("no numbers", numbers), "no numbers");
  EXPECT_EQ(numbers, "");
}

// A standby lagging for an hour, every sample a different detail: the details table holds one
// template, and each sample reads back its own numbers.
TEST(Store, TwentyThousandDistinctLagDetailsInAnHourKeepTheDetailsTableSmall) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  std::vector<Sample> written;
  {
    Store store(path, Store::Mode::read_write);
    const int64_t replica = store.register_probe(probe_named("replica"));
    for (int i = 0; i < 20'000; ++i) {
      Sample sample = make_sample(1'700'000'000'000 + i * 180, Status::down, 900);
      sample.error = ErrorClass::lag;
      sample.detail = fmt::format("replay {:.1f} MB behind receive for {:.1f}s (max_lag 30s)",
                                  1.0 + i * 0.01, 30.0 + i * 0.18);
      written.push_back(sample);
      store.add_sample(replica, sample);
      if (i % 5 == 4) store.flush(sample.sent_ms);
    }
    store.flush(written.back().sent_ms + 60'000);
  }
  std::string count;
  ASSERT_EQ(test::run_command({"sqlite3", path, "SELECT count(*) FROM details"}, &count), 0)
      << count;
  EXPECT_EQ(count, "1\n");
  Store store(path, Store::Mode::read_only);
  const auto samples = store.samples("replica", 0, INT64_MAX);
  ASSERT_EQ(samples.size(), written.size());
  for (size_t i = 0; i < samples.size(); i += 997) EXPECT_EQ(samples[i].detail, written[i].detail);
  EXPECT_EQ(samples.back().detail, written.back().detail);
}

TEST(Store, DetailsThatVaryInMoreThanNumbersStopAtTheBound) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  auto letters = [](int value) {  // a distinct detail without a digit
    std::string text = "error id ";
    for (int i = 0; i < 4; ++i, value /= 26) text += static_cast<char>('a' + value % 26);
    return text;
  };
  {
    Store store(path, Store::Mode::read_write);
    const int64_t web = store.register_probe(probe_named("web"));
    for (int i = 0; i < 10'050; ++i) {
      Sample sample = make_sample(1'700'000'000'000 + i * 50, Status::down, 900);
      sample.detail = letters(i);
      store.add_sample(web, sample);
      if (i % 500 == 499) store.flush(sample.sent_ms);
    }
    store.flush(1'700'001'000'000);
  }
  std::string count;
  ASSERT_EQ(test::run_command({"sqlite3", path, "SELECT count(*) FROM details"}, &count), 0)
      << count;
  EXPECT_EQ(count, "10001\n") << "10,000 kept, and one row that stands in for the rest";
  Store store(path, Store::Mode::read_only);
  const auto samples = store.samples("web", 0, INT64_MAX);
  ASSERT_EQ(samples.size(), 10'050U);
  EXPECT_EQ(samples[9'999].detail, letters(9'999));
  EXPECT_EQ(samples[10'049].detail.rfind("(detail not kept", 0), 0U) << samples[10'049].detail;
}

TEST(Store, RestartWithinAMinuteContinuesItsBlock) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  for (int run = 0; run < 2; ++run) {
    Store store(path, Store::Mode::read_write);
    int64_t web = store.register_probe(probe_named("web"));
    for (int i = 0; i < 10; ++i)
      store.add_sample(web,
                       make_sample(1'700'000'040'000 + run * 10'000 + i * 250, Status::up, 800));
    store.flush(0);
  }
  Store store(path, Store::Mode::read_only);
  EXPECT_EQ(store.samples("web", 0, INT64_MAX).size(), 20U);
  auto rollups = store.rollups("web", 0, INT64_MAX);
  ASSERT_EQ(rollups.size(), 1U);
  EXPECT_EQ(rollups[0].count, 20) << "the rollup counts the first run's samples too";
  EXPECT_NEAR(rollups[0].p50_us, 800, 10);
}

TEST(Store, ClosingOpenOutagesAndPruning) {
  test::TempDir dir;
  Store store(dir.file("blip.db"), Store::Mode::read_write);
  int64_t web = store.register_probe(probe_named("web"));
  store.write_outage({1, web, OutageKind::outage, std::nullopt, 1000, std::nullopt,
                      ErrorClass::timeout, "", 2, ""});
  store.close_open_outages(5000, "shutdown");
  auto outages = store.outages(0, INT64_MAX);
  ASSERT_EQ(outages.size(), 1U);
  EXPECT_EQ(outages[0].end_ms, 5000);
  EXPECT_EQ(outages[0].end_reason, "shutdown");
  store.add_sample(web, make_sample(60'000, Status::up, 1));
  store.add_sample(web, make_sample(180'000, Status::up, 1));
  store.flush(0);
  EXPECT_EQ(store.prune_samples_before(120'000), 1);
  EXPECT_EQ(store.samples("web", 0, INT64_MAX).size(), 1U);
}

TEST(Store, RollupsSummarizeEachMinuteAndOutlivePrunedSamples) {
  test::TempDir dir;
  Store store(dir.file("blip.db"), Store::Mode::read_write);
  int64_t web = store.register_probe(probe_named("web"));
  for (int i = 0; i < 240; ++i) {  // two minutes at 2 Hz; minute 2 has 10 down samples
    Status status = i >= 120 && i < 130 ? Status::down
                    : i % 40 == 0       ? Status::degraded
                                        : Status::up;
    store.add_sample(web, make_sample(60'000 + i * 500, status, 1000 + (i % 120) * 10));
  }
  store.flush(0);
  auto rollups = store.rollups("web", 0, INT64_MAX);
  ASSERT_EQ(rollups.size(), 2U);
  EXPECT_EQ(rollups[0].minute_ms, 60'000);
  EXPECT_EQ(rollups[0].count, 120);
  EXPECT_EQ(rollups[0].down, 0);
  EXPECT_EQ(rollups[0].degraded, 3);
  EXPECT_NEAR(rollups[0].p50_us, 1600, 10);
  EXPECT_NEAR(rollups[0].max_us, 2190, 10);
  EXPECT_EQ(rollups[1].down, 10);
  EXPECT_EQ(store.prune_samples_before(180'000), 2);
  EXPECT_EQ(store.rollups("web", 0, INT64_MAX).size(), 2U)
      << "rollups are kept longer than raw samples";
  EXPECT_EQ(store.prune_rollups_before(120'001), 1);
}

// The writer keeps hour_totals as the rollups' sums, however a minute is written (a part each
// flush, continued after a restart), pruned or migrated: every hour and every range reads the
// same from it as from the minutes themselves.
TEST(Store, HourTotalsAddUpTheRollupsThroughWritesPrunesAndTheMigration) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  constexpr int64_t kHour = 3'600'000;
  const int64_t start = 1'700'000'000'000 - 1'700'000'000'000 % kHour + 17 * 60'000 + 2'500;
  std::mt19937_64 random(5);
  auto expect_agree = [&](const Store& store, const char* when) {
    SCOPED_TRACE(when);
    for (const char* probe : {"web", "db"}) {
      const auto hours = store.hour_totals(probe, 0, INT64_MAX);
      const auto minutes = store.rollup_totals_by(probe, 0, INT64_MAX, kHour);
      ASSERT_EQ(hours.size(), minutes.size()) << probe;
      for (size_t i = 0; i < hours.size(); ++i) {
        ASSERT_EQ(hours[i].minutes, minutes[i].minutes) << probe << " hour " << i;
        ASSERT_EQ(hours[i].first_minute_ms, minutes[i].first_minute_ms) << probe << " hour " << i;
        ASSERT_EQ(hours[i].last_minute_ms, minutes[i].last_minute_ms) << probe << " hour " << i;
        ASSERT_EQ(hours[i].samples, minutes[i].samples) << probe << " hour " << i;
        ASSERT_EQ(hours[i].down, minutes[i].down) << probe << " hour " << i;
        ASSERT_EQ(hours[i].degraded, minutes[i].degraded) << probe << " hour " << i;
        ASSERT_EQ(hours[i].first_sample_ms, minutes[i].first_sample_ms) << probe << " hour " << i;
      }
      std::uniform_int_distribution<int64_t> at(start - kHour, start + 7 * kHour);
      for (int i = 0; i < 200; ++i) {
        int64_t from = at(random), to = at(random);
        if (from > to) std::swap(from, to);
        if (i % 4 == 0) from -= from % kHour;  // whole hours only
        const RollupTotals read = store.rollup_totals(probe, from, to);
        const auto direct = store.rollup_totals_by(probe, from, to, 0);
        const RollupTotals expected = direct.empty() ? RollupTotals{} : direct.front();
        ASSERT_EQ(read.minutes, expected.minutes) << probe << " " << from << ".." << to;
        ASSERT_EQ(read.samples, expected.samples) << probe << " " << from << ".." << to;
        ASSERT_EQ(read.down, expected.down) << probe << " " << from << ".." << to;
        ASSERT_EQ(read.degraded, expected.degraded) << probe << " " << from << ".." << to;
        if (expected.minutes > 0) {
          ASSERT_EQ(read.first_minute_ms, expected.first_minute_ms);
          ASSERT_EQ(read.last_minute_ms, expected.last_minute_ms);
          ASSERT_EQ(read.first_sample_ms, expected.first_sample_ms);
        }
      }
    }
  };
  // Six hours, a sample every 3 s (db: every 5 s, none in its second hour), flushed every 7 s
  // as the daemon's writer would; blip restarts twice in the middle of a minute.
  int64_t t = start;
  for (int run = 0; run < 3; ++run) {
    Store store(path, Store::Mode::read_write);
    const int64_t web = store.register_probe(probe_named("web"));
    const int64_t db = store.register_probe(probe_named("db"));
    for (const int64_t until = start + (run + 1) * 2 * kHour + 31'000; t < until; t += 1'000) {
      const int64_t i = (t - start) / 1'000;
      const Status status = i % 97 < 9 ? Status::down : i % 31 == 0 ? Status::degraded : Status::up;
      if (i % 3 == 0) store.add_sample(web, make_sample(t, status, 1000 + i % 700));
      if (i % 5 == 0 && (t - start) / kHour != 1) store.add_sample(db, make_sample(t, status, 900));
      if (i % 7 == 0) store.flush(t);
    }
    store.flush(t);
    expect_agree(store, "written");
  }
  {
    Store store(path, Store::Mode::read_write);
    // Pruning a step at a time (bounds fall mid-hour), then everything before a mid-hour cutoff.
    const int64_t cutoff = start - start % 60'000 + kHour + 25 * 60'000;
    PruneCounts step;
    do {
      step = store.prune_step({0, cutoff}, 37);
      expect_agree(store, "pruned a step");
    } while (step.more);
    EXPECT_TRUE(store.rollup_totals_by("web", 0, cutoff, 0).empty());
    EXPECT_FALSE(store.hour_totals("web", start, start + kHour + 1).empty())
        << "the cut hour keeps its later minutes";
    store.prune_rollups_before(start + 2 * kHour + 44 * 60'000 + 1);
    expect_agree(store, "pruned before");
  }
  // A schema-11 database (no hour_totals) is migrated: the table is filled from its rollups.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "DROP TABLE hour_totals; PRAGMA user_version=11", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  { Store migrated(path, Store::Mode::read_write); }
  Store store(path, Store::Mode::read_only);
  expect_agree(store, "migrated");
  EXPECT_GT(store.hour_totals("web", 0, INT64_MAX).size(), 3U);
}

// The soak's heap grew about 9 KiB a minute for hours and was freed at exit:
// SQLite's page caches filling as the database grew. Each connection's stops at
// Store::kPageCacheKiB, however large the database, and sqlite_memory() sees it.
TEST(Store, EachConnectionsPageCacheStopsAtItsBoundWhateverTheDatabaseSize) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  const int64_t bound = int64_t{Store::kPageCacheKiB} * 1024;
  const int64_t before = sqlite_memory().page_cache_bytes;
  Store writer(path, Store::Mode::read_write);
  std::vector<int64_t> ids;
  for (int p = 0; p < 40; ++p)
    ids.push_back(writer.register_probe(probe_named(fmt::format("probe-{}", p))));
  // Latencies that vary sample to sample keep the blocks from packing into almost nothing.
  int64_t t = 1'700'000'000'000;
  for (int minute = 0; minute < 120; ++minute) {
    for (int tick = 0; tick < 60; ++tick, t += 1000) {
      for (size_t p = 0; p < ids.size(); ++p) {
        Sample sample = make_sample(t, (tick + p) % 7 == 0 ? Status::down : Status::up,
                                    1000 + (t / 7 + p * 13) % 90'000);
        writer.add_sample(ids[p], sample);
      }
    }
    writer.flush(t);
  }
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(path)) +
                             static_cast<int64_t>(std::filesystem::file_size(path + "-wal"));
  ASSERT_GT(file_bytes, 3 * bound)
      << "the database must outgrow the cache for this to mean anything";
  const int64_t writing = sqlite_memory().page_cache_bytes - before;
  EXPECT_GT(writing, bound / 2) << "the writer's cache filled";
  EXPECT_LE(writing, bound + 64 * 1024);

  Store reader(path, Store::Mode::read_only);
  size_t read = 0;
  for (int p = 0; p < 40; ++p)
    read += reader.samples(fmt::format("probe-{}", p), 0, INT64_MAX).size();
  EXPECT_EQ(read, 40u * 120 * 60);
  const SqliteMemory both = sqlite_memory();
  EXPECT_GT(both.page_cache_bytes - before, bound + bound / 2) << "the reader's cache filled too";
  EXPECT_LE(both.page_cache_bytes - before, 2 * bound + 128 * 1024);
  EXPECT_GE(both.used_bytes, both.page_cache_bytes);
}

TEST(Store, BrownoutsAndIncidentsAreStoredApart) {
  test::TempDir dir;
  Store store(dir.file("blip.db"), Store::Mode::read_write);
  int64_t web = store.register_probe(probe_named("web"));
  int64_t db = store.register_probe(probe_named("db"));
  const int64_t incident = 1;
  store.write_incident({incident, 1000, std::nullopt});
  store.write_outage(
      {1, db, OutageKind::outage, incident, 1000, std::nullopt, ErrorClass::timeout, "", 2, ""});
  store.write_outage({2, web, OutageKind::brownout, std::nullopt, 2000, std::nullopt,
                      ErrorClass::none, "", 2, ""});
  store.close_open_outages(9000, "shutdown");
  auto outages = store.outages(0, INT64_MAX);
  ASSERT_EQ(outages.size(), 1U);
  EXPECT_EQ(outages[0].incident_id, incident);
  auto brownouts = store.outages(0, INT64_MAX, "", OutageKind::brownout);
  ASSERT_EQ(brownouts.size(), 1U);
  EXPECT_EQ(brownouts[0].probe, "web");
}

TEST(Store, RefusesADatabaseFromANewerBlip) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  { Store store(path, Store::Mode::read_write); }
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  for (auto mode : {Store::Mode::read_write, Store::Mode::read_only}) {
    try {
      Store store(path, mode);
      FAIL() << "opened a schema-99 database";
    } catch (const StoreError& error) {
      EXPECT_EQ(std::string(error.what()),
                "database " + path + " was written by a newer blip (schema 99, this blip knows " +
                    std::to_string(Store::kSchemaVersion) + ")");
    }
  }
}

TEST(Store, UnopenablePathsNameTheFile) {
  try {
    Store store("/nonexistent-dir/blip.db", Store::Mode::read_write);
    FAIL();
  } catch (const StoreError& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot open database /nonexistent-dir/blip.db: No such file or directory");
  }
  test::TempDir dir;
  dir.write("not-a-db", "this is plain text, not SQLite\n");
  EXPECT_THROW(Store(dir.file("not-a-db"), Store::Mode::read_only), StoreError);
}

}  // namespace
}  // namespace blip

namespace blip {
namespace {

TEST(RunningPercentile, AgreesWithSortingAfterEveryInsert) {
  std::mt19937_64 random(3);
  std::uniform_int_distribution<int64_t> latency(0, 5000);
  for (double fraction : {0.0, 0.5, 0.95, 1.0}) {
    RunningPercentile running(fraction);
    std::vector<int64_t> values;
    for (int i = 0; i < 500; ++i) {
      values.push_back(i % 7 == 0 ? 100 : latency(random));  // with repeats
      running.add(values.back());
      std::vector<int64_t> sorted = values;
      std::sort(sorted.begin(), sorted.end());
      const size_t position = std::min(
          sorted.size() - 1, static_cast<size_t>(fraction * static_cast<double>(sorted.size())));
      ASSERT_EQ(running.value(), sorted[position])
          << "fraction " << fraction << " after " << values.size();
    }
  }
}

}  // namespace
}  // namespace blip

namespace blip {
namespace {

// The operator's words (issue 21): stored in the batch's transaction, read back by incident,
// the latest one for the alerts, and notices while they are shown.
TEST(Store, NotesAndNoticesRoundTrip) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  {
    Store store(path, Store::Mode::read_write);
    store.write_incident({4, 1000, 2000});
    WriteBatch batch;
    batch.notes = {{0, 4, "identified", "disk lock", 1500}, {0, 4, "resolved", "moved", 2500}};
    batch.notices = {{0, "forever", {"web", "db"}, std::nullopt, 100},
                     {0, "until 5000", {}, 5000, 200}};
    store.write(batch);
  }
  Store store(path, Store::Mode::read_only);
  EXPECT_TRUE(store.incident_exists(4));
  EXPECT_FALSE(store.incident_exists(5));
  const std::vector<IncidentNoteRow> notes = store.incident_notes({4, 5});
  ASSERT_EQ(notes.size(), 2U);
  EXPECT_EQ(notes[0].text, "disk lock");
  EXPECT_EQ(notes[1].status, "resolved");
  EXPECT_EQ(store.latest_incident_note(4)->text, "moved");
  EXPECT_FALSE(store.latest_incident_note(5));
  std::vector<NoticeRow> shown = store.notices_shown_at(4999);
  ASSERT_EQ(shown.size(), 2U);
  EXPECT_EQ(shown[0].components, (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(shown[1].until_ms, 5000);
  shown = store.notices_shown_at(5000);
  ASSERT_EQ(shown.size(), 1U);
  EXPECT_EQ(shown[0].text, "forever");
}

// What the alerts told of an incident (issue 21): written whole in the batch's transaction
// (a second write replaces the first, members included), read back at start-up, and gone
// once done.
TEST(Store, AlertIncidentRecordsRoundTripAndGoWhenDone) {
  test::TempDir dir;
  const std::string path = dir.file("blip.db");
  const AlertIncidentMemberRow root{
      "db-write", "postgres", ErrorClass::timeout, "no answer within 1s", 1000, 0, true};
  const AlertIncidentMemberRow joined{"web", "http", ErrorClass::http_status, "503", 1400,
                                      0,     false};
  {
    Store store(path, Store::Mode::read_write);
    WriteBatch batch;
    batch.alert_incidents = {{"pager", 7, "opened", true, {root}, 2000, false},
                             {"pager", 7, "grew", false, {root, joined}, 3000, false},
                             {"mail", 7, "opened", false, {root}, 2000, false},
                             {"pager", 9, "opened", false, {joined}, 2000, false}};
    store.write(batch);
    batch.alert_incidents = {{"pager", 9, "", false, {}, 4000, true}};
    store.write(batch);
  }
  Store store(path, Store::Mode::read_only);
  const std::vector<AlertIncidentRow> rows = store.alert_incidents();
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].alert, "mail");
  const AlertIncidentRow& pager = rows[1];
  EXPECT_EQ(pager.alert, "pager");
  EXPECT_EQ(pager.incident_id, 7);
  EXPECT_EQ(pager.last_message, "grew");
  EXPECT_FALSE(pager.pending);
  EXPECT_EQ(pager.updated_ms, 3000);
  ASSERT_EQ(pager.members.size(), 2U);
  EXPECT_EQ(pager.members[0].probe, "db-write");
  EXPECT_EQ(pager.members[0].error, ErrorClass::timeout);
  EXPECT_EQ(pager.members[0].detail, "no answer within 1s");
  EXPECT_TRUE(pager.members[0].told);
  EXPECT_EQ(pager.members[1].probe_type, "http");
  EXPECT_EQ(pager.members[1].down_ms, 1400);
  EXPECT_EQ(pager.members[1].up_ms, 0);
  EXPECT_FALSE(pager.members[1].told);
}

}  // namespace
}  // namespace blip
