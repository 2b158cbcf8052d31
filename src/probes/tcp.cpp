// TCP probe: resolve, connect, close. Nothing is sent.
#include <fmt/format.h>

#include <unordered_map>

#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"
#include "blip/probes/probe.hpp"

namespace blip {
namespace {

ErrorClass classify(int uv_error) {
  switch (uv_error) {
    case UV_ECONNREFUSED: return ErrorClass::refused;
    case UV_ETIMEDOUT: return ErrorClass::timeout;
    case UV_ECONNRESET: return ErrorClass::reset;
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH: return ErrorClass::unreachable;
    default: return ErrorClass::protocol;
  }
}

class TcpProbe final : public Probe {
 public:
  TcpProbe(const ProbeConfig& config, ProbeContext& context)
      : settings_(std::get<TcpSettings>(config.settings)), loop_(context.loop) {}
  ~TcpProbe() override {
    while (!attempts_.empty()) cancel(attempts_.begin()->first);
  }

  void start(AttemptId id, ProbeDone done) override {
    auto* attempt = new Attempt{};
    attempt->probe = this;
    attempt->id = id;
    attempt->done = std::move(done);
    attempt->started_us = mono_now_us();
    attempt->resolve.data = attempt;
    attempts_.emplace(id, attempt);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(loop_, &attempt->resolve, &TcpProbe::on_resolved, settings_.host.c_str(),
                            settings_.port.c_str(), &hints);
    if (rc != 0) {
      attempts_.erase(id);
      auto finished = std::move(attempt->done);
      delete attempt;
      finished(ProbeResult::failure(ErrorClass::dns, uv_strerror(rc)));
    }
  }

  void cancel(AttemptId id) noexcept override {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    Attempt* attempt = node.mapped();
    attempt->abandoned = true;
    if (attempt->socket_open) {
      close_and_free(attempt);  // the connect callback then sees UV_ECANCELED
    } else {
      uv_cancel(reinterpret_cast<uv_req_t*>(&attempt->resolve));  // on_resolved frees it
    }
  }

 private:
  struct Attempt {
    TcpProbe* probe = nullptr;
    AttemptId id = 0;
    ProbeDone done;
    int64_t started_us = 0;
    int64_t resolved_us = 0;
    bool abandoned = false;
    bool socket_open = false;
    uv_getaddrinfo_t resolve{};
    uv_tcp_t socket{};
    uv_connect_t connect{};
  };

  static void close_and_free(Attempt* attempt) {
    attempt->socket.data = attempt;
    uv_close(reinterpret_cast<uv_handle_t*>(&attempt->socket),
             [](uv_handle_t* handle) { delete static_cast<Attempt*>(handle->data); });
  }

  void finish(Attempt* attempt, ProbeResult result) {
    attempts_.erase(attempt->id);
    auto done = std::move(attempt->done);
    if (attempt->socket_open) {
      close_and_free(attempt);
    } else {
      delete attempt;
    }
    done(std::move(result));
  }

  static void on_resolved(uv_getaddrinfo_t* request, int status, addrinfo* addresses) noexcept {
    try {
      resolved(request, status, addresses);
    } catch (const std::exception& error) {
      report_callback_failure(error.what());
    }
  }
  static void resolved(uv_getaddrinfo_t* request, int status, addrinfo* addresses) {
    auto* attempt = static_cast<Attempt*>(request->data);
    TcpProbe* self = attempt->probe;
    if (attempt->abandoned) {
      uv_freeaddrinfo(addresses);
      delete attempt;
      return;
    }
    attempt->resolved_us = mono_now_us();
    if (status != 0) {
      self->finish(attempt, ProbeResult::failure(ErrorClass::dns, fmt::format("resolve {}: {}",
                                                                              self->settings_.host,
                                                                              uv_strerror(status))));
      return;
    }
    uv_tcp_init(self->loop_, &attempt->socket);
    attempt->socket_open = true;
    attempt->connect.data = attempt;
    // Prefer IPv4: "localhost" often lists ::1 first while servers listen on 127.0.0.1.
    const addrinfo* chosen = addresses;
    for (const addrinfo* address = addresses; address; address = address->ai_next) {
      if (address->ai_family == AF_INET) {
        chosen = address;
        break;
      }
    }
    int rc = uv_tcp_connect(&attempt->connect, &attempt->socket, chosen->ai_addr, &TcpProbe::on_connected);
    uv_freeaddrinfo(addresses);
    if (rc != 0) self->finish(attempt, ProbeResult::failure(classify(rc), uv_strerror(rc)));
  }

  static void on_connected(uv_connect_t* request, int status) noexcept {
    try {
      connected(request, status);
    } catch (const std::exception& error) {
      report_callback_failure(error.what());
    }
  }
  static void connected(uv_connect_t* request, int status) {
    auto* attempt = static_cast<Attempt*>(request->data);
    if (attempt->abandoned) return;  // already closing; the close callback frees it
    Phases phases;
    phases.dns_us = attempt->resolved_us - attempt->started_us;
    phases.connect_us = mono_now_us() - attempt->resolved_us;
    attempt->probe->finish(attempt, status == 0 ? ProbeResult::success(phases, "connected")
                                                : ProbeResult::failure(classify(status),
                                                                       uv_strerror(status), phases));
  }

  const TcpSettings& settings_;
  uv_loop_t* loop_;
  std::unordered_map<AttemptId, Attempt*> attempts_;
};

}  // namespace

std::unique_ptr<Probe> make_tcp_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<TcpProbe>(config, context);
}

}  // namespace blip
