// blip under systemd, without systemd as PID 1 here: the notify protocol heard on a
// NOTIFY_SOCKET of the test's own (READY once probing, WATCHDOG=1 from the loop's tick and none
// while the process is stopped, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 at SIGTERM),
// and the shipped unit's exposure score from systemd-analyze.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::wait_until;

// What a service manager hears: each datagram on a Unix socket, with when it came.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("cannot bind " + path);
    timeval timeout{0, 100'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    thread_ = std::thread([this] { listen(); });
  }
  ~NotifyListener() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  struct Message {
    Clock::time_point at;
    std::string text;
  };
  std::vector<Message> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  // When the first message holding `line` came after `since`, if one did.
  std::optional<Clock::time_point> first(const std::string& line, Clock::time_point since) const {
    for (const Message& message : messages()) {
      if (message.at >= since &&
          ("\n" + message.text + "\n").find("\n" + line + "\n") != std::string::npos)
        return message.at;
    }
    return std::nullopt;
  }
  std::vector<Clock::time_point> watchdogs(Clock::time_point from, Clock::time_point to) const {
    std::vector<Clock::time_point> times;
    for (const Message& message : messages()) {
      if (message.text == "WATCHDOG=1" && message.at >= from && message.at <= to)
        times.push_back(message.at);
    }
    return times;
  }

 private:
  void listen() {
    char buffer[4096];
    while (!stop_) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      std::lock_guard lock(mutex_);
      messages_.push_back({Clock::now(), std::string(buffer, static_cast<size_t>(n))});
    }
  }

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Message> messages_;
  std::thread thread_;
};

std::chrono::milliseconds longest_gap(const std::vector<Clock::time_point>& times) {
  std::chrono::milliseconds longest{0};
  for (size_t i = 1; i < times.size(); ++i) {
    longest = std::max(
        longest, std::chrono::duration_cast<std::chrono::milliseconds>(times[i] - times[i - 1]));
  }
  return longest;
}

TEST(SystemdUnit, TheNotifyProtocolFollowsTheLoop) {
  test::NginxServer nginx;
  test::TempDir dir;
  NotifyListener listener(dir.file("notify.sock"));
  // As systemd sets them for WatchdogSec=2 (WATCHDOG_PID unset: meant for whoever reads it).
  setenv("NOTIFY_SOCKET", dir.file("notify.sock").c_str(), 1);
  setenv("WATCHDOG_USEC", "2000000", 1);
  test::Daemon blip(dir, test::http_config("web", nginx.url("/health"), "250ms", "1s"));
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  const auto started = Clock::now() - 1s;

  ASSERT_TRUE(wait_until([&] { return listener.first("READY=1", started).has_value(); }, 20s))
      << blip.log();
  EXPECT_TRUE(listener.first("STATUS=probing 1 components", started)) << blip.log();
  // READY=1 means ready: the private face answers at once, with the loop's first snapshot.
  EXPECT_EQ(test::http_request(blip.feed_url("/healthz")).status, 200) << blip.log();

  // The watchdog: twice an interval while the loop runs; systemd (2 s) would never fire.
  const auto watched = Clock::now();
  std::this_thread::sleep_for(4s);
  const auto beats = listener.watchdogs(watched, Clock::now());
  EXPECT_GE(beats.size(), 3U);
  EXPECT_LT(longest_gap(beats), 2000ms) << "systemd would have restarted a running blip";

  // A stopped process (as a wedged loop) sends none: systemd's 2 s pass and it restarts blip.
  ASSERT_EQ(kill(blip.process().pid(), SIGSTOP), 0);
  const auto frozen = Clock::now();
  std::this_thread::sleep_for(3s);
  const auto thawed = Clock::now();
  ASSERT_EQ(kill(blip.process().pid(), SIGCONT), 0);
  // A datagram sent just before the stop may be read a moment after it.
  EXPECT_TRUE(listener.watchdogs(frozen + 200ms, thawed).empty());
  EXPECT_TRUE(wait_until([&] { return !listener.watchdogs(thawed, Clock::now()).empty(); }, 5s))
      << "the watchdog did not resume";

  // Reload: RELOADING=1 (with the monotonic time systemd 253 matches it by), then READY=1.
  const auto reload = Clock::now();
  ASSERT_EQ(kill(blip.process().pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return listener.first("READY=1", reload).has_value(); }, 15s))
      << blip.log();
  const auto reloading = listener.first("RELOADING=1", reload);
  ASSERT_TRUE(reloading.has_value());
  EXPECT_LE(*reloading, *listener.first("READY=1", reload));
  bool monotonic = false;
  for (const auto& message : listener.messages()) {
    monotonic = monotonic || std::regex_search(message.text, std::regex("\nMONOTONIC_USEC=[0-9]+"));
  }
  EXPECT_TRUE(monotonic);

  const auto stop = Clock::now();
  EXPECT_EQ(blip.stop(), 0) << blip.log();
  EXPECT_TRUE(listener.first("STOPPING=1", stop).has_value());
}

TEST(SystemdUnit, TheShippedUnitIsHardened) {
  std::string output;
  ASSERT_EQ(test::run_command({"systemd-analyze", "security", "--offline=true", "--no-pager",
                               std::string(BLIP_SOURCE_DIR) + "/deploy/systemd/blip.service"},
                              &output),
            0)
      << output;
  std::smatch found;
  ASSERT_TRUE(std::regex_search(output, found,
                                std::regex("Overall exposure level for blip.service: ([0-9.]+)")))
      << output;
  const double exposure = std::stod(found[1]);
  std::cerr << "systemd-analyze security: exposure " << exposure << "\n";
  EXPECT_LE(exposure, 2.0) << output;
}

}  // namespace
}  // namespace blip
