// The feed's listener under a fuzzed request stream: wrk sends random methods,
// random paths (ping tokens, traversal attempts, encoded dots, very long paths),
// oversized headers and bodies up to 2 MiB (tests/testdata/wrk/random_requests.lua)
// while blip probes nginx. No response may carry a file from the host, every status
// must be one the feed means to send, no random token may count as a check-in, and
// probing, the feed and a real check-in must all work afterwards.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* kToken = "fuzz-token-0c8e61d2b9a54f37";

int64_t rss_kib(pid_t pid) {
  const std::string status = test::read_file(fmt::format("/proc/{}/status", pid));
  std::smatch match;
  return std::regex_search(status, match, std::regex("VmRSS:\\s+(\\d+) kB")) ? std::stoll(match[1])
                                                                             : -1;
}

TEST(RequestFuzz, RandomRequestsReachNoFileCountNoCheckInAndStallNothing) {
  test::NginxServer nginx;
  test::TempDir dir;
  test::Daemon blip(dir, fmt::format(R"toml(
[[probe]]
name = "web"
type = "http"
url = "{}"
interval = "100ms"
timeout = "1s"

[[job]]
name = "nightly"
period = "1h"
token = "{}"
)toml",
                                     nginx.url("/health"), kToken));
  ASSERT_TRUE(test::wait_for_port(blip.feed_port()));
  ASSERT_TRUE(test::wait_until(
      [&] { return test::http_request(blip.feed_url("/status.json")).status == 200; }, 10s));
  const int64_t rss_before = rss_kib(blip.process().pid());

  std::string out;
  ASSERT_EQ(test::run_command({"wrk", "-t2", "-c24", "-d10s", "--timeout", "3s", "-s",
                               std::string(BLIP_TESTDATA) + "/wrk/random_requests.lua",
                               fmt::format("http://127.0.0.1:{}", blip.feed_port())},
                              &out, 60'000),
            0)
      << out;
  const size_t line = out.rfind("{\"responses\"");
  ASSERT_NE(line, std::string::npos) << out;
  const json result = json::parse(out.substr(line, out.find('\n', line) - line));
  std::cerr << "wrk: " << result.dump() << "\n";
  EXPECT_GT(result["responses"].get<int>(), 1000) << "the stream must really have been served";
  EXPECT_EQ(result["leaks"], 0) << "a response looked like a file of the host";
  // What the feed means to send: its documents, not-found, method refused, the body,
  // URI or header limits, the ping and token-guess rate limits, a Host the private face does
  // not answer (421); libmicrohttpd itself answers 400/413/414/431.
  const std::set<std::string> meant{"200", "204", "400", "404", "405",
                                    "413", "414", "421", "429", "431"};
  for (const auto& [status, count] : result["statuses"].items()) {
    EXPECT_TRUE(meant.count(status)) << count << " responses with status " << status << ": " << out;
  }
  EXPECT_GT(result["statuses"].value("404", 0), 0);

  // Afterwards: the process is whole, the feed answers at once, a real check-in counts.
  ASSERT_TRUE(blip.process().running()) << blip.log();
  EXPECT_EQ(test::http_request(blip.feed_url("/healthz"), "GET", {}, 2000).status, 200);
  EXPECT_EQ(
      test::http_request(blip.feed_url(fmt::format("/ping/{}", kToken)), "GET", {}, 2000).status,
      200);
  const int64_t rss_after = rss_kib(blip.process().pid());
  // The requests' memory is bounded per connection (16 KiB of headers, 10 KiB of a ping
  // body kept); under ASan freed memory sits in its quarantine (256 MiB at most), so
  // the bound is on that, not on the allocator's exactness.
  EXPECT_LT(rss_after - rss_before, 320 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";
  std::cerr << fmt::format("RSS {} KiB -> {} KiB\n", rss_before, rss_after);

  ASSERT_EQ(blip.stop(), 0) << blip.log();
  const std::string log = blip.log();
  EXPECT_EQ(log.find(kToken), std::string::npos);
  EXPECT_FALSE(std::regex_search(log, std::regex("/ping/[^*]"))) << "a ping path reached the log";
  std::smatch match;
  ASSERT_TRUE(std::regex_search(log, match, std::regex("schedule_lag_p99_us=(\\d+)"))) << log;
  // Two wrk threads and the feed's threads share two cores with the loop: a probe may
  // go out late, but by less than its interval.
  EXPECT_LT(std::stoll(match[1]), 100'000) << log;

  Store store(blip.db(), Store::Mode::read_only);
  EXPECT_TRUE(store.outages(0, INT64_MAX, "web").empty())
      << "the fuzzed stream took nginx's probe down";
  const auto runs = store.job_runs("nightly", 0, INT64_MAX, 100);
  ASSERT_EQ(runs.size(), 1u) << "only the one real check-in counts";
}

}  // namespace
}  // namespace blip
