#include "blip/jobs/job_monitor.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"

namespace blip {
namespace {

constexpr uint64_t kEvaluateEveryMs = 1000;
// A start this much before a scheduled time counts for that time (clocks differ a little).
constexpr int64_t kEarlyStartToleranceMs = 30'000;

}  // namespace

void keep_output_tail(std::string& tail, std::string_view data) {
  tail.append(data);
  // Trimmed in steps, not per byte: at most twice the cap is ever held.
  if (tail.size() > 2 * kMaxRunOutputBytes) tail.erase(0, tail.size() - kMaxRunOutputBytes);
}

std::string clean_run_output(std::string_view output) {
  // Line by line, so the lines survive; the last ones are what a person needs.
  std::string cleaned;
  size_t at = 0;
  while (at <= output.size()) {
    const size_t end = std::min(output.find('\n', at), output.size());
    std::string line =
        sanitize_target_text(std::string(output.substr(at, end - at)), kMaxRunOutputBytes);
    if (end < output.size() || !line.empty()) cleaned += line + (end < output.size() ? "\n" : "");
    at = end + 1;
  }
  if (cleaned.size() <= kMaxRunOutputBytes) return cleaned;
  size_t cut = cleaned.size() - kMaxRunOutputBytes;
  const size_t line_start = cleaned.find('\n', cut);
  cut = line_start == std::string::npos ? cut : line_start + 1;
  while (cut < cleaned.size() && (static_cast<unsigned char>(cleaned[cut]) & 0xc0) == 0x80) ++cut;
  return cleaned.substr(cut);
}

JobMonitor::JobMonitor(uv_loop_t* loop, RecordSink& runs, int64_t last_run_id, SampleSink samples)
    : runs_(runs),
      next_run_id_(last_run_id + 1),
      samples_(std::move(samples)),
      tick_(loop, [this] { evaluate(wall_now_ms()); }) {}

void JobMonitor::start() { tick_.start(kEvaluateEveryMs, kEvaluateEveryMs); }
void JobMonitor::stop() { tick_.stop(); }

void JobMonitor::add(size_t index, const JobConfig& config, int64_t probe_id,
                     const std::vector<JobRunRow>& history, int64_t watching_since_ms) {
  Job job;
  job.config = &config;
  if (!config.settings.schedule.empty()) {
    std::string problem;
    job.schedule =
        CronSchedule::parse(config.settings.schedule, config.settings.time_zone, &problem);
  }
  job.probe_id = probe_id;
  job.watching_since_ms = watching_since_ms;
  // Newest first: the last start and end, runs still open, and whether the last finished run
  // failed.
  for (const JobRunRow& run : history) {
    if (run.start_ms && !job.last_start_ms) job.last_start_ms = run.start_ms;
    if (run.end_ms && !job.last_end_ms) job.last_end_ms = run.end_ms;
    if (!run.end_ms && run.start_ms && job.open_runs.size() < kMaxOpenRuns)
      job.open_runs.insert(job.open_runs.begin(), run);
    if (run.start_ms && run.end_ms && job.finished.size() < kTrendRuns) {
      job.finished.insert(job.finished.begin(),
                          RunPoint{*run.start_ms, *run.end_ms - *run.start_ms});
    }
    if (run.end_ms && !job.last_run) {
      job.last_run = run;
      if (run.failed) job.failed_since_ms = std::max(*run.end_ms, watching_since_ms);
    }
  }
  job.last_sample_ms = watching_since_ms;
  jobs_.insert_or_assign(index, std::move(job));
}

void JobMonitor::remove(size_t index) { jobs_.erase(index); }

int64_t JobMonitor::due_ms(const Job& job) const {
  const JobSettings& settings = job.config->settings;
  // From the last start (or end, for a job that only reports ends), else from when blip began to
  // watch.
  const std::optional<int64_t> reported = job.last_start_ms ? job.last_start_ms : job.last_end_ms;
  if (settings.period_ms > 0)
    return reported.value_or(job.watching_since_ms) + settings.period_ms + settings.grace_ms;
  if (!job.schedule) return 0;
  const int64_t from = reported ? *reported + std::min(settings.grace_ms, kEarlyStartToleranceMs)
                                : job.watching_since_ms;
  const auto expected = job.schedule->next_after(from);
  return expected ? *expected + settings.grace_ms : 0;
}

JobMonitor::Verdict JobMonitor::judge(const Job& job, int64_t now_ms) const {
  const JobSettings& settings = job.config->settings;
  if (!job.open_runs.empty() && settings.max_run_ms > 0) {
    const int64_t oldest = *job.open_runs.front().start_ms;
    if (now_ms >= oldest + settings.max_run_ms) {
      return {Status::down, ErrorClass::overrunning,
              fmt::format("run started {} is still running past max_run {}",
                          format_iso8601_ms(oldest), format_duration_ms(settings.max_run_ms)),
              oldest + settings.max_run_ms, "overrunning"};
    }
  }
  if (job.failed_since_ms) {
    const JobRunRow& run = *job.last_run;
    std::string detail = run.exit_status
                             ? fmt::format("run ended with exit status {}", *run.exit_status)
                             : std::string("run reported failure");
    return {Status::down, ErrorClass::failed, std::move(detail), *job.failed_since_ms,
            job.open_runs.empty() ? "failed" : "running"};
  }
  if (!job.open_runs.empty()) return {Status::up, ErrorClass::none, {}, 0, "running"};
  const int64_t due = due_ms(job);
  if (due != 0 && now_ms >= due) {
    const int64_t expected = due - settings.grace_ms;
    return {Status::down, ErrorClass::late,
            fmt::format("no start since the one expected at {} (grace {})",
                        format_iso8601_ms(expected), format_duration_ms(settings.grace_ms)),
            due, "late"};
  }
  return {Status::up, ErrorClass::none, {}, 0, "up"};
}

void JobMonitor::emit(size_t index, Job& job, int64_t now_ms) {
  Verdict verdict = judge(job, now_ms);
  // A down state's first sample is stamped with the moment it began, never before the last sample.
  int64_t sent_ms = now_ms;
  if (verdict.status == Status::down && job.last_status != Status::down) sent_ms = verdict.since_ms;
  sent_ms = std::clamp(sent_ms, job.last_sample_ms, std::max(now_ms, job.last_sample_ms));
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.status = verdict.status;
  sample.error = verdict.error;
  sample.detail = std::move(verdict.detail);
  job.last_sample_ms = sent_ms;
  job.last_status = verdict.status;
  samples_(index, sample);
}

void JobMonitor::evaluate(int64_t now_ms) {
  for (auto& [index, job] : jobs_) emit(index, job, now_ms);
}

void JobMonitor::ping(size_t index, const JobPing& ping) {
  auto found = jobs_.find(index);
  if (found == jobs_.end()) return;
  Job& job = found->second;
  const int64_t at = std::max(ping.received_ms, job.last_sample_ms);
  if (ping.kind == JobPing::Kind::start) {
    // A new start without a run id replaces an open run without one: that run never reported its
    // end.
    if (ping.rid.empty())
      std::erase_if(job.open_runs, [](const JobRunRow& run) { return run.rid.empty(); });
    if (job.open_runs.size() >= kMaxOpenRuns) job.open_runs.erase(job.open_runs.begin());
    JobRunRow run;
    run.id = next_run_id_++;
    run.probe_id = job.probe_id;
    run.rid = ping.rid;
    run.start_ms = at;
    job.open_runs.push_back(run);
    job.last_start_ms = at;
    runs_.write_job_run(run);
  } else {
    // The end pairs with the open run of its run id, else the latest open run without one.
    auto open = std::find_if(job.open_runs.rbegin(), job.open_runs.rend(),
                             [&](const JobRunRow& run) { return run.rid == ping.rid; });
    JobRunRow run;
    if (open != job.open_runs.rend()) {
      run = *open;
      job.open_runs.erase(std::next(open).base());
    } else {
      run.id = next_run_id_++;
      run.probe_id = job.probe_id;
      run.rid = ping.rid;
      if (ping.duration_ms) run.start_ms = at - *ping.duration_ms;
    }
    run.end_ms = at;
    run.exit_status = ping.exit_status;
    run.failed = ping.failed || (ping.exit_status && *ping.exit_status != 0);
    run.output = ping.output;
    job.last_end_ms = at;
    job.last_run = run;
    if (run.failed) {
      if (!job.failed_since_ms) job.failed_since_ms = at;
    } else {
      job.failed_since_ms.reset();
    }
    runs_.write_job_run(run);
    if (run.start_ms) {
      job.finished.push_back({*run.start_ms, *run.end_ms - *run.start_ms});
      if (job.finished.size() > kTrendRuns) job.finished.erase(job.finished.begin());
      forecast(index, job, at);
    }
    log_info(
        "job: run ended job={} exit={} duration={}", job.config->name,
        run.exit_status ? std::to_string(*run.exit_status) : std::string(run.failed ? "fail" : "-"),
        run.start_ms ? format_duration_brief(*run.end_ms - *run.start_ms) : std::string("-"));
  }
  emit(index, job, at);
}

void JobMonitor::forecast(size_t index, Job& job, int64_t now_ms) {
  const JobSettings& settings = job.config->settings;
  if (settings.max_run_ms <= 0 || !forecast_) return;
  const int64_t period = job_period_ms(settings, now_ms);
  const auto trend = fit_run_trend(job.finished, settings.max_run_ms, period);
  const bool soon = trend && trend->exceeds_max_run_ms && *trend->exceeds_max_run_ms > now_ms &&
                    *trend->exceeds_max_run_ms - now_ms <= kForecastHorizonMs;
  if (soon && !job.forecast_told)
    forecast_(index, describe_run_trend(*trend, settings.max_run_ms, period, now_ms));
  job.forecast_told = soon;
}

std::optional<JobLiveState> JobMonitor::live(size_t index, int64_t now_ms) const {
  auto found = jobs_.find(index);
  if (found == jobs_.end()) return std::nullopt;
  const Job& job = found->second;
  JobLiveState state;
  state.state = judge(job, now_ms).state;
  state.due_ms = job.open_runs.empty() ? due_ms(job) : 0;
  if (!job.open_runs.empty()) state.running_since_ms = job.open_runs.front().start_ms;
  state.last_run = job.last_run;
  return state;
}

}  // namespace blip
