#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <utility>

namespace blip {

// Logs an exception caught at the edge of a libuv callback.
void report_callback_failure(const char* what) noexcept;

// Owns one libuv handle plus its callback. The handle memory is freed only in
// uv_close's callback, so the owner may be destroyed at any time, even from
// inside the handle's own callback; the callback never runs after that.
template <typename UvType>
class OwnedHandle {
 public:
  OwnedHandle() = default;
  OwnedHandle(const OwnedHandle&) = delete;
  OwnedHandle& operator=(const OwnedHandle&) = delete;
  OwnedHandle(OwnedHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  OwnedHandle& operator=(OwnedHandle&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  ~OwnedHandle() { close(); }

  void close() {
    if (!state_) return;
    state_->callback = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
             [](uv_handle_t* handle) { delete static_cast<State*>(handle->data); });
    state_ = nullptr;
  }
  explicit operator bool() const { return state_ != nullptr; }

 protected:
  struct State {
    UvType handle{};
    std::function<void()> callback;
  };
  // `init` must call the uv_*_init function on the handle and return its result.
  template <typename Init>
  int open(std::function<void()> callback, Init init) {
    auto* state = new State{};
    state->handle.data = state;
    state->callback = std::move(callback);
    int rc = init(&state->handle);
    if (rc != 0) {
      delete state;
      return rc;
    }
    close();
    state_ = state;
    return 0;
  }
  // Entered from libuv (C): nothing may propagate out of it.
  static void invoke(UvType* handle) noexcept {
    auto* state = static_cast<State*>(handle->data);
    if (!state->callback) return;
    try {
      auto callback = state->callback;  // the callback may destroy its owner
      callback();
    } catch (const std::exception& error) {
      report_callback_failure(error.what());
    } catch (...) {
      report_callback_failure("unknown exception");
    }
  }
  State* state_ = nullptr;
};

class Timer : public OwnedHandle<uv_timer_t> {
 public:
  Timer() = default;
  Timer(uv_loop_t* loop, std::function<void()> on_fire);
  void start(uint64_t timeout_ms, uint64_t repeat_ms = 0);
  void stop();
};

// Wakes the loop from another thread: `on_wake` runs on the loop (several sends
// before it runs make one call).
class AsyncWake : public OwnedHandle<uv_async_t> {
 public:
  AsyncWake(uv_loop_t* loop, std::function<void()> on_wake);
  void send() { uv_async_send(&state_->handle); }
};

class SignalWatcher : public OwnedHandle<uv_signal_t> {
 public:
  SignalWatcher(uv_loop_t* loop, int signal_number, std::function<void()> on_signal);
};

// The process's one event loop. Destroying it closes every handle still open
// and runs the loop until their close callbacks have freed them.
class EventLoop {
 public:
  EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();
  uv_loop_t* get() { return &loop_; }
  void run() { uv_run(&loop_, UV_RUN_DEFAULT); }
  void stop() { uv_stop(&loop_); }

 private:
  uv_loop_t loop_{};
};

}  // namespace blip
