#include "blip/scheduler/scheduler.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "blip/core/clock.hpp"
#include "blip/core/descriptors.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"
#include "blip/probes/probe_runtime.hpp"

namespace blip {

void LagHistogram::record(int64_t lag_us) {
  size_t bucket = static_cast<size_t>(std::clamp<int64_t>(lag_us / kBucketUs, 0, kBuckets));
  ++buckets_[bucket];
  ++count_;
}

int64_t LagHistogram::percentile_us(double fraction) const {
  if (count_ == 0) return 0;
  auto target = static_cast<int64_t>(fraction * static_cast<double>(count_));
  int64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen > target) return static_cast<int64_t>(i) * kBucketUs;
  }
  return static_cast<int64_t>(kBuckets) * kBucketUs;
}

Scheduler::Scheduler(uv_loop_t* loop, const std::vector<ProbeConfig>& configs,
                     std::vector<std::unique_ptr<Probe>>& probes, SampleSink sink, bool single_shot)
    : loop_(loop), sink_(std::move(sink)), single_shot_(single_shot) {
  for (size_t i = 0; i < configs.size(); ++i) {
    auto state = std::make_unique<ProbeState>();
    state->index = i;
    state->config = &configs[i];
    state->probe = probes[i].get();
    states_.push_back(std::move(state));
  }
}

Scheduler::~Scheduler() { cancel_all(); }

Scheduler::StartGroups Scheduler::start_groups(const std::vector<const ProbeConfig*>& configs,
                                               size_t group_size) {
  std::map<int64_t, std::pair<size_t, size_t>> open;  // by interval: group, members so far
  StartGroups groups;
  for (const ProbeConfig* config : configs) {
    auto [found, added] = open.try_emplace(config->interval_ms, groups.count, 0);
    if (!added && found->second.second >= group_size) found->second = {groups.count, 0};
    if (found->second.first == groups.count) ++groups.count;
    ++found->second.second;
    groups.of_probe.push_back(found->second.first);
  }
  return groups;
}

void Scheduler::start() {
  const int64_t now = mono_now_us();
  std::vector<const ProbeConfig*> configs;
  for (const auto& state : states_) configs.push_back(state->config);
  const StartGroups groups = start_groups(configs, start_group_size_);
  for (size_t i = 0; i < states_.size(); ++i) {
    ProbeState& state = *states_[i];
    state.tick = Timer(loop_, [this, &state] { fire(state); });
    state.deadline = Timer(loop_, [this, &state] { deadlines_due(state); });
    // The groups' first firings are spread over one interval, so that no more than a group
    // fires in lock-step (probes of different intervals are each a group of their own).
    int64_t offset = single_shot_ ? 0
                                  : state.config->interval_ms * 1000 *
                                        static_cast<int64_t>(groups.of_probe[i]) /
                                        static_cast<int64_t>(groups.count);
    state.next_due_us = now + offset;
    if (single_shot_) {
      fire(state);
    } else {
      arm(state);
    }
  }
}

// libuv timers count whole milliseconds of a loop time cached once per
// iteration, so a timer fires up to a millisecond either side of a
// microsecond due time. Arming rounded down and sending when within
// kEarlyToleranceUs of due keeps sends on time without a second wake-up.
constexpr int64_t kEarlyToleranceUs = 1000;
// A deadline timer this late means the loop itself stalled.
constexpr int64_t kLateDeadlineUs = 100'000;

void Scheduler::arm(ProbeState& state) {
  const int64_t wait_us = state.next_due_us - mono_now_us();
  state.tick.start(static_cast<uint64_t>(std::max<int64_t>(0, wait_us / 1000)));
}

