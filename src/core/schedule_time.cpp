#include <fmt/format.h>

#include <algorithm>

#include "blip/core/cron.hpp"
#include "blip/core/local_time.hpp"

namespace blip {
namespace {

// A single time starts with a four-digit year and a dash; no cron expression can.
bool looks_like_time_inner(std::string_view start) {
  if (start.size() < 5 || start[4] != '-') return false;
  return std::all_of(start.begin(), start.begin() + 4, [](char c) { return c >= '0' && c <= '9'; });
}

// Reads fixed-width numbers off the front of a string.
class TimeReader {
 public:
  explicit TimeReader(std::string_view text) : text_(text) {}
  bool number(int digits, int& value) {
    if (text_.size() < static_cast<size_t>(digits)) return false;
    value = 0;
    for (int i = 0; i < digits; ++i) {
      char c = text_[static_cast<size_t>(i)];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    text_.remove_prefix(static_cast<size_t>(digits));
    return true;
  }
  bool literal(char c) {
    if (text_.empty() || text_.front() != c) return false;
    text_.remove_prefix(1);
    return true;
  }
  bool one_of(std::string_view chars) {
    if (text_.empty() || chars.find(text_.front()) == std::string_view::npos) return false;
    text_.remove_prefix(1);
    return true;
  }
  char peek() const { return text_.empty() ? '\0' : text_.front(); }
  bool done() const { return text_.empty(); }

 private:
  std::string_view text_;
};

}  // namespace

std::optional<int64_t> parse_maintenance_time(std::string_view start, std::string_view time_zone) {
  using namespace std::chrono;
  TimeReader reader(start);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!reader.number(4, year) || !reader.literal('-') || !reader.number(2, month) ||
      !reader.literal('-') || !reader.number(2, day) || !reader.one_of("Tt ") ||
      !reader.number(2, hour) || !reader.literal(':') || !reader.number(2, minute)) {
    return std::nullopt;
  }
  if (reader.literal(':')) {
    if (!reader.number(2, second)) return std::nullopt;
    if (reader.literal('.')) {
      int digit = 0, digits = 0;
      while (reader.number(1, digit)) {
        if (digits++ < 3) millis = millis * 10 + digit;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i) millis *= 10;
    }
  }
  const date::year_month_day date{date::year{year}, date::month{static_cast<unsigned>(month)},
                                  date::day{static_cast<unsigned>(day)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const auto since_midnight = hours{hour} + minutes{minute} + seconds{second};

  if (reader.done()) {  // local time in `time_zone`
    const date::time_zone* zone = locate_time_zone(time_zone);
    if (zone == nullptr) return std::nullopt;
    const date::sys_seconds instant =
        resolve_local_time(*zone, date::local_days{date} + since_midnight);
    return duration_cast<milliseconds>(instant.time_since_epoch()).count() + millis;
  }
  minutes offset{0};
  if (!reader.one_of("Zz")) {
    const bool east = reader.peek() == '+';
    int offset_hours = 0, offset_minutes = 0;
    if (!reader.one_of("+-") || !reader.number(2, offset_hours) || !reader.literal(':') ||
        !reader.number(2, offset_minutes) || offset_hours > 23 || offset_minutes > 59) {
      return std::nullopt;
    }
    offset = hours{offset_hours} + minutes{offset_minutes};
    if (!east) offset = -offset;
  }
  if (!reader.done()) return std::nullopt;
  const date::sys_seconds instant = date::sys_days{date} + since_midnight - offset;
  return duration_cast<milliseconds>(instant.time_since_epoch()).count() + millis;
}

std::optional<std::string> validate_maintenance_start(const std::string& start,
                                                      const std::string& time_zone) {
  if (locate_time_zone(time_zone) == nullptr) {
    return fmt::format("unknown time zone \"{}\" (like Europe/Berlin or Etc/UTC)", time_zone);
  }
  if (looks_like_time_inner(start)) {
    if (parse_maintenance_time(start, time_zone)) return std::nullopt;
    return fmt::format(
        "\"{}\" is not a time like \"2026-11-25 03:00\" (in time_zone) or \"2026-11-25T03:00:00Z\"",
        start);
  }
  std::string error;
  if (CronSchedule::parse(start, time_zone, &error)) return std::nullopt;
  return error;
}

bool looks_like_single_time(std::string_view start) { return looks_like_time_inner(start); }

}  // namespace blip
