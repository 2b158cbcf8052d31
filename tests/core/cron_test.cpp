#include "blip/core/cron.hpp"

#include <date/date.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace blip {
namespace {

constexpr int64_t kMinute = 60'000;

// Unix ms of a UTC wall time.
int64_t utc(int year, unsigned month, unsigned day, int hour = 0, int minute = 0, int second = 0) {
  using namespace std::chrono;
  const date::sys_days days{date::year{year} / date::month{month} / date::day{day}};
  return duration_cast<milliseconds>(
             (days + hours{hour} + minutes{minute} + seconds{second}).time_since_epoch())
      .count();
}

// "2026-03-29 01:00 Sun" (UTC), for readable failures.
std::string show(int64_t wall_ms) {
  return date::format(
      "%F %R %a", date::sys_time<std::chrono::milliseconds>{std::chrono::milliseconds{wall_ms}});
}

CronSchedule schedule(std::string_view expression, std::string_view zone = "Etc/UTC") {
  std::string error;
  auto parsed = CronSchedule::parse(expression, zone, &error);
  EXPECT_TRUE(parsed) << expression << ": " << error;
  return parsed ? *parsed : *CronSchedule::parse("* * * * *", "Etc/UTC", nullptr);
}

// The next `count` firings after `from_ms`, shown in UTC.
std::vector<std::string> firings(std::string_view expression, std::string_view zone,
                                 int64_t from_ms, int count) {
  const CronSchedule cron = schedule(expression, zone);
  std::vector<std::string> shown;
  int64_t at = from_ms;
  for (int i = 0; i < count; ++i) {
    auto next = cron.next_after(at);
    if (!next) {
      shown.push_back("none");
      break;
    }
    EXPECT_GT(*next, at);
    shown.push_back(show(*next));
    at = *next;
  }
  return shown;
}

using Shown = std::vector<std::string>;

// --- parsing: every form, by what it fires ---

TEST(CronParseTest, EveryMinuteIsStrictlyAfter) {
  EXPECT_EQ(firings("* * * * *", "Etc/UTC", utc(2026, 1, 5, 12, 0, 30), 2),
            (Shown{"2026-01-05 12:01 Mon", "2026-01-05 12:02 Mon"}));
  // A firing's own instant is not after itself.
  EXPECT_EQ(*schedule("* * * * *").next_after(utc(2026, 1, 5, 12, 1)), utc(2026, 1, 5, 12, 2));
  EXPECT_EQ(*schedule("* * * * *").next_after(utc(2026, 1, 5, 12, 1) - 1), utc(2026, 1, 5, 12, 1));
}

TEST(CronParseTest, ListsRangesAndSteps) {
  EXPECT_EQ(firings("5,10-12,*/20 * * * *", "Etc/UTC", utc(2026, 1, 5) - 1, 8),
            (Shown{"2026-01-05 00:00 Mon", "2026-01-05 00:05 Mon", "2026-01-05 00:10 Mon",
                   "2026-01-05 00:11 Mon", "2026-01-05 00:12 Mon", "2026-01-05 00:20 Mon",
                   "2026-01-05 00:40 Mon", "2026-01-05 01:00 Mon"}));
  EXPECT_EQ(firings("10-30/10 9-17/4 * * *", "Etc/UTC", utc(2026, 1, 5), 7),
            (Shown{"2026-01-05 09:10 Mon", "2026-01-05 09:20 Mon", "2026-01-05 09:30 Mon",
                   "2026-01-05 13:10 Mon", "2026-01-05 13:20 Mon", "2026-01-05 13:30 Mon",
                   "2026-01-05 17:10 Mon"}));
  // "N/STEP" runs from N to the field's maximum.
  EXPECT_EQ(firings("50/5 * * * *", "Etc/UTC", utc(2026, 1, 5), 3),
            (Shown{"2026-01-05 00:50 Mon", "2026-01-05 00:55 Mon", "2026-01-05 01:50 Mon"}));
  // Spaces and tabs between fields.
  EXPECT_EQ(firings("  15\t3  * * *  ", "Etc/UTC", utc(2026, 1, 5), 1),
            (Shown{"2026-01-05 03:15 Mon"}));
}

TEST(CronParseTest, MonthAndDayNamesInAnyCase) {
  EXPECT_EQ(firings("0 12 1 jan,MAR-Apr *", "Etc/UTC", utc(2026, 1, 5), 3),
            (Shown{"2026-03-01 12:00 Sun", "2026-04-01 12:00 Wed", "2027-01-01 12:00 Fri"}));
  EXPECT_EQ(firings("0 9 * * Mon-FRI", "Etc/UTC", utc(2026, 1, 9, 10), 2),  // a Friday, after nine
            (Shown{"2026-01-12 09:00 Mon", "2026-01-13 09:00 Tue"}));
  EXPECT_EQ(firings("0 9 * * sat,sun", "Etc/UTC", utc(2026, 1, 5), 3),
            (Shown{"2026-01-10 09:00 Sat", "2026-01-11 09:00 Sun", "2026-01-17 09:00 Sat"}));
}

TEST(CronParseTest, SevenIsSundayLikeZero) {
  const int64_t from = utc(2026, 1, 5);
  EXPECT_EQ(firings("0 0 * * 7", "Etc/UTC", from, 2), firings("0 0 * * 0", "Etc/UTC", from, 2));
  EXPECT_EQ(firings("0 0 * * 7", "Etc/UTC", from, 1), (Shown{"2026-01-11 00:00 Sun"}));
  EXPECT_EQ(firings("0 0 * * 5-7", "Etc/UTC", from, 4),
            (Shown{"2026-01-09 00:00 Fri", "2026-01-10 00:00 Sat", "2026-01-11 00:00 Sun",
                   "2026-01-16 00:00 Fri"}));
}

TEST(CronParseTest, BothDayFieldsRestrictedMatchEither) {
  // Vixie cron: the 13th or any Friday.
  EXPECT_EQ(firings("0 0 13 * fri", "Etc/UTC", utc(2026, 1, 5), 4),
            (Shown{"2026-01-09 00:00 Fri", "2026-01-13 00:00 Tue", "2026-01-16 00:00 Fri",
                   "2026-01-23 00:00 Fri"}));
  // A day field starting with "*" does not count as restricted: both must match
  // (days 1, 11, 21, 31 that are Mondays).
  EXPECT_EQ(firings("0 0 */10 * mon", "Etc/UTC", utc(2026, 1, 1), 3),
            (Shown{"2026-05-11 00:00 Mon", "2026-06-01 00:00 Mon", "2026-08-31 00:00 Mon"}));
  EXPECT_EQ(firings("0 0 1 * *", "Etc/UTC", utc(2026, 1, 5), 1), (Shown{"2026-02-01 00:00 Sun"}));
  EXPECT_EQ(firings("0 0 * * 3", "Etc/UTC", utc(2026, 1, 5), 1), (Shown{"2026-01-07 00:00 Wed"}));
}

TEST(CronParseTest, MacrosAreTheirExpressions) {
  const int64_t from = utc(2026, 5, 17, 13, 27);
  const std::vector<std::pair<std::string_view, std::string_view>> macros{
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"}};
  for (const auto& [macro, expression] : macros) {
    EXPECT_EQ(firings(macro, "Europe/Berlin", from, 3),
              firings(expression, "Europe/Berlin", from, 3))
        << macro;
  }
  EXPECT_EQ(firings("@weekly", "Etc/UTC", from, 1), (Shown{"2026-05-24 00:00 Sun"}));
  EXPECT_EQ(schedule(" @hourly ").expression(), " @hourly ");
}

TEST(CronParseTest, ZonesByTheirIanaNames) {
  EXPECT_TRUE(CronSchedule::parse("0 0 * * *", "UTC", nullptr));
  EXPECT_TRUE(CronSchedule::parse("0 0 * * *", "Etc/UTC", nullptr));
  EXPECT_TRUE(CronSchedule::parse("0 0 * * *", "Asia/Kolkata", nullptr));
  // Midnight in Kolkata (+05:30) is 18:30 UTC the day before.
  EXPECT_EQ(firings("0 0 * * *", "Asia/Kolkata", utc(2026, 1, 5), 1),
            (Shown{"2026-01-05 18:30 Mon"}));
}

struct BadCase {
  std::string_view expression;
  std::string_view zone;
  std::string_view error;
};

const BadCase kBadCases[] = {
    {"", "Etc/UTC", "empty cron expression (like \"30 2 * * *\" or \"@daily\")"},
    {" \t ", "Etc/UTC", "empty cron expression (like \"30 2 * * *\" or \"@daily\")"},
    {"* * * *", "Etc/UTC", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
    {"0 0 * * * 2026", "Etc/UTC",
     "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
    {"61 * * * *", "Etc/UTC", "minute field \"61\": out of range 0-59"},
    {"0 24 * * *", "Etc/UTC", "hour field \"24\": out of range 0-23"},
    {"0 0 0 * *", "Etc/UTC", "day-of-month field \"0\": out of range 1-31"},
    {"0 0 32 * *", "Etc/UTC", "day-of-month field \"32\": out of range 1-31"},
    {"0 0 * 13 *", "Etc/UTC", "month field \"13\": out of range 1-12"},
    {"0 0 * * 8", "Etc/UTC", "day-of-week field \"8\": out of range 0-7"},
    {"1-61 * * * *", "Etc/UTC", "minute field \"61\": out of range 0-59"},
    {"5,99 * * * *", "Etc/UTC", "minute field \"99\": out of range 0-59"},
    {"99999999999 * * * *", "Etc/UTC", "minute field \"99999999999\": out of range 0-59"},
    {"*/0 * * * *", "Etc/UTC", "minute field \"*/0\": bad step, must be a number 1-60"},
    {"*/61 * * * *", "Etc/UTC", "minute field \"*/61\": bad step, must be a number 1-60"},
    {"0 */x * * *", "Etc/UTC", "hour field \"*/x\": bad step, must be a number 1-24"},
    {"0 1-5/ * * *", "Etc/UTC", "hour field \"1-5/\": bad step, must be a number 1-24"},
    {"30-10 * * * *", "Etc/UTC", "minute field \"30-10\": range goes backwards"},
    {"0 0 * foo *", "Etc/UTC", "month field \"foo\": unknown name (use jan-dec)"},
    {"0 0 * mon *", "Etc/UTC", "month field \"mon\": unknown name (use jan-dec)"},
    {"0 0 * * funday", "Etc/UTC", "day-of-week field \"funday\": unknown name (use sun-sat)"},
    {"0 0 * jan-foo *", "Etc/UTC", "month field \"foo\": unknown name (use jan-dec)"},
    {"abc * * * *", "Etc/UTC", "minute field \"abc\": not a number"},
    {"5x * * * *", "Etc/UTC", "minute field \"5x\": not a number"},
    {"? * * * *", "Etc/UTC", "minute field \"?\": not a number"},
    {"1,,2 * * * *", "Etc/UTC", "minute field \"1,,2\": empty list item"},
    {"1, * * * *", "Etc/UTC", "minute field \"1,\": empty list item"},
    {"5- * * * *", "Etc/UTC", "minute field \"5-\": missing number"},
    {"-5 * * * *", "Etc/UTC", "minute field \"-5\": missing number"},
    {"@reboot", "Etc/UTC",
     "unknown macro \"@reboot\" (use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or "
     "@annually)"},
    {"@daily 5", "Etc/UTC", "\"@daily\" takes no other fields"},
    {"0 0 * * *", "Mars/Olympus_Mons",
     "unknown time zone \"Mars/Olympus_Mons\" (like Europe/Berlin or Etc/UTC)"},
    {"0 0 * * *", "", "unknown time zone \"\" (like Europe/Berlin or Etc/UTC)"},
    {"0 0 * * *", "../../etc/passwd",
     "unknown time zone \"../../etc/passwd\" (like Europe/Berlin or Etc/UTC)"},
    {"0 0 * * *", "europe/berlin",
     "unknown time zone \"europe/berlin\" (like Europe/Berlin or Etc/UTC)"},
};

TEST(CronParseTest, BadInputNamesTheFieldAndTheBadPart) {
  for (const BadCase& bad : kBadCases) {
    std::string error;
    EXPECT_FALSE(CronSchedule::parse(bad.expression, bad.zone, &error)) << bad.expression;
    EXPECT_EQ(error, bad.error) << "\"" << bad.expression << "\" in \"" << bad.zone << "\"";
    EXPECT_FALSE(
        CronSchedule::parse(bad.expression, bad.zone, nullptr));  // no error wanted: no crash
  }
}

// --- next_after across daylight saving, month ends, impossible dates ---

TEST(CronNextTest, BerlinSpringForwardFiresAtTheEndOfTheGap) {
  // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 does not exist.
  EXPECT_EQ(firings("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3),
            (Shown{"2026-03-28 01:30 Sat", "2026-03-29 01:00 Sun", "2026-03-30 00:30 Mon"}));
  // A quarter-hourly job fires once at the gap's end for the four skipped times.
  EXPECT_EQ(firings("*/15 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 40), 4),
            (Shown{"2026-03-29 00:45 Sun", "2026-03-29 01:00 Sun", "2026-03-29 01:15 Sun",
                   "2026-03-29 01:30 Sun"}));
}

TEST(CronNextTest, BerlinFallBackFiresOnce) {
  // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 happens twice.
  EXPECT_EQ(firings("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 3),
            (Shown{"2026-10-25 00:30 Sun", "2026-10-26 01:30 Mon", "2026-10-27 01:30 Tue"}));
  // Asked from inside the repeated hour, the first occurrence is behind us.
  EXPECT_EQ(firings("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 1, 10), 1),
            (Shown{"2026-10-26 01:30 Mon"}));
  // Times outside the repeated hour are not disturbed.
  EXPECT_EQ(firings("0 3 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 2),
            (Shown{"2026-10-25 02:00 Sun", "2026-10-26 02:00 Mon"}));
}

TEST(CronNextTest, NewYorkBothChangesOf2026) {
  // 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
  EXPECT_EQ(firings("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 3),
            (Shown{"2026-03-08 07:00 Sun", "2026-03-09 06:30 Mon", "2026-03-10 06:30 Tue"}));
  // 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 happens twice.
  EXPECT_EQ(firings("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 3),
            (Shown{"2026-11-01 05:30 Sun", "2026-11-02 06:30 Mon", "2026-11-03 06:30 Tue"}));
  EXPECT_EQ(firings("0 12 * * *", "America/New_York", utc(2026, 10, 31, 12), 3),
            (Shown{"2026-10-31 16:00 Sat", "2026-11-01 17:00 Sun", "2026-11-02 17:00 Mon"}));
}

TEST(CronNextTest, UtcHasNoGaps) {
  EXPECT_EQ(firings("30 2 * * *", "Etc/UTC", utc(2026, 3, 28, 12), 2),
            (Shown{"2026-03-29 02:30 Sun", "2026-03-30 02:30 Mon"}));
  EXPECT_EQ(firings("30 2 * * *", "Etc/UTC", utc(2026, 10, 24, 12), 2),
            (Shown{"2026-10-25 02:30 Sun", "2026-10-26 02:30 Mon"}));
}

TEST(CronNextTest, TheThirtyFirstSkipsShortMonths) {
  EXPECT_EQ(firings("0 0 31 * *", "Etc/UTC", utc(2026, 1, 31), 6),
            (Shown{"2026-03-31 00:00 Tue", "2026-05-31 00:00 Sun", "2026-07-31 00:00 Fri",
                   "2026-08-31 00:00 Mon", "2026-10-31 00:00 Sat", "2026-12-31 00:00 Thu"}));
  EXPECT_EQ(firings("0 0 29 2 *", "Europe/Berlin", utc(2026, 1, 1), 2),
            (Shown{"2028-02-28 23:00 Mon", "2032-02-28 23:00 Sat"}));
}

TEST(CronNextTest, ImpossibleDatesNeverFire) {
  EXPECT_FALSE(schedule("0 0 30 2 *").next_after(utc(2026, 1, 1)));
  EXPECT_FALSE(schedule("0 0 31 4,6,9,11 *", "America/New_York").next_after(utc(2026, 1, 1)));
  // Either day field can still make it fire, by Vixie's rule.
  EXPECT_EQ(firings("0 0 30 2 mon", "Etc/UTC", utc(2026, 1, 1), 1),
            (Shown{"2026-02-02 00:00 Mon"}));
}

TEST(CronNextTest, ManyCallsStayCheap) {
  // Chained calls over years, and the five-year search for a date that never
  // comes, many times over: steps by fields, never minute by minute.
  const CronSchedule every_seven = schedule("*/7 * * * *", "Europe/Berlin");
  int64_t at = utc(2026, 1, 1);
  int64_t previous = at;
  for (int i = 0; i < 100'000; ++i) {
    at = *every_seven.next_after(at);
    ASSERT_GT(at, previous);
    previous = at;
  }
  const CronSchedule never = schedule("0 0 30 2 *", "America/New_York");
  const CronSchedule yearly = schedule("59 23 31 12 *", "Europe/Berlin");
  for (int i = 0; i < 5'000; ++i) {
    ASSERT_FALSE(never.next_after(utc(2026, 1, 1) + i * kMinute));
    ASSERT_EQ(*yearly.next_after(utc(2026, 1, 1) + i * kMinute), utc(2026, 12, 31, 22, 59));
  }
}

TEST(CronNextTest, OneScheduleServesManyThreads) {
  const CronSchedule cron = schedule("17 */3 * * mon-fri", "America/New_York");
  std::vector<int64_t> expected;
  for (int64_t at = utc(2026, 1, 1); expected.size() < 500;)
    expected.push_back(at = *cron.next_after(at));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      int64_t at = utc(2026, 1, 1);
      for (int64_t want : expected) {
        at = *cron.next_after(at);
        if (at != want) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace blip
