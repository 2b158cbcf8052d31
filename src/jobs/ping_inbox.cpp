#include "blip/jobs/ping_inbox.hpp"

#include <algorithm>
#include <charconv>
#include <string>

namespace blip {

bool constant_time_equal(std::string_view a, std::string_view b) {
  const size_t length = std::max(a.size(), b.size());
  unsigned difference = a.size() == b.size() ? 0U : 1U;
  for (size_t i = 0; i < length; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    difference |= static_cast<unsigned>(x ^ y);
  }
  return difference == 0;
}

void PingInbox::set_jobs(const std::vector<std::pair<std::string, std::string>>& names_and_tokens) {
  std::lock_guard lock(mutex_);
  std::vector<Entry> jobs;
  for (const auto& [name, token] : names_and_tokens) {
    // A job kept across a reload keeps what it has used of its rate.
    // An init-capture: clang 14 cannot capture a structured binding itself.
    auto kept = std::find_if(jobs_.begin(), jobs_.end(),
                             [&wanted = name](const Entry& entry) { return entry.name == wanted; });
    jobs.push_back(kept != jobs_.end() ? *kept : Entry{name, token});
    jobs.back().token = token;
  }
  jobs_ = std::move(jobs);
}

void PingInbox::set_wake(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

std::vector<std::pair<std::string, JobPing>> PingInbox::take() {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, JobPing>> taken(std::make_move_iterator(queue_.begin()),
                                                     std::make_move_iterator(queue_.end()));
  queue_.clear();
  return taken;
}

PingInbox::Entry* PingInbox::find(std::string_view token) {
  // Every token is compared, so the time taken does not say which one came close.
  Entry* job = nullptr;
  for (Entry& entry : jobs_) {
    if (constant_time_equal(entry.token, token)) job = &entry;
  }
  return job;
}

bool PingInbox::knows(std::string_view token) {
  std::lock_guard lock(mutex_);
  return find(token) != nullptr;
}

PingInbox::Verdict PingInbox::submit(std::string_view token, JobPing ping, int64_t now_mono_us) {
  {
    std::lock_guard lock(mutex_);
    Entry* job = find(token);
    if (!job) return Verdict::unknown_token;
    const double elapsed_s =
        job->refilled_us == 0 ? 0.0 : static_cast<double>(now_mono_us - job->refilled_us) / 1e6;
    job->tokens = std::min(kPingBurst, job->tokens + elapsed_s * kPingsPerSecond);
    job->refilled_us = now_mono_us;
    if (job->tokens < 1.0) return Verdict::rate_limited;
    if (queue_.size() >= kMaxQueued) return Verdict::queue_full;
    job->tokens -= 1.0;
    queue_.emplace_back(job->name, std::move(ping));
    // Under the lock: the loop clears the wake before its handle goes.
    if (wake_) wake_();
  }
  return Verdict::accepted;
}

bool parse_ping_path(std::string_view path, std::string_view& token, JobPing& ping) {
  constexpr std::string_view prefix = "/ping/";
  if (!path.starts_with(prefix)) return false;
  path.remove_prefix(prefix.size());
  const size_t slash = path.find('/');
  token = path.substr(0, slash);
  if (token.empty()) return false;
  const std::string_view action =
      slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  ping.kind = JobPing::Kind::end;
  if (action.empty()) {
    ping.exit_status = 0;
  } else if (action == "start") {
    ping.kind = JobPing::Kind::start;
  } else if (action == "fail") {
    ping.failed = true;
  } else {
    if (action.size() > 3 ||
        !std::all_of(action.begin(), action.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    const int status = std::stoi(std::string(action));
    if (status > 255) return false;
    ping.exit_status = status;
  }
  return true;
}

std::optional<int64_t> parse_ping_duration_ms(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [parsed_to, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || parsed_to != end || value < 0 || value >= 366LL * 86'400'000)
    return std::nullopt;
  return value;
}

}  // namespace blip
