// No client can hold the feed: slow clients that are never idle (a byte every
// 0.5 s) from many addresses, and from many addresses of one IPv6 /64, against
// both faces of a real `blip run`, while /healthz, a job's check-in and the
// probes keep working; behind a trusted proxy the limits apply to the
// forwarded client; a check-in's token is checked before its body is read.
//
// ctest runs this binary in a network namespace of its own (tests/CMakeLists.txt)
// where `lo` also carries fd00::/64 and fd00:0:0:1::/64.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::Daemon;
using test::TempDir;
using test::wait_until;

constexpr const char* kToken = "limits-test-token-0123456789abcdef0123";

// A numeric address and port to connect to or from.
struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
};

Endpoint endpoint(const std::string& host, int port) {
  Endpoint out;
  if (host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr);
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &v4->sin_addr);
    out.length = sizeof(sockaddr_in);
  }
  return out;
}

// A non-blocking TCP connection from `source` (any port) to `target`; -1 on failure.
int connect_from(const std::string& source, const Endpoint& target) {
  const int fd = socket(target.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const Endpoint from = endpoint(source, 0);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&from.address), from.length) != 0 ||
      (connect(fd, reinterpret_cast<const sockaddr*>(&target.address), target.length) != 0 &&
       errno != EINPROGRESS)) {
    close(fd);
    return -1;
  }
  return fd;
}

// One request from `source`, written at once; the status and how long the answer took (0: none
// within the timeout).
struct Timed {
  int status = 0;
  std::chrono::milliseconds took{0};
  std::string head;
};
Timed timed_request(const std::string& source, const Endpoint& target, const std::string& request,
                    std::chrono::milliseconds timeout = 2000ms) {
  Timed out;
  const auto began = Clock::now();
  const int fd = connect_from(source, target);
  if (fd < 0) return out;
  std::string received;
  size_t sent = 0;
  while (Clock::now() - began < timeout) {
    pollfd poll_fd{fd, static_cast<short>(POLLIN | (sent < request.size() ? POLLOUT : 0)), 0};
    if (poll(&poll_fd, 1, 20) <= 0) continue;
    if ((poll_fd.revents & POLLOUT) && sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    if (poll_fd.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[4096];
      const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
      if (received.find("\r\n\r\n") != std::string::npos) break;
    }
  }
  close(fd);
  std::smatch match;
  if (std::regex_search(received, match, std::regex(R"(^HTTP/1\.\d (\d{3}))"))) {
    out.status = std::stoi(match[1]);
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began);
    out.head = received.substr(0, received.find("\r\n\r\n"));
  }
  return out;
}

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

// Clients that connect and then send one byte of a request every 0.5 s, never
// idle long enough for an idle timeout, and connect again whenever the server
// closes them (as an attacker would).
class TrickleCrowd {
 public:
  TrickleCrowd(std::vector<std::string> sources, int per_source, std::vector<Endpoint> targets)
      : sources_(std::move(sources)), per_source_(per_source), targets_(std::move(targets)) {
    thread_ = std::thread([this] { run(); });
  }
  ~TrickleCrowd() {
    stop_ = true;
    thread_.join();
  }
  // The most connections open at once per target that the server had not closed, sampled each
  // round.
  size_t most_open(size_t target) const { return most_open_[target].load(); }
  // The longest any connection lived, closed by the server or still open.
  std::chrono::milliseconds longest_life() const {
    return std::chrono::milliseconds(longest_life_ms_.load());
  }
  int closed_by_server() const { return closed_.load(); }

 private:
  struct Client {
    int fd = -1;
    size_t target = 0;
    std::string source;
    Clock::time_point since;
    size_t sent = 0;
    bool connected = false;
  };
  static constexpr char kRequest[] =
      "GET /api/v2/summary.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ";

