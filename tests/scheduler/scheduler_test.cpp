// The scheduler on its own: a real libuv loop and a probe defined here that
// answers when the test says so (a stand-in for the Probe interface, not for a
// server). What is asserted: send order across probes of different intervals
// and offsets, slots missed while the loop was blocked are skipped (one
// catch-up send, no burst) and their lateness is recorded, the cap on attempts
// in flight, samples delivered in send order whatever order answers come in, and
// each attempt of several in flight ended at its own deadline by the one timer.
#include "blip/scheduler/scheduler.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

struct Send {
  size_t probe;
  AttemptId id;
  int64_t mono_us;
};

// Answers at once (`answer_at_once`) or when the test calls answer(id); counts cancels.
class CommandedProbe : public Probe {
 public:
  CommandedProbe(size_t index, std::vector<Send>& sends) : index_(index), sends_(sends) {}
  void start(AttemptId id, ProbeDone done) override {
    sends_.push_back({index_, id, mono_now_us()});
    if (answer_at_once) {
      done(ProbeResult::success());
    } else {
      pending_.emplace(id, std::move(done));
    }
    if (on_start) on_start(id);
  }
  void cancel(AttemptId id) noexcept override {
    if (pending_.erase(id) > 0) ++cancelled;
  }
  void answer(AttemptId id, ProbeResult result = ProbeResult::success()) {
    auto done = std::move(pending_.at(id));
    pending_.erase(id);
    done(std::move(result));
  }
  void answer_all() {
    while (!pending_.empty()) answer(pending_.begin()->first);
  }
  size_t pending() const { return pending_.size(); }

  bool answer_at_once = true;
  std::function<void(AttemptId)> on_start;
  int cancelled = 0;

 private:
  size_t index_;
  std::vector<Send>& sends_;
  std::map<AttemptId, ProbeDone> pending_;
};

ProbeConfig config_of(const std::string& name, int64_t interval_ms, int64_t timeout_ms) {
  ProbeConfig config;
  config.name = name;
  config.type = "tcp";
  config.interval_ms = interval_ms;
  config.timeout_ms = timeout_ms;
  return config;
}

// The loop, the probes and the scheduler of one test, with what they did.
struct Rig {
  explicit Rig(std::vector<ProbeConfig> probe_configs) : configs(std::move(probe_configs)) {
    for (size_t i = 0; i < configs.size(); ++i) {
      auto probe = std::make_unique<CommandedProbe>(i, sends);
      probes.push_back(probe.get());
      owned.push_back(std::move(probe));
    }
    scheduler = std::make_unique<Scheduler>(
        loop.get(), configs, owned,
        [this](size_t index, const Sample& sample) { delivered.emplace_back(index, sample); });
  }
  // Starts the scheduler and runs the loop until `stop_after`, then drains.
  void run_for(std::chrono::milliseconds stop_after) {
    Timer stop(loop.get(), [this] { scheduler->stop([this] { loop.stop(); }); });
    stop.start(static_cast<uint64_t>(stop_after.count()));
    started_before_us = mono_now_us();
    scheduler->start();
    started_after_us = mono_now_us();
    loop.run();
  }
  std::vector<Send> sends_of(size_t probe) const {
    std::vector<Send> out;
    for (const Send& send : sends) {
      if (send.probe == probe) out.push_back(send);
    }
    return out;
  }

  EventLoop loop;
  std::vector<ProbeConfig> configs;
  std::vector<Send> sends;
  std::vector<std::unique_ptr<Probe>> owned;
  std::vector<CommandedProbe*> probes;
  std::vector<std::pair<size_t, Sample>> delivered;
  std::unique_ptr<Scheduler> scheduler;
  int64_t started_before_us = 0;
  int64_t started_after_us = 0;
};

// The scheduler spreads first firings: probe i of n starts interval·i/n after start()
// (when every probe has an interval of its own: each is a start group then).
int64_t offset_us(const ProbeConfig& config, size_t index, size_t count) {
  return config.interval_ms * 1000 * static_cast<int64_t>(index) / static_cast<int64_t>(count);
}

