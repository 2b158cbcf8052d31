#pragma once
#include <cstdint>
#include <string>

namespace blip {

// Wall clock in milliseconds since the Unix epoch (what samples are stamped with).
int64_t wall_now_ms();
// Test seam: from now on wall_now_ms() reads `offset_ms` away from the system
// clock, as after a clock step (LoopWatch's tests); 0 restores it.
void set_wall_clock_offset_for_testing(int64_t offset_ms);
// Monotonic clock in microseconds (what latencies and schedules are measured with).
int64_t mono_now_us();

// "2026-11-25T14:00:03.250Z"
std::string format_iso8601_ms(int64_t wall_ms);
// Accepts "2026-11-25T14:00:03Z", with optional ".mmm" and a date-only form; returns false if
// unparsable.
bool parse_iso8601_ms(const std::string& text, int64_t& wall_ms);

// Whether `zone` names a time zone this machine knows ("Europe/Berlin", "UTC").
bool known_time_zone(const std::string& zone);
// "2026-11-25 15:00:03 CET" in `zone`; the process's TZ is set to it.
std::string format_local(int64_t wall_ms, const std::string& zone);

}  // namespace blip