  void run() {
    std::vector<Client> clients;
    for (size_t target = 0; target < targets_.size(); ++target) {
      for (const std::string& source : sources_) {
        for (int i = 0; i < per_source_; ++i) clients.push_back({-1, target, source, {}, 0, false});
      }
    }
    while (!stop_) {
      std::vector<size_t> open(targets_.size(), 0);
      for (Client& client : clients) {
        if (client.fd < 0) {
          client.fd = connect_from(client.source, targets_[client.target]);
          client.since = Clock::now();
          client.sent = 0;
          client.connected = false;
          continue;
        }
        pollfd poll_fd{client.fd, POLLIN | POLLOUT, 0};
        poll(&poll_fd, 1, 0);
        bool closed = (poll_fd.revents & (POLLHUP | POLLERR)) != 0;
        if (poll_fd.revents & POLLIN) {
          char buffer[512];
          const ssize_t n = recv(client.fd, buffer, sizeof buffer, 0);
          closed = closed || n == 0 || (n < 0 && errno != EAGAIN);
        }
        if (!closed && (poll_fd.revents & POLLOUT)) {
          client.connected = true;
          const char next = client.sent < sizeof kRequest - 1 ? kRequest[client.sent] : 'a';
          if (::send(client.fd, &next, 1, MSG_NOSIGNAL) == 1) ++client.sent;
        }
        if (closed) {
          if (client.connected) {
            ++closed_;
            const auto life =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - client.since)
                    .count();
            if (client.sent > 1) longest_life_ms_ = std::max<int64_t>(longest_life_ms_, life);
          }
          close(client.fd);
          client.fd = -1;
          continue;
        }
        if (client.connected && client.sent > 1) {
          ++open[client.target];
          const auto age =
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - client.since)
                  .count();
          longest_life_ms_ = std::max<int64_t>(longest_life_ms_, age);
        }
      }
      for (size_t target = 0; target < open.size(); ++target) {
        most_open_[target] = std::max(most_open_[target].load(), open[target]);
      }
      std::this_thread::sleep_for(500ms);
    }
    for (Client& client : clients) {
      if (client.fd >= 0) close(client.fd);
    }
  }

  std::vector<std::string> sources_;
  int per_source_;
  std::vector<Endpoint> targets_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> most_open_[2]{};
  std::atomic<int64_t> longest_life_ms_{0};
  std::atomic<int> closed_{0};
  std::thread thread_;
};

std::string limits_config(const test::NginxServer& nginx) {
  return test::http_config("web", nginx.url("/health"), "250ms", "1s") +
         fmt::format("\n[[job]]\nname = \"backup\"\nperiod = \"1h\"\ntoken = \"{}\"\n", kToken);
}

// What a legitimate client sees while the crowd is at it: /healthz and a check-in on the
// private face, the status document on the public one, each asked every 250 ms from
// `source`, and the slowest answer of each.
struct Watch {
  std::chrono::milliseconds slowest_health{0}, slowest_ping{0}, slowest_public{0};
  int failures = 0;
  std::string first_failure;
};
Watch watch_for(std::chrono::seconds duration, const std::string& source,
                const Endpoint& private_face, const Endpoint& public_face) {
  Watch watch;
  const auto until = Clock::now() + duration;
  int round = 0;
  while (Clock::now() < until) {
    auto check = [&](const Timed& answer, int expected, std::chrono::milliseconds& slowest,
                     const char* what) {
      if (answer.status != expected || answer.took > 1000ms) {
        if (watch.failures++ == 0)
          watch.first_failure =
              fmt::format("{}: {} after {} ms", what, answer.status, answer.took.count());
      }
      slowest = std::max(slowest, answer.took);
    };
    check(timed_request(source, private_face, get("/healthz")), 200, watch.slowest_health,
          "/healthz");
    check(timed_request(source, public_face, get("/api/v2/status.json")), 200, watch.slowest_public,
          "public status");
    if (round++ % 4 == 0)
      check(timed_request(source, private_face, get(std::string("/ping/") + kToken)), 200,
            watch.slowest_ping, "ping");
    std::this_thread::sleep_for(250ms);
  }
  return watch;
}

