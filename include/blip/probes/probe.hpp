#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"

namespace blip {

class CurlMultiUv;
class Resolver;

using AttemptId = uint64_t;
using ProbeDone = std::function<void(ProbeResult)>;

// One configured probe. The scheduler starts attempts, times them and enforces
// the timeout; a probe only performs the I/O and says what happened.
class Probe {
 public:
  virtual ~Probe() = default;
  // Starts one attempt. `done` is called exactly once (possibly from inside
  // start() when the attempt fails at once) unless cancel(id) comes first.
  // Several attempts of one probe may be in flight.
  virtual void start(AttemptId id, ProbeDone done) = 0;
  // Abandons an attempt (its deadline passed, or blip is stopping); its `done`
  // is not called afterwards. Unknown ids are ignored.
  virtual void cancel(AttemptId id) noexcept = 0;
  // How far an attempt got, for the detail of a timeout: "connected, no
  // answer to the startup message". Empty when the probe cannot tell.
  virtual std::string progress(AttemptId) const { return {}; }
};

// What probes share on one loop.
struct ProbeContext {
  uv_loop_t* loop;
  CurlMultiUv* curl;
  Resolver* resolver;  // every name lookup goes here, never to getaddrinfo
};

using ProbeFactory = std::unique_ptr<Probe> (*)(const ProbeConfig&, ProbeContext&);

std::unique_ptr<Probe> make_http_probe(const ProbeConfig& config, ProbeContext& context);
std::unique_ptr<Probe> make_tcp_probe(const ProbeConfig& config, ProbeContext& context);
std::unique_ptr<Probe> make_postgres_probe(const ProbeConfig& config, ProbeContext& context);
std::unique_ptr<Probe> make_redis_probe(const ProbeConfig& config, ProbeContext& context);

// The most sockets these probes hold at once when every target hangs: one per
// http attempt in flight; tcp, redis and postgres hold at most three each.
int64_t worst_case_sockets(const std::vector<ProbeConfig>& configs);

// Builds the probe its settings call for (registry.cpp).
std::unique_ptr<Probe> make_probe(const ProbeConfig& config, ProbeContext& context);

}  // namespace blip
