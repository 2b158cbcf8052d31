// HTTP and TCP probes against a real nginx and misbehaving servers on loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "blip/cli/probe_runtime.hpp"
#include "support/hostile_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using test::http_probe;
using test::HostileServer;
using test::probe_once;

class HttpProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { nginx_ = new test::NginxServer(); }
  static void TearDownTestSuite() {
    delete nginx_;
    nginx_ = nullptr;
  }
  static test::NginxServer* nginx_;
};
test::NginxServer* HttpProbeTest::nginx_ = nullptr;

struct HttpCase {
  std::string name;
  std::string path;
  std::vector<StatusRange> expect_status;
  std::string expect_body;
  bool follow_redirects;
  Status status;
  ErrorClass error;
};

TEST_F(HttpProbeTest, StatusBodyAndRedirectCases) {
  const std::vector<HttpCase> cases{
      {"200 with expected body", "/health", {{200, 399}}, "OK", false, Status::up, ErrorClass::none},
      {"404 not expected", "/missing", {{200, 200}}, "", false, Status::down, ErrorClass::http_status},
      {"404 expected", "/missing", {{404, 404}}, "", false, Status::up, ErrorClass::none},
      {"body lacks the text", "/wrong-body", {{200, 399}}, "OK", false, Status::down, ErrorClass::body_mismatch},
      {"302 counts as up without following", "/loop", {{200, 399}}, "", false, Status::up, ErrorClass::none},
      {"redirect loop followed", "/loop", {{200, 399}}, "", true, Status::down, ErrorClass::redirects},
  };
  for (const HttpCase& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = http_probe(nginx_->url(c.path));
    auto& http = std::get<HttpSettings>(config.settings);
    http.expect_status = c.expect_status;
    http.expect_body = c.expect_body;
    http.follow_redirects = c.follow_redirects;
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
  }
}

TEST_F(HttpProbeTest, RecordsPhaseTimings) {
  Sample sample = probe_once(http_probe(nginx_->url("/health")));
  ASSERT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_GT(sample.phases.connect_us, 0);
  EXPECT_GT(sample.phases.first_byte_us, 0);
  EXPECT_EQ(sample.phases.tls_us, 0);
  EXPECT_GE(sample.latency_us, sample.phases.connect_us + sample.phases.first_byte_us);
  EXPECT_EQ(sample.detail, "HTTP 200");
}

// A line of /proc/self/status, in KiB ("VmHWM", "VmRSS"); -1 when absent.
int64_t status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  }
  return -1;
}

TEST_F(HttpProbeTest, HugeBodyIsDownWithoutGrowingMemory) {
  // The peak (VmHWM) is reset to the current RSS first: otherwise it is the
  // highest of everything earlier tests in this process did, and a probe that
  // kept the body could grow RSS by that much headroom and pass.
  {
    std::ofstream clear_refs("/proc/self/clear_refs");
    clear_refs << "5";  // "reset the peak resident set size to the current one" (proc(5))
  }
  const int64_t before_kib = status_kib("VmRSS");
  ASSERT_GT(before_kib, 0);
  ASSERT_LE(status_kib("VmHWM"), before_kib + 1024) << "the peak was not reset";
  ProbeConfig config = http_probe(nginx_->url("/big"), 10'000);
  std::get<HttpSettings>(config.settings).expect_body = "never there";
  Sample sample = probe_once(config);
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::body_too_large) << sample.detail;
  const int64_t grown_kib = status_kib("VmHWM") - before_kib;
  // The body is 100 MB; the probe keeps at most max_body_bytes (1 MiB) of it.
  // 32 MiB leaves room for ASan's redzones and quarantine of curl's buffers and
  // the loop's first allocations, and is a third of what keeping the body would take.
  EXPECT_LT(grown_kib, 32 * 1024) << "peak RSS grew by " << grown_kib << " KiB";
}

TEST_F(HttpProbeTest, FrozenServerTimesOutWithinTheTimeout) {
  nginx_->freeze();
  auto started = std::chrono::steady_clock::now();
  Sample sample = probe_once(http_probe(nginx_->url("/health"), 500));
  auto elapsed = std::chrono::steady_clock::now() - started;
  nginx_->thaw();
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::timeout);
  EXPECT_EQ(sample.detail, "no answer within 500ms");
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500));
  EXPECT_EQ(probe_once(http_probe(nginx_->url("/health"))).status, Status::up) << "recovers after SIGCONT";
}