// The k-th send of a probe is due at start + offset + k·interval. It may fire up
// to 1 ms early (libuv's whole-millisecond timers; kEarlyToleranceUs) and late by
// however long the machine kept the loop from running: 150 ms is half the
// shortest interval here, far more than a loaded 2-core machine under ASan
// delays a near-idle loop, and less than a skipped slot would show (a whole interval).
constexpr int64_t kEarlyUs = 1000;
constexpr int64_t kLateUs = 150'000;

TEST(Scheduler, SendsEachProbeOnItsOwnGridInDueOrderAcrossProbes) {
  // Intervals 300/500/800 ms: offsets 0, 166.7 and 533.3 ms. No two due times
  // of different probes in the first 2.6 s are closer than 33 ms, so their
  // order is the order of their due times (libuv runs expired timers by due time).
  Rig rig({config_of("a", 300, 250), config_of("b", 500, 250), config_of("c", 800, 250)});
  rig.run_for(2600ms);

  struct Due {
    size_t probe;
    int64_t due_us;  // after start()
  };
  std::vector<Due> expected;
  for (size_t p = 0; p < rig.configs.size(); ++p) {
    SCOPED_TRACE(rig.configs[p].name);
    const int64_t interval_us = rig.configs[p].interval_ms * 1000;
    const int64_t offset = offset_us(rig.configs[p], p, rig.configs.size());
    const auto sends = rig.sends_of(p);
    // Every slot due before the stop (2.6 s) was sent, none twice: k counts the slots.
    const auto slots = static_cast<size_t>((2'600'000 - offset + interval_us - 1) / interval_us);
    // The last slots (2.4, 2.17, 2.13 s) are 200 ms or more before the stop.
    EXPECT_EQ(sends.size(), slots) << "a slot skipped or sent twice";
    for (size_t k = 0; k < sends.size(); ++k) {
      const int64_t due = offset + static_cast<int64_t>(k) * interval_us;
      // The scheduler's start time lies between the two readings around start().
      EXPECT_GE(sends[k].mono_us, rig.started_before_us + due - kEarlyUs)
          << "send " << k << " early";
      EXPECT_LE(sends[k].mono_us, rig.started_after_us + due + kLateUs)
          << "send " << k << " late (drift?)";
      expected.push_back({p, due});
    }
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const Due& x, const Due& y) { return x.due_us < y.due_us; });
  ASSERT_EQ(expected.size(), rig.sends.size());
  std::string want;
  std::string got;
  for (size_t i = 0; i < expected.size(); ++i) {
    want += rig.configs[expected[i].probe].name;
    got += rig.configs[rig.sends[i].probe].name;
  }
  // a:0 b:167 a:300 c:533 a:600 b:667 a:900 b:1167 a:1200 c:1333 ... in due order.
  EXPECT_EQ(got, want);
  EXPECT_EQ(want.substr(0, 7), "abacaba");  // the hand-computed start of it
  // One sample per send, each probe's in send order.
  ASSERT_EQ(rig.delivered.size(), rig.sends.size());
  EXPECT_EQ(rig.scheduler->schedule_lag().count(), static_cast<int64_t>(rig.sends.size()));
}