void Scheduler::fire(ProbeState& state) {
  // libuv's loop time is cached; after a callback that blocked, timers armed
  // from it would expire at once: a deadline is armed against real time.
  uv_update_time(loop_);
  const int64_t now_us = mono_now_us();
  if (now_us + kEarlyToleranceUs < state.next_due_us) {
    arm(state);
    return;
  }
  schedule_lag_.record(std::max<int64_t>(0, now_us - state.next_due_us));
  const int64_t interval_us = state.config->interval_ms * 1000;
  state.next_due_us += interval_us;
  // After a stall, skip the slots that were missed rather than firing a burst.
  while (state.next_due_us <= now_us) state.next_due_us += interval_us;
  if (!single_shot_) arm(state);

  // Attempts end by their deadline, so this bound is only reached if a probe
  // ignores cancel(); it keeps memory flat even then.
  const size_t max_in_flight = static_cast<size_t>(kMaxAttemptsInFlight) + 2;
  if (state.in_flight.size() >= max_in_flight) {
    log_warn("scheduler: too many attempts in flight probe={} in_flight={}", state.config->name,
             state.in_flight.size());
    return;
  }
  const AttemptId id = state.next_id++;
  state.in_flight.emplace(
      id, InFlight{wall_now_ms(), now_us, now_us + state.config->timeout_ms * 1000, false});
  if (!state.deadline_armed) arm_deadline(state);
  state.probe->start(id, [this, &state, id](ProbeResult result) {
    auto flight = state.in_flight.find(id);
    if (flight == state.in_flight.end()) return;
    complete(state, id, std::move(result), mono_now_us() - flight->second.sent_mono_us);
  });
}

void Scheduler::arm_deadline(ProbeState& state) {
  if (state.in_flight.empty()) {
    state.deadline.stop();
    state.deadline_armed = false;
    return;
  }
  // Rounded up: libuv counts whole milliseconds, and an early wake-up would only arm again.
  const int64_t wait_us = state.in_flight.begin()->second.deadline_mono_us - mono_now_us();
  state.deadline.start(static_cast<uint64_t>(std::max<int64_t>(0, (wait_us + 999) / 1000)));
  state.deadline_armed = true;
}

void Scheduler::deadlines_due(ProbeState& state) {
  state.deadline_armed = false;
  uv_update_time(loop_);
  const int64_t now_us = mono_now_us();
  std::vector<AttemptId> due;
  bool deferred = false;
  for (auto& [id, flight] : state.in_flight) {
    if (flight.deadline_mono_us > now_us + kEarlyToleranceUs) break;
    // After a loop stall libuv runs timers before reading the sockets that
    // became readable meanwhile: give one I/O poll the chance to deliver an
    // answer that came in time before calling this attempt a timeout.
    if (now_us - flight.deadline_mono_us > kLateDeadlineUs && !flight.deadline_deferred) {
      flight.deadline_deferred = true;
      deferred = true;
      continue;
    }
    due.push_back(id);
  }
  // Each in turn: a probe's cancel() may complete its other attempts.
  for (AttemptId id : due) {
    auto flight = state.in_flight.find(id);
    if (flight == state.in_flight.end()) continue;
    const int64_t sent_mono_us = flight->second.sent_mono_us;
    std::string detail =
        fmt::format("no answer within {}", format_duration_ms(state.config->timeout_ms));
    if (std::string progress = state.probe->progress(id); !progress.empty())
      detail += " (" + progress + ")";
    state.probe->cancel(id);
    complete(state, id, ProbeResult::failure(ErrorClass::timeout, std::move(detail)),
             mono_now_us() - sent_mono_us);
  }
  if (state.deadline_armed || !state.probe) return;  // armed again meanwhile, or removed
  if (deferred) {
    state.deadline.start(0);
    state.deadline_armed = true;
    return;
  }
  arm_deadline(state);
}

