#include "blip/daemon/service_manager.hpp"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>

#include "blip/core/logging.hpp"

namespace blip {
namespace {

// sd_notify sends one datagram to systemd's socket, which PID 1 reads at once: the loop never
// waits on it in practice, and a failure (no systemd, a full queue) is only logged.
void notify(const std::string& state) {
  if (const int result = sd_notify(0, state.c_str()); result < 0)
    log_debug("systemd: notify failed state={} error={}", state, -result);
}

}  // namespace

ServiceManager::ServiceManager(uv_loop_t* loop) : watchdog_(loop, [] { notify("WATCHDOG=1"); }) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_usec_ = static_cast<int64_t>(usec);
    // Twice within each interval, as sd_watchdog_enabled(3) advises: one late tick is not a
    // restart.
    const auto every_ms = static_cast<uint64_t>(std::max<int64_t>(watchdog_usec_ / 2000, 1));
    watchdog_.start(every_ms, every_ms);
    log_info("systemd: watchdog every={}ms", every_ms);
  }
}

void ServiceManager::ready(const std::string& status) {
  notify(fmt::format("READY=1\nSTATUS={}", status));
}

void ServiceManager::reloading() {
  // MONOTONIC_USEC lets a Type=notify-reload unit (systemd 253) match the reload to this message.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}",
                     static_cast<int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000));
}

void ServiceManager::stopping() {
  watchdog_.stop();
  notify("STOPPING=1");
}

}  // namespace blip
