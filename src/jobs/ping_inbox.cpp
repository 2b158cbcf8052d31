#include "blip/jobs/ping_inbox.hpp"

#include <algorithm>

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
    auto kept = std::find_if(jobs_.begin(), jobs_.end(), [&](const Entry& entry) { return entry.name == name; });
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

PingInbox::Verdict PingInbox::submit(std::string_view token, JobPing ping, int64_t now_mono_us) {
  {
    std::lock_guard lock(mutex_);
    // Every token is compared, so the time taken does not say which one came close.
    Entry* job = nullptr;
    for (Entry& entry : jobs_) {
      if (constant_time_equal(entry.token, token)) job = &entry;
    }
    if (!job) return Verdict::unknown_token;
    const double elapsed_s = job->refilled_us == 0 ? 0.0 : static_cast<double>(now_mono_us - job->refilled_us) / 1e6;
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

}  // namespace blip
