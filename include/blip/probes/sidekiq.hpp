#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace blip {

// What the Redis probe's sidekiq mode reads of Sidekiq's data. Sidekiq writes
// it, but the server may hold anything: these never throw.

// A queued job as Sidekiq LPUSHes it (a JSON object): its enqueued_at in Unix
// seconds (Sidekiq 8 writes integer milliseconds, older versions float
// seconds). Nullopt with `problem` set ("is not JSON", "has no enqueued_at").
std::optional<double> sidekiq_enqueued_at_s(std::string_view job_json, std::string& problem);

// A process hash's "beat" field (Time.now.to_f): Unix seconds, or nullopt
// unless the whole text is one finite number.
std::optional<double> sidekiq_beat_s(std::string_view beat);

}  // namespace blip
