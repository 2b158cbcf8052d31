// CronSchedule::parse on any expression (first line: the time zone, the rest
// the expression), then next_after from a few instants: a firing is always
// strictly later, and the next one after it later again.
#include <string>

#include "blip/core/cron.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = blip::fuzz::as_text(data, size);
  const std::string_view zone = blip::fuzz::take_line(rest);
  if (zone.size() > 64) return 0;
  std::string error;
  const auto schedule = blip::CronSchedule::parse(rest, zone, &error);
  if (!schedule) {
    if (error.empty()) blip::fuzz::contract_broken("a rejected expression says why");
    return 0;
  }
  // 2001-09-09, 2026-03-29 00:59:59.999 UTC (a European spring-forward), 2026-10-25 00:30 UTC
  // (fall-back).
  for (const int64_t from :
       {int64_t{1'000'000'000'000}, int64_t{1'774'745'999'999}, int64_t{1'792'888'200'000}}) {
    const auto next = schedule->next_after(from);
    if (!next) continue;
    if (*next <= from) blip::fuzz::contract_broken("next_after is not after");
    const auto after = schedule->next_after(*next);
    if (after && *after <= *next) blip::fuzz::contract_broken("next_after(next) is not after");
  }
  return 0;
}
