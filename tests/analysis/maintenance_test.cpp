#include "blip/analysis/maintenance.hpp"

#include <date/date.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

namespace blip {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;

int64_t utc(int year, unsigned month, unsigned day, int hour = 0, int minute = 0) {
  using namespace std::chrono;
  const date::sys_days days{date::year{year} / date::month{month} / date::day{day}};
  return duration_cast<milliseconds>((days + hours{hour} + minutes{minute}).time_since_epoch())
      .count();
}

MaintenanceConfig window(std::string name, std::string start, int64_t duration_ms,
                         std::string zone = "Etc/UTC", Selector selector = {}) {
  MaintenanceConfig config;
  config.name = std::move(name);
  config.start = std::move(start);
  config.duration_ms = duration_ms;
  config.time_zone = std::move(zone);
  config.selector = std::move(selector);
  return config;
}

ProbeConfig probe(std::string name, std::vector<std::string> tags = {}) {
  ProbeConfig config;
  config.name = std::move(name);
  config.tags = std::move(tags);
  return config;
}

// Sundays 03:00 Berlin for two hours: 02:00-04:00 UTC in winter.
TEST(MaintenanceTest, CronWindowIsActiveInsideOnly) {
  const MaintenanceCalendar calendar({window("backup", "0 3 * * sun", 2 * kHour, "Europe/Berlin")});
  const ProbeConfig db = probe("db");
  const int64_t start = utc(2026, 11, 29, 2);  // a Sunday
  EXPECT_FALSE(calendar.active(db, start - 1));
  auto at_start = calendar.active(db, start);
  ASSERT_TRUE(at_start);
  EXPECT_EQ(at_start->name, "backup");
  EXPECT_EQ(at_start->start_ms, start);
  EXPECT_EQ(at_start->end_ms, start + 2 * kHour);
  auto inside = calendar.active(db, start + 90 * kMinute);
  ASSERT_TRUE(inside);
  EXPECT_EQ(inside->start_ms, start);
  EXPECT_TRUE(calendar.active(db, start + 2 * kHour - 1));
  EXPECT_FALSE(calendar.active(db, start + 2 * kHour));  // over after its duration
  EXPECT_FALSE(calendar.active(db, start + 3 * kHour));
  EXPECT_FALSE(calendar.active(db, utc(2026, 11, 30, 2, 30)));  // a Monday
  // In summer the same local time is an hour earlier in UTC.
  auto summer = calendar.active(db, utc(2026, 7, 5, 1, 30));
  ASSERT_TRUE(summer);
  EXPECT_EQ(summer->start_ms, utc(2026, 7, 5, 1));
}

TEST(MaintenanceTest, OverlappingRepeatsGiveTheLatestStart) {
  // Every 10 minutes for an hour: six windows overlap at any time.
  const MaintenanceCalendar calendar({window("rolling", "*/10 * * * *", kHour)});
  auto active = calendar.active(probe("web"), utc(2026, 11, 25, 12, 34));
  ASSERT_TRUE(active);
  EXPECT_EQ(active->start_ms, utc(2026, 11, 25, 12, 30));
  EXPECT_EQ(active->end_ms, utc(2026, 11, 25, 13, 30));
  auto on_a_firing = calendar.active(probe("web"), utc(2026, 11, 25, 12, 40));
  ASSERT_TRUE(on_a_firing);
  EXPECT_EQ(on_a_firing->start_ms, utc(2026, 11, 25, 12, 40));
}

TEST(MaintenanceTest, SingleTimes) {
  const MaintenanceCalendar calendar({
      window("upgrade", "2026-12-01T22:00:00Z", 30 * kMinute),
      window("offset", "2026-12-02T08:00:00+01:00", kHour),
      window("local", "2026-12-03 23:00", kHour, "Europe/Berlin"),
  });
  const ProbeConfig web = probe("web");
  EXPECT_FALSE(calendar.active(web, utc(2026, 12, 1, 21, 59)));
  auto upgrade = calendar.active(web, utc(2026, 12, 1, 22, 10));
  ASSERT_TRUE(upgrade);
  EXPECT_EQ(upgrade->name, "upgrade");
  EXPECT_EQ(upgrade->start_ms, utc(2026, 12, 1, 22));
  EXPECT_EQ(upgrade->end_ms, utc(2026, 12, 1, 22, 30));
  EXPECT_FALSE(calendar.active(web, utc(2026, 12, 1, 22, 30)));
  auto offset = calendar.active(web, utc(2026, 12, 2, 7, 30));
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->start_ms, utc(2026, 12, 2, 7));
  auto local = calendar.active(web, utc(2026, 12, 3, 22, 15));
  ASSERT_TRUE(local);
  EXPECT_EQ(local->name, "local");
  EXPECT_EQ(local->start_ms, utc(2026, 12, 3, 22));
  // Once only: a day later nothing.
  EXPECT_FALSE(calendar.active(web, utc(2026, 12, 2, 22, 10)));
}

