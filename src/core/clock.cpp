#include "blip/core/clock.hpp"

#include <fmt/format.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <system_error>

namespace blip {

namespace {
std::atomic<int64_t> wall_clock_offset_ms{0};  // read from every thread that stamps a time
}  // namespace

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() +
         wall_clock_offset_ms.load(std::memory_order_relaxed);
}

void set_wall_clock_offset_for_testing(int64_t offset_ms) {
  wall_clock_offset_ms.store(offset_ms, std::memory_order_relaxed);
}

int64_t mono_now_us() { return static_cast<int64_t>(uv_hrtime() / 1000); }

std::string format_iso8601_ms(int64_t wall_ms) {
  time_t seconds = static_cast<time_t>(wall_ms / 1000);
  int64_t millis = wall_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
}

bool parse_iso8601_ms(const std::string& text, int64_t& wall_ms) {
  struct tm utc {};
  int millis = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &utc.tm_year, &utc.tm_mon,
                  &utc.tm_mday, &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &consumed) == 6) {
    const char* rest = text.c_str() + consumed;
    if (*rest == '.') {
      int digits = 0;
      ++rest;
      while (*rest >= '0' && *rest <= '9') {
        if (digits < 3) millis = millis * 10 + (*rest - '0');
        ++digits;
        ++rest;
      }
      if (digits == 0) return false;
      for (; digits < 3; ++digits) millis *= 10;
    }
    if (*rest == 'Z') ++rest;
    if (*rest != '\0') return false;
  } else if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
                         &consumed) == 3 &&
             text.size() == static_cast<size_t>(consumed)) {
    utc.tm_hour = utc.tm_min = utc.tm_sec = 0;
  } else {
    return false;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  wall_ms = static_cast<int64_t>(timegm(&utc)) * 1000 + millis;
  return true;
}

bool known_time_zone(const std::string& zone) {
  if (zone == "UTC") return true;
  if (zone.empty() || zone.find("..") != std::string::npos) return false;
  // IANA names are letters, digits and "/_-+": no NUL (the file check would stop at it), no ".tab"
  // files.
  if (!std::all_of(zone.begin(), zone.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
               c == '+';
      })) {
    return false;
  }
  std::error_code error;  // a name too long for a path is not a zone, not an exception
  return std::filesystem::is_regular_file("/usr/share/zoneinfo/" + zone, error);
}

std::string format_local(int64_t wall_ms, const std::string& zone) {
  static std::string current;
  if (current != zone) {
    setenv("TZ", zone.c_str(), 1);
    tzset();
    current = zone;
  }
  time_t seconds = static_cast<time_t>(wall_ms / 1000);
  struct tm local {};
  localtime_r(&seconds, &local);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S %Z", &local);
  return text;
}

}  // namespace blip
