// A job's check-in as the feed's listener gets it: the request path
// ("/ping/<token>[/start|/fail|/<status>]") and its duration_ms query value
// (first line the path, the second the value).
#include <string>

#include "blip/jobs/ping_inbox.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = blip::fuzz::as_text(data, size);
  const std::string_view path = blip::fuzz::take_line(rest);
  std::string_view token;
  blip::JobPing ping;
  if (blip::parse_ping_path(path, token, ping)) {
    if (token.empty() || token.find('/') != std::string_view::npos)
      blip::fuzz::contract_broken("bad token");
    if (ping.exit_status && (*ping.exit_status < 0 || *ping.exit_status > 255)) {
      blip::fuzz::contract_broken("exit status out of range");
    }
  }
  const auto duration_ms = blip::parse_ping_duration_ms(blip::fuzz::take_line(rest));
  if (duration_ms && (*duration_ms < 0 || *duration_ms >= 366LL * 86'400'000)) {
    blip::fuzz::contract_broken("duration out of range");
  }
  return 0;
}