TEST(MaintenanceTest, SelectsProbesByNameOrTag) {
  const MaintenanceCalendar calendar({
      window("db-night", "0 1 * * *", kHour, "Etc/UTC", Selector{{"db"}, {}}),
      window("web-night", "0 1 * * *", 2 * kHour, "Etc/UTC", Selector{{}, {"frontend"}}),
  });
  const int64_t at = utc(2026, 11, 25, 1, 30);
  auto db = calendar.active(probe("db", {"storage"}), at);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->name, "db-night");
  auto web = calendar.active(probe("web", {"edge", "frontend"}), at);
  ASSERT_TRUE(web);
  EXPECT_EQ(web->name, "web-night");
  EXPECT_FALSE(calendar.active(probe("redis", {"storage"}), at));
  // Covered by both: the window that ends last.
  auto both = calendar.active(probe("db", {"frontend"}), at);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->name, "web-night");
  EXPECT_FALSE(calendar.active(probe("db", {"storage"}), utc(2026, 11, 25, 2, 30)));
  EXPECT_TRUE(calendar.active(probe("web", {"frontend"}), utc(2026, 11, 25, 2, 30)));
  // An empty selector covers every probe.
  const MaintenanceCalendar everything({window("all", "0 1 * * *", kHour)});
  EXPECT_TRUE(everything.active(probe("anything"), at));
}

TEST(MaintenanceTest, BetweenListsWindowsByStart) {
  const MaintenanceCalendar calendar({
      window("daily", "0 23 * * *", 2 * kHour),
      window("once", "2026-11-26 12:00", kHour, "Europe/Berlin"),
      window("elsewhen", "2027-01-01T00:00:00Z", kHour),
  });
  // From 00:30 on the 25th: the window begun at 23:00 the day before is still running.
  auto windows = calendar.between(utc(2026, 11, 25, 0, 30), utc(2026, 11, 27));
  ASSERT_EQ(windows.size(), 4u);
  EXPECT_EQ(windows[0].name, "daily");
  EXPECT_EQ(windows[0].start_ms, utc(2026, 11, 24, 23));
  EXPECT_EQ(windows[1].name, "daily");
  EXPECT_EQ(windows[1].start_ms, utc(2026, 11, 25, 23));
  EXPECT_EQ(windows[2].name, "once");
  EXPECT_EQ(windows[2].start_ms, utc(2026, 11, 26, 11));
  EXPECT_EQ(windows[2].end_ms, utc(2026, 11, 26, 12));
  EXPECT_EQ(windows[3].name, "daily");
  EXPECT_EQ(windows[3].start_ms, utc(2026, 11, 26, 23));
  // A window that ended exactly at from is not listed; one starting at `to` is not either.
  auto edges = calendar.between(utc(2026, 11, 25, 1), utc(2026, 11, 25, 23));
  EXPECT_TRUE(edges.empty());
  auto starting_at_from = calendar.between(utc(2026, 11, 25, 23), utc(2026, 11, 25, 23, 1));
  ASSERT_EQ(starting_at_from.size(), 1u);
  EXPECT_EQ(starting_at_from[0].start_ms, utc(2026, 11, 25, 23));
  // Many firings stop at the cap.
  const MaintenanceCalendar busy({window("minutely", "* * * * *", kMinute)});
  EXPECT_EQ(busy.between(utc(2026, 1, 1), utc(2026, 2, 1)).size(),
            MaintenanceCalendar::kMaxWindowsPerTable);
}

TEST(MaintenanceTest, ValidatesStarts) {
  EXPECT_EQ(validate_maintenance_start("0 3 * * sun", "Europe/Berlin"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("@weekly", "Etc/UTC"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("2026-12-01T22:00:00Z", "Etc/UTC"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("2026-12-01T22:00:00.250-05:00", "Etc/UTC"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("2026-12-01t22:00z", "Etc/UTC"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("2026-12-01 22:00", "America/New_York"), std::nullopt);
  EXPECT_EQ(validate_maintenance_start("61 3 * * *", "Etc/UTC"),
            "minute field \"61\": out of range 0-59");
  EXPECT_EQ(validate_maintenance_start("0 3 * * *", "Nowhere/Special"),
            "unknown time zone \"Nowhere/Special\" (like Europe/Berlin or Etc/UTC)");
  for (const char* bad : {"2026-13-01 00:00", "2026-02-30 00:00", "2026-12-01 24:00", "2026-12-01",
                          "2026-12-01 22:00 ", "2026-12-01T22:00:00+1:00", "2026-12-01 22:00:61",
                          "2026-12-01T22:00:00.Z"}) {
    EXPECT_EQ(validate_maintenance_start(bad, "Etc/UTC"),
              fmt::format("\"{}\" is not a time like \"2026-11-25 03:00\" (in time_zone) or "
                          "\"2026-11-25T03:00:00Z\"",
                          bad))
        << bad;
  }
}

TEST(MaintenanceTest, LocalTimesFollowTheCronDaylightRule) {
  // Berlin skips 02:00-03:00 on 2026-03-29: 02:30 is the gap's end, 01:00 UTC.
  EXPECT_EQ(parse_maintenance_time("2026-03-29 02:30", "Europe/Berlin"), utc(2026, 3, 29, 1));
  // And repeats 02:00-03:00 on 2026-10-25: 02:30 is its first occurrence, 00:30 UTC.
  EXPECT_EQ(parse_maintenance_time("2026-10-25 02:30", "Europe/Berlin"), utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(parse_maintenance_time("2026-10-25 02:30:15.5", "Europe/Berlin"),
            utc(2026, 10, 25, 0, 30) + 15'500);
  EXPECT_EQ(parse_maintenance_time("2026-10-25 02:30", "Atlantis/Capital"), std::nullopt);
}

}  // namespace
}  // namespace blip