// The slow crowd against both faces, a legitimate client watching, and a 3 s nginx freeze in the
// middle.
void hold_under_crowd(const std::string& listen_host, const std::vector<std::string>& crowd_sources,
                      int per_source, const std::string& watcher_source) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, limits_config(nginx), {"--feed-request-timeout", "4s"}, "", {}, listen_host);
  const Endpoint private_face = endpoint(listen_host, blip.feed_port());
  const Endpoint public_face = endpoint(listen_host, blip.public_port());
  ASSERT_TRUE(wait_until(
      [&] { return timed_request(watcher_source, private_face, get("/healthz")).status == 200; },
      15s))
      << blip.log();
  std::this_thread::sleep_for(1s);

  std::optional<TrickleCrowd> crowd;
  crowd.emplace(crowd_sources, per_source, std::vector<Endpoint>{private_face, public_face});
  Watch before_freeze = watch_for(5s, watcher_source, private_face, public_face);
  const int64_t frozen_ms = wall_now_ms();
  nginx.freeze();
  Watch during_freeze = watch_for(3s, watcher_source, private_face, public_face);
  nginx.thaw();
  const int64_t thawed_ms = wall_now_ms();
  Watch after_freeze = watch_for(4s, watcher_source, private_face, public_face);
  const size_t most_open_private = crowd->most_open(0);
  const size_t most_open_public = crowd->most_open(1);
  const auto longest = crowd->longest_life();
  const int closed = crowd->closed_by_server();
  crowd.reset();

  auto slowest = [&](auto member) {
    return std::max({(before_freeze.*member).count(), (during_freeze.*member).count(),
                     (after_freeze.*member).count()});
  };
  std::cerr << fmt::format(
      "crowd of {} x {} on {}: slowest /healthz {} ms, ping {} ms, public status {} ms; most held "
      "private {} public {}; longest life {} ms; {} closed by the server\n",
      crowd_sources.size(), per_source, listen_host, slowest(&Watch::slowest_health),
      slowest(&Watch::slowest_ping), slowest(&Watch::slowest_public), most_open_private,
      most_open_public, longest.count(), closed);
  for (const Watch* watch : {&before_freeze, &during_freeze, &after_freeze}) {
    EXPECT_EQ(watch->failures, 0) << watch->first_failure;
    EXPECT_LT(watch->slowest_health, 1000ms);
    EXPECT_LT(watch->slowest_ping, 1000ms);
    EXPECT_LT(watch->slowest_public, 1000ms);
  }
  // Each crowd, however many addresses it has in one client, holds at most that client's share of a
  // face.
  const size_t clients = crowd_sources.size() == 1 || listen_host.find(':') != std::string::npos
                             ? 1
                             : crowd_sources.size();
  EXPECT_LE(most_open_private, clients * 16)
      << "the private face held more than the per-client limit";
  EXPECT_LE(most_open_public, clients * 16)
      << "the public face held more than the per-client limit";
  EXPECT_GT(most_open_private, 0U) << "the crowd never got in: the test tested nothing";
  // A request that never goes quiet is still cut at 4 s: the crowd sees it up to a round later (0.5
  // s and the round's own time on a busy machine), plus the janitor's 0.2 s. Uncut, the crowd's
  // first connections would live the whole 12 s.
  EXPECT_GT(closed, 0);
  EXPECT_LT(longest, 6500ms) << "a trickling connection outlived --feed-request-timeout";
  const std::string metrics = test::http_request(blip.feed_url("/metrics")).body;
  for (const char* face : {"private", "public"}) {
    for (const char* reason : {"per_client", "request_time"}) {
      std::smatch match;
      const std::string series = fmt::format(
          "blip_feed_refused_total\\{{face=\"{}\",reason=\"{}\"\\}} (\\d+)", face, reason);
      ASSERT_TRUE(std::regex_search(metrics, match, std::regex(series))) << series << "\n"
                                                                         << metrics;
      EXPECT_GT(std::stoi(match[1]), 0) << series;
    }
  }
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  // The freeze is one outage, its edges within 0.5 s of the real ones.
  Store store(blip.db(), Store::Mode::read_only);
  const auto outages = store.outages(frozen_ms - 60'000, thawed_ms + 60'000, "web");
  ASSERT_EQ(outages.size(), 1U);
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(frozen_ms), 500.0);
  ASSERT_TRUE(outages[0].end_ms.has_value());
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thawed_ms), 500.0);
  std::cerr << fmt::format("the 3 s freeze: outage edges {:+} ms, {:+} ms off\n",
                           outages[0].start_ms - frozen_ms, *outages[0].end_ms - thawed_ms);
}

TEST(FeedLimits, SlowClientsFrom16AddressesHoldNeitherFaceNorTheProbes) {
  std::vector<std::string> sources;
  for (int i = 2; i <= 17; ++i) sources.push_back(fmt::format("127.0.0.{}", i));
  hold_under_crowd("127.0.0.1", sources, 20, "127.0.0.1");
}

TEST(FeedLimits, AnIpv6Slash64IsOneClient) {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  const Endpoint own = endpoint("fd00::1", 0);
  const bool in_namespace =
      bind(probe, reinterpret_cast<const sockaddr*>(&own.address), own.length) == 0;
  close(probe);
  if (!in_namespace && !std::getenv("BLIP_TEST_NETNS"))
    GTEST_SKIP() << "needs fd00::/64 on lo: ctest runs it so";
  ASSERT_TRUE(in_namespace)
      << "run by ctest inside a network namespace with fd00::/64 on lo (tests/CMakeLists.txt)";
  // 320 connections from 64 addresses of one /64; the watcher in another /64.
  std::vector<std::string> sources;
  for (int i = 2; i <= 65; ++i) sources.push_back(fmt::format("fd00::{:x}", i));
  hold_under_crowd("fd00::1", sources, 5, "fd00:0:0:1::2");
}

