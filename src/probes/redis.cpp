// Placeholder until the Redis probe lands.
#include "blip/probes/probe.hpp"

namespace blip {
namespace {
class RedisProbe final : public Probe {
 public:
  void start(AttemptId, ProbeDone done) override { done(ProbeResult::failure(ErrorClass::internal, "redis probe not built yet")); }
  void cancel(AttemptId) noexcept override {}
};
}  // namespace
std::unique_ptr<Probe> make_redis_probe(const ProbeConfig&, ProbeContext&) { return std::make_unique<RedisProbe>(); }
}  // namespace blip
