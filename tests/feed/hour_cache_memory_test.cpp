// What the feed's hour cache holds per probe-hour, counted on the heap: it is the feed's
// largest per-probe cost (1,000 probes x 90 days are 2.16 million hours), so it is kept
// compact. This binary counts what operator new holds, net, which is why it is on its own.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "blip/core/clock.hpp"
#include "blip/feed/history.hpp"
#include "quarter_hour_samples.hpp"
#include "support/process.hpp"

namespace {
std::atomic<int64_t> heap_bytes{0};  // what operator new holds now, as malloc counts it
}  // namespace

void* operator new(std::size_t size) {
  void* block = std::malloc(size == 0 ? 1 : size);
  if (block == nullptr) throw std::bad_alloc();
  heap_bytes += static_cast<int64_t>(malloc_usable_size(block));
  return block;
}
void operator delete(void* block) noexcept {
  if (block == nullptr) return;
  heap_bytes -= static_cast<int64_t>(malloc_usable_size(block));
  std::free(block);
}
void operator delete(void* block, std::size_t) noexcept { operator delete(block); }

namespace blip {
namespace {

constexpr int64_t kDayMs = 86'400'000;

TEST(RollupHourCacheMemory, HoldsAProbeHourInAtMostThirtyTwoBytes) {
  test::TempDir dir;
  const int64_t now = wall_now_ms();
  {
    Store store(dir.file("h.db"), Store::Mode::read_write);
    std::vector<int64_t> ids;
    for (const char* name : {"a", "b"}) {
      ProbeConfig config;
      config.name = name;
      config.type = "tcp";
      config.interval_ms = 900'000;
      config.target_display = "127.0.0.1:1";
      ids.push_back(store.register_probe(config));
    }
    // The feed's 90 days, a sample every 15 minutes: an hour_totals row each hour.
    test::write_quarter_hour_samples(store, ids, now - kFeedDays * kDayMs, now);
  }
  Store store(dir.file("h.db"), Store::Mode::read_only);
  auto fill = [&](RollupHourCache& cache) {
    for (const char* probe : {"a", "b"})
      cache.totals(store, probe, now - kFeedDays * kDayMs, now, now);
  };
  {
    RollupHourCache warm_up;  // the store's own first-use allocations are not the cache's
    fill(warm_up);
  }
  RollupHourCache cache;
  const int64_t before = heap_bytes.load();
  fill(cache);
  const int64_t held = heap_bytes.load() - before;
  const size_t hours = cache.cached_hours();
  ASSERT_GT(hours, 2U * (kFeedDays * 24 - 48)) << "the 90 days were cached";
  // A std::map node of RollupTotals took 112 bytes an hour here.
  EXPECT_LE(held, static_cast<int64_t>(32 * hours)) << held << " bytes for " << hours << " hours";
  // And it still answers what the store answers.
  const RollupTotals cached = cache.totals(store, "a", now - 30 * kDayMs, now, now);
  const RollupTotals direct = store.rollup_totals("a", now - 30 * kDayMs, now);
  EXPECT_EQ(cached.samples, direct.samples);
  EXPECT_EQ(cached.minutes, direct.minutes);
  EXPECT_EQ(cached.first_sample_ms, direct.first_sample_ms);
  EXPECT_EQ(cached.last_minute_ms, direct.last_minute_ms);
}

}  // namespace
}  // namespace blip