// A check-in whose headers are sent at once and whose body never comes: it stays in flight.
std::string unfinished_ping(const std::string& token, const std::string& forwarded_for) {
  return fmt::format(
      "POST /ping/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {}\r\nContent-Length: "
      "100\r\n\r\npart",
      token, forwarded_for);
}

// Holds `count` unfinished check-ins open from `source`; how many were answered 429 within 1 s.
int refused_of(const std::string& source, const Endpoint& face, int count,
               const std::function<std::string(int)>& forwarded_for) {
  std::vector<std::thread> clients;
  std::atomic<int> refused{0};
  for (int i = 0; i < count; ++i) {
    clients.emplace_back([&, i] {
      if (timed_request(source, face, unfinished_ping(kToken, forwarded_for(i)), 1500ms).status ==
          429)
        ++refused;
    });
  }
  for (auto& client : clients) client.join();
  return refused.load();
}

TEST(FeedLimits, BehindATrustedProxyTheForwardedClientIsLimitedNotTheProxy) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, limits_config(nginx), {"--trusted-proxy", "127.0.0.3,10.0.0.0/8"});
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s));
  const Endpoint face = endpoint("127.0.0.1", blip.feed_port());
  // 30 in flight through the proxy for one client: its 16 are held, the rest refused at once. The
  // entries left of the proxy's own are the client's to write, and are not believed.
  EXPECT_EQ(refused_of("127.0.0.3", face, 30,
                       [](int i) { return fmt::format("198.51.100.{}, 203.0.113.9", i); }),
            14);
  // 30 clients through the proxy, one request each: none refused, though the proxy holds 30
  // connections.
  EXPECT_EQ(
      refused_of("127.0.0.3", face, 30, [](int i) { return fmt::format("203.0.113.{}", 100 + i); }),
      0);
  // Not a trusted proxy: its X-Forwarded-For is ignored and its own connections are limited at 16.
  int accepted = 0;
  std::vector<int> held;
  for (int i = 0; i < 30; ++i) {
    const int fd = connect_from("127.0.0.4", face);
    held.push_back(fd);
  }
  std::this_thread::sleep_for(500ms);
  for (int fd : held) {
    char byte;
    pollfd poll_fd{fd, POLLIN, 0};
    const bool closed = poll(&poll_fd, 1, 0) == 1 && recv(fd, &byte, 1, 0) <= 0;
    accepted += !closed;
    close(fd);
  }
  EXPECT_EQ(accepted, 16);
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

TEST(FeedLimits, ACheckInsTokenIsCheckedBeforeItsBodyIsRead) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(dir, limits_config(nginx));
  ASSERT_TRUE(
      wait_until([&] { return test::http_request(blip.feed_url("/healthz")).status == 200; }, 15s));
  const Endpoint face = endpoint("127.0.0.1", blip.feed_port());
  auto announced = [](const std::string& token, size_t length) {
    return fmt::format("POST /ping/{}/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
                       token, length);
  };
  // An unknown token with a body announced and never sent: 404 at once, not after the body.
  Timed unknown =
      timed_request("127.0.0.5", face, announced("not-a-token-of-any-job-0123456789", 500'000));
  EXPECT_EQ(unknown.status, 404) << unknown.head;
  EXPECT_LT(unknown.took, 1000ms);
  // A known token announcing more than a check-in may carry: 413 before any of it is read.
  Timed too_big = timed_request("127.0.0.5", face, announced(kToken, 2 << 20));
  EXPECT_EQ(too_big.status, 413) << too_big.head;
  EXPECT_LT(too_big.took, 1000ms);
  // Guesses at tokens are limited per client: 10 at once, then one every 10 s; others still get
  // theirs.
  int not_found = 0;
  int limited = 0;
  for (int i = 0; i < 15; ++i) {
    const int status =
        timed_request("127.0.0.6", face, get(fmt::format("/ping/guess-{:02}-0123456789abcdef", i)))
            .status;
    not_found += status == 404;
    limited += status == 429;
  }
  EXPECT_EQ(not_found, 10);
  EXPECT_EQ(limited, 5);
  EXPECT_EQ(timed_request("127.0.0.7", face, get("/ping/guess-x-0123456789abcdef")).status, 404);
  EXPECT_EQ(timed_request("127.0.0.6", face, get(std::string("/ping/") + kToken)).status, 200)
      << "a client's guesses never stop its real check-ins";
  const std::string metrics = test::http_request(blip.feed_url("/metrics")).body;
  EXPECT_NE(metrics.find("blip_feed_refused_total{face=\"private\",reason=\"token_guesses\"} 5"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

}  // namespace
}  // namespace blip