TEST_F(HttpProbeTest, SlowAnswerPastTheTimeoutIsATimeout) {
  // /slow answers after 3 s; the timeout is 1 s. A timeout's latency is the time
  // the attempt took, which the deadline ends: asserting it equals the timeout
  // would only restate the definition. What can go wrong is ending early (before
  // the timeout; libuv's timers count whole milliseconds of a clock that may be
  // a coarse one up to 1 ms behind, which allows 2 ms) or waiting for the
  // answer (3 s): 2.5 s leaves 1.5 s for a loaded machine and is still short of it.
  const auto started = std::chrono::steady_clock::now();
  Sample sample = probe_once(http_probe(nginx_->url("/slow"), 1000));
  const auto elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::timeout) << sample.detail;
  EXPECT_EQ(sample.detail.rfind("no answer within 1s", 0), 0U) << sample.detail;
  EXPECT_GE(sample.latency_us, 998'000);
  EXPECT_LT(sample.latency_us, 2'500'000) << "the deadline ended it, not the answer";
  EXPECT_LE(sample.latency_us, elapsed_us) << "measured, not more than the test saw pass";
}

TEST_F(HttpProbeTest, DegradedWhenSlowerThanDegradedAfter) {
  ProbeConfig config = http_probe(nginx_->url("/slow"), 5000);
  config.degraded_after_ms = 1000;
  Sample sample = probe_once(config);
  EXPECT_EQ(sample.status, Status::degraded) << sample.detail;
  config.degraded_after_ms = 10'000;
  EXPECT_EQ(probe_once(config).status, Status::up);
}

TEST(HttpProbeMisbehaving, EachFailureIsADownSampleOfItsClass) {
  struct Case {
    std::string name;
    HostileServer::Mode mode;
    ErrorClass error;
  };
  const std::vector<Case> cases{
      {"garbage instead of HTTP", HostileServer::Mode::garbage, ErrorClass::protocol},
      {"connection reset", HostileServer::Mode::reset, ErrorClass::reset},
      {"accepts and hangs", HostileServer::Mode::hang, ErrorClass::timeout},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    HostileServer server(c.mode);
    Sample sample = probe_once(http_probe("http://127.0.0.1:" + std::to_string(server.port()) + "/health", 500));
    EXPECT_EQ(sample.status, Status::down);
    EXPECT_EQ(sample.error, c.error) << sample.detail;
  }
}

// No DNS failure case here: resolving a name that does not exist would send a
// query to the machine's resolver, and tests talk to loopback only.
TEST(HttpProbeMisbehaving, RefusedPort) {
  Sample refused = probe_once(http_probe("http://127.0.0.1:" + std::to_string(test::free_port()) + "/"));
  EXPECT_EQ(refused.status, Status::down);
  EXPECT_EQ(refused.error, ErrorClass::refused) << refused.detail;
}

TEST(HttpProbeMisbehaving, PasswordNeverReachesTheDetail) {
  Sample sample = probe_once(http_probe("http://admin:hunter2@127.0.0.1:" + std::to_string(test::free_port()) + "/"));
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.detail.find("hunter2"), std::string::npos) << sample.detail;
}

TEST_F(HttpProbeTest, TcpProbeConnectsAndSeesRefusal) {
  Sample up = probe_once(test::tcp_probe("127.0.0.1", nginx_->port()));
  EXPECT_EQ(up.status, Status::up) << up.detail;
  EXPECT_GT(up.phases.connect_us, 0);
  Sample refused = probe_once(test::tcp_probe("127.0.0.1", test::free_port()));
  EXPECT_EQ(refused.status, Status::down);
  EXPECT_EQ(refused.error, ErrorClass::refused) << refused.detail;
}

TEST_F(HttpProbeTest, ManyProbesAtOnceAllAnswer) {
  std::vector<ProbeConfig> configs;
  for (int i = 0; i < 50; ++i) {
    configs.push_back(http_probe(nginx_->url("/health")));
    configs.back().name = "p" + std::to_string(i);
  }
  const std::vector<Sample> samples = run_each_probe_once(configs);
  ASSERT_EQ(samples.size(), configs.size()) << "without samples the loop below checks nothing";
  for (const Sample& sample : samples) EXPECT_EQ(sample.status, Status::up) << sample.detail;
}

}  // namespace
}  // namespace blip
