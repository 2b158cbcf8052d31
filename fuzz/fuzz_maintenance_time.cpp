// A maintenance window's start (first line: the time zone, the rest the
// start): validate_maintenance_start and parse_maintenance_time agree, and
// the report's --from/--to reader (parse_iso8601_ms) takes the same text.
#include <string>

#include "blip/core/clock.hpp"
#include "blip/core/cron.hpp"
#include "blip/core/local_time.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = blip::fuzz::as_text(data, size);
  const std::string zone(blip::fuzz::take_line(rest));
  if (zone.size() > 64) return 0;
  const std::string start(rest);
  const auto problem = blip::validate_maintenance_start(start, zone);
  const auto instant = blip::parse_maintenance_time(start, zone);
  // A zone date cannot find makes every start invalid, even one with its own offset.
  if (instant && problem && blip::locate_time_zone(zone) != nullptr) {
    blip::fuzz::contract_broken("a time that parses is reported invalid");
  }
  if (!problem && blip::looks_like_single_time(start) && !instant) {
    blip::fuzz::contract_broken("a valid single time does not parse");
  }
  int64_t wall_ms = 0;
  if (blip::parse_iso8601_ms(start, wall_ms)) blip::format_iso8601_ms(wall_ms);
  return 0;
}
