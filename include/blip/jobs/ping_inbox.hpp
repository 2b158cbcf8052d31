#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/jobs/job_monitor.hpp"

namespace blip {

// "/ping/<token>[/start|/fail|/<0-255>]" → the token (a view into `path`) and
// what the ping says; false for any other path.
bool parse_ping_path(std::string_view path, std::string_view& token, JobPing& ping);
// A ping's `duration_ms` query value: a whole number of milliseconds under a
// year (366 days), else nullopt.
std::optional<int64_t> parse_ping_duration_ms(std::string_view text);

// Hands job check-ins from the feed's threads to the loop: the listener
// finds the job by its token (compared in constant time), limits each job's
// rate, and queues the ping; the loop takes the queue when woken.
class PingInbox {
 public:
  enum class Verdict { accepted, unknown_token, rate_limited, queue_full };
  // Pings per second a job may send, and how many at once.
  static constexpr double kPingsPerSecond = 5.0;
  static constexpr double kPingBurst = 30.0;
  static constexpr size_t kMaxQueued = 10'000;

  // The loop's side: the jobs by name and token (at start and on each reload),
  // and what to call when a ping is queued (an AsyncWake's send()).
  void set_jobs(const std::vector<std::pair<std::string, std::string>>& names_and_tokens);
  void set_wake(std::function<void()> wake);
  std::vector<std::pair<std::string, JobPing>> take();

  // The listener's side (any thread).
  Verdict submit(std::string_view token, JobPing ping, int64_t now_mono_us);
  // Whether a job has this token: asked before a check-in's body is read.
  bool knows(std::string_view token);

 private:
  struct Entry {
    std::string name;
    std::string token;
    double tokens = kPingBurst;
    int64_t refilled_us = 0;
  };
  std::mutex mutex_;
  std::vector<Entry> jobs_;
  std::deque<std::pair<std::string, JobPing>> queue_;
  std::function<void()> wake_;

  // The job with this token, every token compared; called with mutex_ held.
  Entry* find(std::string_view token);
};

// Whether two strings are equal, in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace blip
