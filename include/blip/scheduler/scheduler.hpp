#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"
#include "blip/core/sample.hpp"
#include "blip/probes/probe.hpp"

namespace blip {

// Distribution of how late ticks fired against their schedule, in microseconds.
class LagHistogram {
 public:
  void record(int64_t lag_us);
  int64_t percentile_us(double fraction) const;
  int64_t count() const { return count_; }

 private:
  static constexpr int64_t kBucketUs = 10;
  static constexpr size_t kBuckets = 100'000;  // up to 1 s; beyond that the last bucket
  std::vector<uint32_t> buckets_ = std::vector<uint32_t>(kBuckets + 1, 0);
  int64_t count_ = 0;
};

// Fires each probe on its interval, enforces its timeout, times each attempt
// and hands finished samples, per probe in send order, to the sink.
class Scheduler {
 public:
  using SampleSink = std::function<void(size_t probe_index, const Sample&)>;

  // `probes[i]` runs `configs[i]`. With `single_shot`, start() fires each probe
  // once at once; follow it with stop() to learn when all have answered.
  Scheduler(uv_loop_t* loop, const std::vector<ProbeConfig>& configs,
            std::vector<std::unique_ptr<Probe>>& probes, SampleSink sink, bool single_shot = false);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  void start();
  // Stops firing; `on_drained` runs once every attempt in flight has finished
  // or timed out, so every sample sent is delivered.
  void stop(std::function<void()> on_drained);
  // Stops at once: attempts in flight are abandoned without a sample (those
  // already answered are delivered).
  void abandon();

  // A probe added while running (a reload): fires from now on; returns its index.
  size_t add(const ProbeConfig& config, Probe* probe);
  // A probe removed while running: it fires no more and its attempts in flight
  // are abandoned without samples. Its index is never reused.
  void remove(size_t index);

  const LagHistogram& schedule_lag() const { return schedule_lag_; }
  // Probes of one interval start together in groups of up to this many: a
  // group's attempts share the loop's wake-ups. On a virtual machine an attempt
  // that wakes the loop alone costs about three times the CPU of one of ten that
  // fire together (docs/benchmarks.md); more than this many at once would make
  // the last of them late by the others' work.
  static constexpr size_t kStartGroup = 32;
  // Which start group each probe is in (probes of one interval, up to
  // `group_size` per group, in configuration order), and how many groups.
  // start() spreads the groups' first firings over each probe's interval.
  struct StartGroups {
    std::vector<size_t> of_probe;
    size_t count = 0;
  };
  static StartGroups start_groups(const std::vector<const ProbeConfig*>& configs,
                                  size_t group_size);
  // Before start(): 1 spreads every probe on its own. A group needs its sockets
  // at once; where the open files limit is short of what the probes can need,
  // a burst would turn into attempts without a socket (blind samples).
  void set_start_group_size(size_t size) { start_group_size_ = std::max<size_t>(1, size); }
  // Tells whether blip's own loop stalled after a monotonic time; an attempt
  // in flight across such a stall is stored as Status::blind.
  void set_stall_detector(std::function<bool(int64_t since_mono_us)> stalled_since) {
    stalled_since_ = std::move(stalled_since);
  }

 private:
  struct InFlight {
    int64_t sent_ms;
    int64_t sent_mono_us;
    int64_t deadline_mono_us;
    bool deadline_deferred = false;
  };
  struct ProbeState {
    size_t index = 0;
    const ProbeConfig* config;
    Probe* probe;  // null once removed
    Timer tick;
    // One timer for the deadlines of all its attempts in flight, armed for the
    // oldest's: every attempt has the same timeout, so they come due in send order.
    Timer deadline;
    bool deadline_armed = false;
    int64_t next_due_us = 0;
    AttemptId next_id = 0;
    AttemptId next_to_deliver = 0;
    std::map<AttemptId, InFlight> in_flight;
    std::map<AttemptId, Sample> finished;  // waiting for earlier attempts
  };

  void arm(ProbeState& state);
  void fire(ProbeState& state);
  void arm_deadline(ProbeState& state);
  void deadlines_due(ProbeState& state);
  void complete(ProbeState& state, AttemptId id, ProbeResult result, int64_t latency_us);
  void check_drained();
  void cancel_all();
  void cancel(ProbeState& state);

  uv_loop_t* loop_;
  std::vector<std::unique_ptr<ProbeState>> states_;
  SampleSink sink_;
  bool single_shot_;
  size_t start_group_size_ = kStartGroup;
  bool stopping_ = false;
  std::function<void()> on_drained_;
  std::function<bool(int64_t)> stalled_since_;
  LagHistogram schedule_lag_;
  int64_t descriptor_warning_mono_us_ = 0;  // when the log last said blip ran out of descriptors
};

// Runs one attempt of every probe at once on a loop of its own and returns the
// samples, in order (`blip once`).
std::vector<Sample> run_each_probe_once(const std::vector<ProbeConfig>& configs);

}  // namespace blip
