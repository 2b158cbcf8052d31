// Placeholder until the Postgres probe lands.
#include "blip/probes/probe.hpp"

namespace blip {
namespace {
class PostgresProbe final : public Probe {
 public:
  void start(AttemptId, ProbeDone done) override { done(ProbeResult::failure(ErrorClass::internal, "postgres probe not built yet")); }
  void cancel(AttemptId) noexcept override {}
};
}  // namespace
std::unique_ptr<Probe> make_postgres_probe(const ProbeConfig&, ProbeContext&) { return std::make_unique<PostgresProbe>(); }
}  // namespace blip
