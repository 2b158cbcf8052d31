#include "blip/core/loop.hpp"

#include <stdexcept>
#include <string>

#include "blip/core/logging.hpp"

namespace blip {

void report_callback_failure(const char* what) noexcept {
  try {
    log_error("loop: callback failed err={}", what);
  } catch (...) {
  }
}

Timer::Timer(uv_loop_t* loop, std::function<void()> on_fire) {
  if (open(std::move(on_fire),
           [loop](uv_timer_t* handle) { return uv_timer_init(loop, handle); }) != 0) {
    throw std::runtime_error("uv_timer_init failed");
  }
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms) {
  uv_timer_start(
      &state_->handle, [](uv_timer_t* handle) { invoke(handle); }, timeout_ms, repeat_ms);
}

void Timer::stop() {
  if (state_) uv_timer_stop(&state_->handle);
}

AsyncWake::AsyncWake(uv_loop_t* loop, std::function<void()> on_wake) {
  int rc = open(std::move(on_wake), [loop](uv_async_t* handle) {
    return uv_async_init(loop, handle, [](uv_async_t* h) { invoke(h); });
  });
  if (rc != 0) throw std::runtime_error(std::string("uv_async_init failed: ") + uv_strerror(rc));
}

SignalWatcher::SignalWatcher(uv_loop_t* loop, int signal_number, std::function<void()> on_signal) {
  int rc = open(std::move(on_signal), [&](uv_signal_t* handle) {
    int init_rc = uv_signal_init(loop, handle);
    if (init_rc != 0) return init_rc;
    return uv_signal_start(
        handle, [](uv_signal_t* h, int) { invoke(h); }, signal_number);
  });
  if (rc != 0) throw std::runtime_error(std::string("uv_signal_init failed: ") + uv_strerror(rc));
}

EventLoop::EventLoop() {
  int rc = uv_loop_init(&loop_);
  if (rc != 0) throw std::runtime_error(std::string("uv_loop_init failed: ") + uv_strerror(rc));
}

EventLoop::~EventLoop() {
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

}  // namespace blip
