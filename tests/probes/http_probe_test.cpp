// HTTP and TCP probes against a real nginx and misbehaving servers on loopback.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "blip/scheduler/scheduler.hpp"
#include "support/hostile_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using test::HostileServer;
using test::http_probe;
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
      {"200 with expected body",
       "/health",
       {{200, 399}},
       "OK",
       false,
       Status::up,
       ErrorClass::none},
      {"404 not expected",
       "/missing",
       {{200, 200}},
       "",
       false,
       Status::down,
       ErrorClass::http_status},
      {"404 expected", "/missing", {{404, 404}}, "", false, Status::up, ErrorClass::none},
      {"body lacks the text",
       "/wrong-body",
       {{200, 399}},
       "OK",
       false,
       Status::down,
       ErrorClass::body_mismatch},
      {"302 counts as up without following",
       "/loop",
       {{200, 399}},
       "",
       false,
       Status::up,
       ErrorClass::none},
      {"redirect loop followed",
       "/loop",
       {{200, 399}},
       "",
       true,
       Status::down,
       ErrorClass::redirects},
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
  EXPECT_EQ(probe_once(http_probe(nginx_->url("/health"))).status, Status::up)
      << "recovers after SIGCONT";
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
  const auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
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

// Two origins on loopback, two ports of one nginx ("home", the probe's own,
// and "other"), that log every request as "<origin> <path> key=<X-Api-Key>
// auth=<Authorization>" ("-" for a header that did not come).
class HttpRedirectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    home_port_ = test::free_port();
    do other_port_ = test::free_port();
    while (other_port_ == home_port_);
    server_ = new test::CustomNginxServer({home_port_, other_port_}, [](const std::string& dir) {
      return fmt::format(
          R"(  log_format seen '$server_port $uri key=$http_x_api_key auth=$http_authorization';
  server {{
    listen 127.0.0.1:{1};
    access_log {0}/logs/seen.log seen;
    location = /to-same {{ return 302 /final; }}
    location = /to-other {{ return 302 http://127.0.0.1:{2}/final; }}
    location = /to-other-and-back {{ return 302 http://127.0.0.1:{2}/back; }}
    location = /to-name {{ return 302 http://localhost:{2}/final; }}
    location = /to-ftp {{ return 302 ftp://127.0.0.1:{2}/final; }}
    location = /to-big {{ return 302 http://127.0.0.1:{2}/big; }}
    location = /to-hang {{ return 302 http://127.0.0.1:{2}/hang; }}
    location = /loop {{ return 302 /loop; }}
    location = /to-upper-case {{ return 302 http://LOCALHOST:{1}/final; }}
    location = /final {{ default_type text/plain; return 200 "OK"; }}
    # A redirect whose first byte comes after 300 ms, to a final answer as slow.
    location = /slow-to-other {{
      echo_status 302; add_header Location http://127.0.0.1:{2}/slow always; echo_sleep 0.3; echo moved;
    }}
  }}
  server {{
    listen 127.0.0.1:{2};
    access_log {0}/logs/seen.log seen;
    location = /final {{ default_type text/plain; return 200 "OK"; }}
    location = /back {{ return 302 http://127.0.0.1:{1}/final; }}
    location = /big {{ default_type text/plain; return 200 "{3}"; }}
    location = /hang {{ default_type text/plain; echo_sleep 3; echo OK; }}
    location = /slow {{ default_type text/plain; echo_sleep 0.3; echo OK; }}
  }}
)",
          dir, home_port_, other_port_, std::string(200, 'x'));
    });
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // A probe of `path` on the home origin that follows redirects and carries a
  // custom header and basic credentials meant for home alone.
  static ProbeConfig probe(const std::string& path, int64_t timeout_ms = 2000) {
    ProbeConfig config =
        http_probe(fmt::format("http://127.0.0.1:{}{}", home_port_, path), timeout_ms);
    auto& http = std::get<HttpSettings>(config.settings);
    http.follow_redirects = true;
    http.headers = {{"X-Api-Key", "key-for-home-only"}};
    http.username = "probe";
    http.password = "hunter2";
    return config;
  }

  // Runs one attempt and returns it with the `count` requests the servers logged for it.
  static std::pair<Sample, std::vector<std::string>> probe_and_log(const ProbeConfig& config,
                                                                   size_t count) {
    const size_t logged_before = read_log().size();
    Sample sample = probe_once(config);
    std::vector<std::string> requests;
    // nginx logs a request after answering it: the last line may come a moment after the answer.
    test::wait_until(
        [&] {
          const std::vector<std::string> all = read_log();
          requests.assign(
              all.begin() + static_cast<std::ptrdiff_t>(std::min(logged_before, all.size())),
              all.end());
          return requests.size() >= count;
        },
        std::chrono::seconds(2), std::chrono::milliseconds(10));
    return {sample, requests};
  }

  // The log's lines, with each port written as the origin's name.
  static std::vector<std::string> read_log() {
    std::vector<std::string> lines;
    std::ifstream log(server_->file("logs/seen.log"));
    for (std::string line; std::getline(log, line);) {
      const std::string port = line.substr(0, line.find(' '));
      const std::string origin = port == std::to_string(home_port_)    ? "home"
                                 : port == std::to_string(other_port_) ? "other"
                                                                       : port;
      lines.push_back(origin + line.substr(port.size()));
    }
    return lines;
  }

  static inline int home_port_ = 0;
  static inline int other_port_ = 0;
  static inline test::CustomNginxServer* server_ = nullptr;
};

// What home may see: the key, and "probe:hunter2" as basic credentials.
const std::string kHomeSecrets = "key=key-for-home-only auth=Basic cHJvYmU6aHVudGVyMg==";
const std::string kNoSecrets = "key=- auth=-";

struct RedirectCase {
  std::string name;
  std::string path;
  std::vector<std::string> requests;  // as logged, in order
  Status status;
  ErrorClass error;
};

TEST_F(HttpRedirectTest, HeadersAndCredentialsReachOnlyTheProbesOwnOrigin) {
  const std::vector<RedirectCase> cases{
      {"same origin",
       "/to-same",
       {"home /to-same " + kHomeSecrets, "home /final " + kHomeSecrets},
       Status::up,
       ErrorClass::none},
      {"another port is another origin",
       "/to-other",
       {"home /to-other " + kHomeSecrets, "other /final " + kNoSecrets},
       Status::up,
       ErrorClass::none},
      {"a name, looked up by blip, is another origin",
       "/to-name",
       {"home /to-name " + kHomeSecrets, "other /final " + kNoSecrets},
       Status::up,
       ErrorClass::none},
      {"back home from another origin",
       "/to-other-and-back",
       {"home /to-other-and-back " + kHomeSecrets, "other /back " + kNoSecrets,
        "home /final " + kHomeSecrets},
       Status::up,
       ErrorClass::none},
      {"a scheme blip does not speak",
       "/to-ftp",
       {"home /to-ftp " + kHomeSecrets},
       Status::down,
       ErrorClass::protocol},
  };
  for (const RedirectCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto [sample, requests] = probe_and_log(probe(c.path), c.requests.size());
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_EQ(requests, c.requests);
  }
}

TEST_F(HttpRedirectTest, CredentialsInTheUrlStayHomeToo) {
  ProbeConfig config = probe("/to-other");
  auto& http = std::get<HttpSettings>(config.settings);
  http.url = fmt::format("http://probe:hunter2@127.0.0.1:{}/to-other", home_port_);
  http.username.clear();
  http.password.clear();
  http.headers.clear();
  auto [sample, requests] = probe_and_log(config, 2);
  EXPECT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_EQ(requests,
            (std::vector<std::string>{"home /to-other key=- auth=Basic cHJvYmU6aHVudGVyMg==",
                                      "other /final " + kNoSecrets}));
}

TEST_F(HttpRedirectTest, AHostNameInAnotherCaseIsTheSameOrigin) {
  ProbeConfig config = probe("/to-upper-case");
  std::get<HttpSettings>(config.settings).url =
      fmt::format("http://localhost:{}/to-upper-case", home_port_);
  auto [sample, requests] = probe_and_log(config, 2);
  EXPECT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_EQ(requests, (std::vector<std::string>{"home /to-upper-case " + kHomeSecrets,
                                                "home /final " + kHomeSecrets}));
}

TEST_F(HttpRedirectTest, ARedirectLoopEndsAsRedirectsAfterTenHops) {
  auto [sample, requests] = probe_and_log(probe("/loop"), 11);
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::redirects) << sample.detail;
  EXPECT_EQ(sample.detail, "Maximum (10) redirects followed");
  EXPECT_EQ(requests, std::vector<std::string>(11, "home /loop " + kHomeSecrets))
      << "the first request and ten more";
}

TEST_F(HttpRedirectTest, PhasesAreSummedOverHops) {
  // Each hop's first byte comes after 300 ms: the attempt's first_byte is both.
  Sample sample = probe_once(probe("/slow-to-other", 3000));
  ASSERT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_GE(sample.phases.first_byte_us, 590'000)
      << "the redirect's 300 ms and the answer's 300 ms";
  EXPECT_GT(sample.phases.connect_us, 0);
  EXPECT_GE(sample.latency_us,
            sample.phases.dns_us + sample.phases.connect_us + sample.phases.first_byte_us);
}

TEST_F(HttpRedirectTest, TheDeadlineCoversEveryHop) {
  const auto started = std::chrono::steady_clock::now();
  Sample sample = probe_once(probe("/to-hang", 1000));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::timeout) << sample.detail;
  EXPECT_LT(elapsed, std::chrono::milliseconds(2500)) << "the second hop answers only after 3 s";
}

TEST_F(HttpRedirectTest, BodyLimitAndExpectedTextApplyToTheFinalAnswer) {
  struct Case {
    std::string name;
    std::string path;
    std::string expect_body;
    Status status;
    ErrorClass error;
  };
  // nginx's 302 page is 145 bytes and says "302 Found"; the final answers are "OK" and 200 bytes.
  const std::vector<Case> cases{
      {"a redirect's body is not counted", "/to-same", "OK", Status::up, ErrorClass::none},
      {"a redirect's body is not the answer", "/to-same", "302 Found", Status::down,
       ErrorClass::body_mismatch},
      {"the final body is counted", "/to-big", "", Status::down, ErrorClass::body_too_large},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = probe(c.path);
    auto& http = std::get<HttpSettings>(config.settings);
    http.max_body_bytes = 100;
    http.expect_body = c.expect_body;
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
  }
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
    Sample sample = probe_once(
        http_probe("http://127.0.0.1:" + std::to_string(server.port()) + "/health", 500));
    EXPECT_EQ(sample.status, Status::down);
    EXPECT_EQ(sample.error, c.error) << sample.detail;
  }
}

// No DNS failure case here: resolving a name that does not exist would send a
// query to the machine's resolver, and tests talk to loopback only.
TEST(HttpProbeMisbehaving, RefusedPort) {
  Sample refused =
      probe_once(http_probe("http://127.0.0.1:" + std::to_string(test::free_port()) + "/"));
  EXPECT_EQ(refused.status, Status::down);
  EXPECT_EQ(refused.error, ErrorClass::refused) << refused.detail;
}

TEST(HttpProbeMisbehaving, PasswordNeverReachesTheDetail) {
  Sample sample = probe_once(
      http_probe("http://admin:hunter2@127.0.0.1:" + std::to_string(test::free_port()) + "/"));
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