TEST(Scheduler, ProbesOfOneIntervalStartInGroupsOfUpTo32) {
  // 70 probes at 50 ms, two at 1 s, one at 300 ms, in that order: the 50 ms ones
  // make groups of 32, 32 and 6; each other interval a group of its own.
  std::vector<ProbeConfig> configs;
  for (int i = 0; i < 70; ++i) configs.push_back(config_of("fast", 50, 40));
  configs.push_back(config_of("slow", 1000, 500));
  configs.push_back(config_of("slow", 1000, 500));
  configs.push_back(config_of("mid", 300, 250));
  std::vector<const ProbeConfig*> pointers;
  for (const ProbeConfig& config : configs) pointers.push_back(&config);
  const auto [groups, count] = Scheduler::start_groups(pointers, Scheduler::kStartGroup);
  EXPECT_EQ(count, 5U);
  ASSERT_EQ(groups.size(), configs.size());
  for (size_t i = 0; i < 70; ++i) EXPECT_EQ(groups[i], i / 32) << i;
  EXPECT_EQ(groups[70], 3U);
  EXPECT_EQ(groups[71], 3U);
  EXPECT_EQ(groups[72], 4U);
  // Interleaved intervals group alike: a, b, a, b -> 0, 1, 0, 1.
  std::vector<const ProbeConfig*> mixed{&configs[0], &configs[70], &configs[1], &configs[71]};
  const Scheduler::StartGroups alike = Scheduler::start_groups(mixed, Scheduler::kStartGroup);
  EXPECT_EQ(alike.of_probe, (std::vector<size_t>{0, 1, 0, 1}));
  EXPECT_EQ(alike.count, 2U);
  // Groups of one: every probe spread on its own, as under a short open files limit.
  const Scheduler::StartGroups single = Scheduler::start_groups(mixed, 1);
  EXPECT_EQ(single.of_probe, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(single.count, 4U);
}

TEST(Scheduler, ProbesOfOneIntervalFireTogether) {
  // Four probes at 400 ms: one group, so each slot's four sends come in one
  // loop iteration. Spread one by one they would be 100 ms apart; 50 ms is
  // room for a loaded machine to preempt the loop in the middle of them.
  Rig rig({config_of("a", 400, 300), config_of("b", 400, 300), config_of("c", 400, 300),
           config_of("d", 400, 300)});
  rig.run_for(1000ms);  // slots at 0, 400 and 800 ms
  const auto first = rig.sends_of(0);
  ASSERT_EQ(first.size(), 3U);
  for (size_t p = 1; p < 4; ++p) {
    const auto sends = rig.sends_of(p);
    ASSERT_EQ(sends.size(), first.size()) << p;
    for (size_t k = 0; k < sends.size(); ++k) {
      EXPECT_LE(std::abs(sends[k].mono_us - first[k].mono_us), 50'000) << p << " slot " << k;
    }
  }
}

TEST(Scheduler, SlotsMissedWhileTheLoopWasBlockedAreSkippedNotBurst) {
  // Interval 200 ms. The send of slot 3 (600 ms) blocks the loop for 950 ms,
  // until 1550 ms: slot 4 (800 ms) is then sent at once, late, as the catch-up;
  // slots 5..7 (1000..1400 ms) are skipped; sending resumes on the same grid at
  // slot 8 (1600 ms) and goes on to slot 12 (2400 ms) before the stop at 2500 ms.
  constexpr int64_t kIntervalUs = 200'000;
  constexpr auto kBlock = 950ms;
  Rig rig({config_of("p", 200, 1000)});
  CommandedProbe& probe = *rig.probes[0];
  int64_t block_end_us = 0;
  probe.on_start = [&](AttemptId id) {
    if (id != 3) return;
    std::this_thread::sleep_for(kBlock);  // the loop is blocked inside the scheduler's own callback
    block_end_us = mono_now_us();
  };
  rig.run_for(2500ms);

  const auto sends = rig.sends_of(0);
  ASSERT_GT(block_end_us, 0);
  ASSERT_GE(sends.size(), 6U);
  const int64_t grid0 = sends[0].mono_us;  // slot 0 (offset 0)
  const int64_t catch_up = sends[4].mono_us;
  EXPECT_GE(catch_up, block_end_us) << "the catch-up comes once the loop runs again";
  // The next send is the first grid slot after the catch-up, not a missed one sent in a burst.
  const int64_t next_slot =
      (catch_up - grid0) / kIntervalUs + 1;  // 8 unless the machine was slower still
  EXPECT_GE(next_slot, 8);
  for (size_t k = 5; k < sends.size(); ++k) {
    const int64_t due = grid0 + (next_slot + static_cast<int64_t>(k) - 5) * kIntervalUs;
    EXPECT_GE(sends[k].mono_us, due - kEarlyUs)
        << "send " << k << ": a missed slot sent early, in a burst";
    EXPECT_LE(sends[k].mono_us, due + kLateUs) << "send " << k << ": off the grid";
  }
  // 4 on time + the catch-up + slots 8..12: the block cost slots 5..7 and no other.
  EXPECT_EQ(sends.size(), static_cast<size_t>(4 + 1 + (12 - next_slot + 1)));
  // Recorded as the code does: one lag record per send (a skipped slot is not a
  // send and is not counted), the catch-up's being its lateness against slot 4.
  const LagHistogram& lag = rig.scheduler->schedule_lag();
  EXPECT_EQ(lag.count(), static_cast<int64_t>(sends.size()));
  const int64_t catch_up_lag_us = catch_up - (grid0 + 4 * kIntervalUs);
  EXPECT_GE(catch_up_lag_us, 750'000 - kEarlyUs);  // blocked 950 ms from slot 3's send
  // With fewer than 100 records the 0.99 percentile is the largest, the catch-up's
  // (in 10 us buckets; the histogram saturates at 1 s, 250 ms above it). The
  // scheduler reads its clock a few calls before the probe does, and slot 0 was
  // late by microseconds: 5 ms covers both even when the process is preempted once.
  ASSERT_LT(lag.count(), 100);
  EXPECT_NEAR(static_cast<double>(lag.percentile_us(0.99)), static_cast<double>(catch_up_lag_us),
              5000.0);
  EXPECT_LT(lag.percentile_us(0.5), kLateUs) << "the other sends were on time";
}

TEST(Scheduler, AttemptsInFlightAreCappedAndSendingResumesWhenOneAnswers) {
  // A probe that never answers on its own, an interval of 10 ms and a timeout of
  // 10 s: without a cap, 100 attempts a second would pile up until the first deadline.
  Rig rig({config_of("hung", 10, 10'000)});
  CommandedProbe& probe = *rig.probes[0];
  probe.answer_at_once = false;
  const size_t cap = static_cast<size_t>(kMaxAttemptsInFlight) + 2;  // the scheduler's rule
  size_t sent_at_cap = 0;
  size_t sent_after_answers = 0;
  Timer check_cap(rig.loop.get(), [&] {
    sent_at_cap = rig.sends.size();
    // Answer two, oldest first: two more may start, no more.
    probe.answer(0);
    probe.answer(1);
  });
  Timer check_resumed(rig.loop.get(), [&] { sent_after_answers = rig.sends.size(); });
  // 1.5 s of 10 ms slots is 150 slots, over three times the cap of 42: the cap
  // is reached by 420 ms even if the loaded machine halves the firing rate.
  check_cap.start(1500);
  check_resumed.start(2500);
  Timer answer_all(rig.loop.get(), [&] {
    probe.answer_all();
    probe.answer_at_once = true;  // and those sent until the stop
  });
  answer_all.start(2550);
  const auto level = spdlog::get_level();
  spdlog::set_level(
      spdlog::level::err);  // one "too many attempts in flight" warning per skipped slot
  rig.run_for(2600ms);
  spdlog::set_level(level);

  EXPECT_EQ(sent_at_cap, cap) << "several attempts in flight, but never more than the cap";
  EXPECT_EQ(sent_after_answers, cap + 2) << "each answer frees exactly one place";
  EXPECT_EQ(probe.cancelled, 0) << "no deadline (10 s) passed";
  // Every attempt sent got its sample, in send order.
  ASSERT_EQ(rig.delivered.size(), rig.sends.size());
  for (size_t i = 0; i < rig.delivered.size(); ++i) {
    EXPECT_EQ(rig.delivered[i].second.status, Status::up);
    if (i > 0) {
      EXPECT_GE(rig.delivered[i].second.sent_ms, rig.delivered[i - 1].second.sent_ms);
    }
  }
}

TEST(Scheduler, SamplesAreDeliveredInSendOrderWhateverOrderAnswersCome) {
  // Three attempts in flight (interval 100 ms, timeout 1 s); the third answers
  // first, then the first, then the second: samples come out 0, 1, 2 all the same,
  // and none before the one sent ahead of it has answered.
  Rig rig({config_of("p", 100, 1000)});
  CommandedProbe& probe = *rig.probes[0];
  probe.answer_at_once = false;
  std::vector<size_t> delivered_after;  // how many samples were out after each answer
  probe.on_start = [&](AttemptId id) {
    if (id != 2) return;
    probe.answer(2, ProbeResult::failure(ErrorClass::refused, "third"));
    delivered_after.push_back(rig.delivered.size());
    probe.answer(0, ProbeResult::success({}, "first"));
    delivered_after.push_back(rig.delivered.size());
    probe.answer(1, ProbeResult::success({}, "second"));
    delivered_after.push_back(rig.delivered.size());
    probe.answer_at_once = true;
  };
  rig.run_for(400ms);  // ids 0..3 (0, 100, 200, 300 ms)
  ASSERT_GE(rig.delivered.size(), 3U);
  EXPECT_EQ(delivered_after, (std::vector<size_t>{0, 1, 3}));
  EXPECT_EQ(rig.delivered[0].second.detail, "first");
  EXPECT_EQ(rig.delivered[1].second.detail, "second");
  EXPECT_EQ(rig.delivered[2].second.detail, "third");
  EXPECT_EQ(rig.delivered[2].second.status, Status::down);
  EXPECT_EQ(rig.delivered[2].second.error, ErrorClass::refused);
}

TEST(Scheduler, AnUnansweredAttemptEndsAtItsDeadlineAsATimeout) {
  // Interval 1 s, timeout 200 ms, never answered: the deadline cancels the
  // attempt and stores a timeout whose latency is the elapsed time, measured,
  // not the configured number: it is at least the timeout (libuv's timers never
  // fire early by its own clock, which counts whole milliseconds and may be a
  // coarse clock up to 1 ms behind: 2 ms) and at most what the test
  // itself saw pass between start() (before the send) and the sample.
  Rig rig({config_of("p", 1000, 200)});
  CommandedProbe& probe = *rig.probes[0];
  probe.answer_at_once = false;
  int64_t delivered_mono_us = 0;
  rig.scheduler = std::make_unique<Scheduler>(rig.loop.get(), rig.configs, rig.owned,
                                              [&](size_t index, const Sample& sample) {
                                                delivered_mono_us = mono_now_us();
                                                rig.delivered.emplace_back(index, sample);
                                              });
  rig.run_for(500ms);
  ASSERT_EQ(rig.sends.size(), 1U);
  ASSERT_EQ(rig.delivered.size(), 1U);
  const Sample& sample = rig.delivered[0].second;
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::timeout);
  EXPECT_EQ(sample.detail, "no answer within 200ms");
  EXPECT_EQ(probe.cancelled, 1) << "the probe is told to give the attempt up";
  EXPECT_GE(sample.latency_us, 200'000 - 2000);
  EXPECT_LE(sample.latency_us, delivered_mono_us - rig.started_before_us);
  EXPECT_GT(delivered_mono_us - rig.sends[0].mono_us, 198'000)
      << "delivered at the deadline, not before";
}

TEST(Scheduler, AttemptsInFlightTogetherEachEndAtTheirOwnDeadline) {
  // Interval 50 ms, timeout 120 ms: three attempts are in flight at a time, and
  // one timer serves the deadlines of all. Odd attempts answer at once, even
  // ones never: each even one times out at its own deadline (not at the first
  // one's, nor later than a loaded machine's lateness), the odd ones between
  // them are untouched, and every sample comes out in send order.
  Rig rig({config_of("p", 50, 120)});
  CommandedProbe& probe = *rig.probes[0];
  probe.answer_at_once = false;
  probe.on_start = [&](AttemptId id) {
    if (id % 2 == 1) probe.answer(id, ProbeResult::success({}, "answered"));
  };
  rig.run_for(400ms);  // stop() then waits for the last deadlines
  ASSERT_GE(rig.sends.size(), 4U);
  ASSERT_EQ(rig.delivered.size(), rig.sends.size());
  int timeouts = 0;
  for (size_t i = 0; i < rig.delivered.size(); ++i) {
    const Sample& sample = rig.delivered[i].second;
    if (i > 0) {
      EXPECT_GT(sample.sent_mono_us, rig.delivered[i - 1].second.sent_mono_us);
    }
    if (i % 2 == 1) {
      EXPECT_EQ(sample.status, Status::up) << i;
      EXPECT_EQ(sample.detail, "answered") << i;
      continue;
    }
    ++timeouts;
    EXPECT_EQ(sample.error, ErrorClass::timeout) << i;
    EXPECT_GE(sample.latency_us, 120'000 - 2000) << i;
    EXPECT_LE(sample.latency_us, 120'000 + kLateUs) << i;
  }
  EXPECT_EQ(probe.cancelled, timeouts) << "each timed-out attempt was given up, no other";
}

}  // namespace
}  // namespace blip
