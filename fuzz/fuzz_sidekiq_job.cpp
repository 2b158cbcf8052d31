// What the Redis probe's sidekiq mode reads from a server: the oldest job of
// a queue (JSON as Sidekiq LPUSHes it) and a process's "beat" field. Either
// gives a finite number of seconds or nothing (a problem for the job).
#include <cmath>
#include <string>

#include "blip/probes/sidekiq.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = blip::fuzz::as_text(data, size);
  std::string problem;
  const auto enqueued_s = blip::sidekiq_enqueued_at_s(text, problem);
  if (!enqueued_s && problem.empty())
    blip::fuzz::contract_broken("a job without enqueued_at says why");
  if (enqueued_s && !std::isfinite(*enqueued_s))
    blip::fuzz::contract_broken("enqueued_at is not finite");
  const auto beat_s = blip::sidekiq_beat_s(text);
  // A beat of "inf" would make a dead process look alive for ever.
  if (beat_s && !std::isfinite(*beat_s)) blip::fuzz::contract_broken("beat is not finite");
  return 0;
}
