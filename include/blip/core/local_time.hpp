#pragma once
#include <date/tz.h>

#include <string_view>

namespace blip {

// The IANA zone `name` from the system's tzdata (date's USE_OS_TZDB reads
// /usr/share/zoneinfo), or null when known_time_zone or date does not know it.
// Never throws; the zone lives as long as the process. Thread-safe.
const date::time_zone* locate_time_zone(std::string_view name);

// The instant a local wall time names in `zone`, by the rule cron schedules
// and maintenance times share: a time a spring-forward skips is the first
// instant after the gap, a time a fall-back repeats is its first occurrence.
date::sys_seconds resolve_local_time(const date::time_zone& zone, date::local_seconds local);

}  // namespace blip