void Scheduler::complete(ProbeState& state, AttemptId id, ProbeResult result, int64_t latency_us) {
  auto flight = state.in_flight.find(id);
  if (flight == state.in_flight.end()) return;
  Sample sample;
  sample.sent_ms = flight->second.sent_ms;
  sample.sent_mono_us = flight->second.sent_mono_us;
  sample.latency_us = latency_us;
  sample.error = result.error;
  sample.phases = result.phases;
  sample.cert_expiry_ms = result.cert_expiry_ms;
  // Details carry what targets sent; from here on (store, log, feed, report) they are safe text.
  sample.detail = sanitize_target_text(std::move(result.detail));
  if (stalled_since_ && stalled_since_(flight->second.sent_mono_us)) {
    // What the target did while blip could not run is unknown; the stall is not its latency.
    sample.status = Status::blind;
    sample.latency_us = 0;
    sample.error = ErrorClass::none;
    sample.phases = {};
    sample.detail = "in flight while blip itself stalled";
  } else if (!result.ok && (result.no_socket || out_of_descriptors(sample.detail))) {
    // blip had no socket to give this attempt: that says nothing about the target.
    sample.status = Status::blind;
    sample.latency_us = 0;
    sample.error = ErrorClass::none;
    sample.phases = {};
    sample.detail = "blip is out of file descriptors: " + sample.detail;
    // Said in the log too (blind samples keep no detail in the store), at most every 10 s.
    if (descriptor_warning_mono_us_ == 0 ||
        mono_now_us() - descriptor_warning_mono_us_ > 10'000'000) {
      descriptor_warning_mono_us_ = mono_now_us();
      const int64_t open = open_descriptor_count();  // -1: not even one left to count them with
      log_warn(
          "scheduler: out of file descriptors probe={} open={} detail={} (attempts without a "
          "socket "
          "are stored as blind, not as the target's failure)",
          state.config->name, open < 0 ? std::string("all") : std::to_string(open), sample.detail);
    }
  } else if (!result.ok) {
    sample.status = Status::down;
  } else if (result.degraded || (state.config->degraded_after_ms &&
                                 latency_us > *state.config->degraded_after_ms * 1000)) {
    sample.status = Status::degraded;
  }
  state.in_flight.erase(flight);
  // Its deadline goes with the last attempt; with others in flight the timer
  // wakes for a deadline already met and arms for the next one then.
  if (state.in_flight.empty() && state.deadline_armed) {
    state.deadline.stop();
    state.deadline_armed = false;
  }
  state.finished.emplace(id, std::move(sample));
  // Deliver in send order: an outage is a run of consecutive samples as sent.
  for (auto next = state.finished.begin();
       next != state.finished.end() && next->first == state.next_to_deliver;
       next = state.finished.begin()) {
    sink_(state.index, next->second);
    state.finished.erase(next);
    ++state.next_to_deliver;
  }
  check_drained();
}

size_t Scheduler::add(const ProbeConfig& config, Probe* probe) {
  auto owned = std::make_unique<ProbeState>();
  ProbeState& state = *owned;
  state.index = states_.size();
  state.config = &config;
  state.probe = probe;
  states_.push_back(std::move(owned));
  state.tick = Timer(loop_, [this, &state] { fire(state); });
  state.deadline = Timer(loop_, [this, &state] { deadlines_due(state); });
  state.next_due_us = mono_now_us();
  if (!stopping_) arm(state);
  return state.index;
}

void Scheduler::remove(size_t index) {
  ProbeState& state = *states_.at(index);
  if (!state.probe) return;
  cancel(state);
  state.probe = nullptr;
  check_drained();
}

void Scheduler::stop(std::function<void()> on_drained) {
  stopping_ = true;
  on_drained_ = std::move(on_drained);
  for (auto& state : states_) state->tick.stop();
  check_drained();
}

void Scheduler::check_drained() {
  if (!stopping_) return;
  for (auto& state : states_) {
    if (!state->in_flight.empty()) return;
  }
  if (auto drained = std::move(on_drained_)) {
    on_drained_ = nullptr;
    drained();
  }
}

void Scheduler::abandon() {
  // Answered samples that waited only for an earlier attempt still in flight are delivered.
  for (auto& state : states_) {
    for (auto& [id, sample] : state->finished) sink_(state->index, sample);
    state->finished.clear();
  }
  cancel_all();
}

void Scheduler::cancel_all() {
  for (auto& state : states_) cancel(*state);
}

void Scheduler::cancel(ProbeState& state) {
  state.tick.close();
  state.deadline.close();
  state.deadline_armed = false;
  // Taken out first: a probe's cancel() may complete its other attempts (a connection came free).
  const auto in_flight = std::move(state.in_flight);
  state.in_flight.clear();
  state.finished.clear();
  if (!state.probe) return;
  for (const auto& [id, flight] : in_flight) state.probe->cancel(id);
}

std::vector<Sample> run_each_probe_once(const std::vector<ProbeConfig>& configs) {
  std::vector<Sample> samples(configs.size());
  ProbeRuntime runtime(configs);
  Scheduler scheduler(
      runtime.loop.get(), configs, runtime.probes,
      [&](size_t index, const Sample& sample) { samples[index] = sample; }, true);
  scheduler.start();
  scheduler.stop([&] { runtime.loop.stop(); });
  runtime.loop.run();
  return samples;
}

}  // namespace blip
