#pragma once
#include <uv.h>

#include <cstdint>
#include <string>

#include "blip/core/loop.hpp"

namespace blip {

// What systemd (a `Type=notify` unit) hears from blip: READY=1 once the first probes are
// scheduled, RELOADING=1 and READY=1 around a reload, STOPPING=1 at a stop, and WATCHDOG=1 from
// a timer on the probe loop itself, so a loop that is wedged stops the pings and systemd
// restarts blip. Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
class ServiceManager {
 public:
  explicit ServiceManager(uv_loop_t* loop);

  void ready(const std::string& status);
  void reloading();
  void stopping();

  // The watchdog's interval when systemd asked for one (WatchdogSec=), else 0.
  int64_t watchdog_usec() const { return watchdog_usec_; }

 private:
  int64_t watchdog_usec_ = 0;
  Timer watchdog_;
};

}  // namespace blip
