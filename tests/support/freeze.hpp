#pragma once
#include <chrono>
#include <cstdint>
#include <thread>

#include "blip/core/clock.hpp"

namespace blip::test {

// A freeze's edges on the wall clock, each read just before its signal: where
// blip should put the edges of the outage (or blind window) the freeze causes.
struct Freeze {
  int64_t frozen_ms;
  int64_t thawed_ms;
};

// Freezes `target` (SIGSTOP: it answers nothing, connections queue in the
// kernel) for `duration`, then thaws it (SIGCONT). `target` is any server of
// tests/support, or a ChildProcess such as blip itself.
template <class Freezable>
Freeze freeze_for(const Freezable& target, std::chrono::milliseconds duration) {
  Freeze freeze{};
  freeze.frozen_ms = wall_now_ms();
  target.freeze();
  std::this_thread::sleep_for(duration);
  freeze.thawed_ms = wall_now_ms();
  target.thaw();
  return freeze;
}

}  // namespace blip::test
