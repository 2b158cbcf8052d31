// parse_duration_ms ("250ms", "1m30s") on any text: a value is never negative
// nor beyond a century, and format_duration_ms spells it back to the same value.
#include <string>

#include "blip/core/duration.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = blip::fuzz::as_text(data, size);
  std::string error;
  const auto ms = blip::parse_duration_ms(text, &error);
  if (!ms) {
    if (error.empty()) blip::fuzz::contract_broken("a rejected duration says why");
    return 0;
  }
  if (*ms < 0 || *ms > int64_t{100} * 365 * 86'400'000)
    blip::fuzz::contract_broken("duration out of range");
  const std::string spelled = blip::format_duration_ms(*ms);
  if (blip::parse_duration_ms(spelled) != ms)
    blip::fuzz::contract_broken("format_duration_ms does not read back");
  blip::format_duration_brief(*ms);
  return 0;
}
