// Text a target or a job sent (an error message, a Redis reply, a job's
// output) made safe to show and store: sanitize_target_text keeps at most its
// cap of valid UTF-8 without control characters; clean_run_output keeps a
// job's output within kMaxRunOutputBytes; the store's detail template (the
// text with its numbers taken out) gives the same detail back.
#include <string>

#include "blip/core/sample.hpp"
#include "blip/jobs/job_monitor.hpp"
#include "blip/store/sample_codec.hpp"
#include "fuzz_input.hpp"

namespace {

// Valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF) with
// no C0, DEL or C1 control character.
bool clean_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      if (lead < 0x20 || lead == 0x7f) return false;
      ++i;
      continue;
    }
    const size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
    if (length == 0 || lead > 0xf4 || i + length > text.size()) return false;
    uint32_t code = lead & (0xff >> (length + 1));
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    if ((length == 3 && code < 0x800) || (length == 4 && (code < 0x10000 || code > 0x10ffff)) ||
        (code >= 0xd800 && code <= 0xdfff) || (code >= 0x80 && code < 0xa0)) {
      return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = blip::fuzz::as_text(data, size);
  for (const size_t cap : {size_t{0}, size_t{7}, blip::kMaxDetailBytes}) {
    const std::string safe = blip::sanitize_target_text(std::string(text), cap);
    if (safe.size() > cap + 3) blip::fuzz::contract_broken("sanitized text over its cap");  // + "…"
    if (!clean_utf8(safe)) blip::fuzz::contract_broken("sanitized text is not clean UTF-8");
  }
  const std::string detail = blip::sanitize_target_text(std::string(text));
  std::string numbers;
  const std::string template_text = blip::detail_template(detail, numbers);
  if (blip::detail_from_template(template_text, numbers) != detail) {
    blip::fuzz::contract_broken("a detail does not come back from its template");
  }
  const std::string output = blip::clean_run_output(text);
  if (output.size() > blip::kMaxRunOutputBytes + 3)
    blip::fuzz::contract_broken("run output over its cap");
  return 0;
}
