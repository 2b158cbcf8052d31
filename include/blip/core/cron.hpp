#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace blip {

// A five-field cron expression (minute hour day-of-month month day-of-week,
// as crontab(5): lists, ranges, steps, month and day names, 7 = Sunday, and
// the @hourly/@daily/@weekly/@monthly/@yearly/@annually/@midnight macros),
// read in an IANA time zone. When both day fields are restricted a day
// matches either, as in Vixie cron.
// Daylight saving: a local time that a spring-forward skips fires at the first
// instant after the gap; a local time that a fall-back repeats fires once, at
// its first occurrence.
class CronSchedule {
 public:
  // Nullopt with `error` naming the field and the bad part, or the unknown zone
  // (zones as known_time_zone in core/clock knows them).
  static std::optional<CronSchedule> parse(std::string_view expression, std::string_view time_zone,
                                           std::string* error);
  // The first firing strictly after `wall_ms` (Unix ms); nullopt when there is
  // none within the next 5 years (a 30th of February).
  std::optional<int64_t> next_after(int64_t wall_ms) const;
  const std::string& expression() const { return expression_; }

 private:
  struct Fields;
  CronSchedule(std::string expression, std::shared_ptr<const Fields> fields)
      : expression_(std::move(expression)), fields_(std::move(fields)) {}
  std::string expression_;
  std::shared_ptr<const Fields> fields_;
};

// Nullopt when `start` is a valid cron expression or time in `time_zone`; else the
// problem, without the key (the caller writes "start: <problem>"). A start that
// begins "YYYY-" is a time: RFC 3339 ("2026-11-25T03:00:00Z", "+01:00", seconds
// optional) or local "YYYY-MM-DD HH:MM" read in `time_zone` by CronSchedule's
// daylight-saving rule; anything else is a cron expression.
std::optional<std::string> validate_maintenance_start(const std::string& start,
                                                      const std::string& time_zone);

// The instant of a single-time `start` (as validate_maintenance_start reads it), or nullopt.
std::optional<int64_t> parse_maintenance_time(std::string_view start, std::string_view time_zone);

// Whether `start` is written as one time ("YYYY-…") rather than a cron expression.
bool looks_like_single_time(std::string_view start);

}  // namespace blip
