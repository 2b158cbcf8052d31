// TCP probe: resolve (blip's resolver), connect, close. Nothing is sent.
#include <fmt/format.h>

#include <deque>
#include <unordered_map>

#include "blip/adapters/resolver.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"
#include "blip/probes/probe.hpp"

namespace blip {
namespace {

ErrorClass classify(int uv_error) {
  switch (uv_error) {
    case UV_ECONNREFUSED:
      return ErrorClass::refused;
    case UV_ETIMEDOUT:
      return ErrorClass::timeout;
    case UV_ECONNRESET:
      return ErrorClass::reset;
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
      return ErrorClass::unreachable;
    default:
      return ErrorClass::protocol;
  }
}

class TcpProbe final : public Probe {
 public:
  TcpProbe(const ProbeConfig& config, ProbeContext& context)
      : settings_(std::get<TcpSettings>(config.settings)),
        timeout_ms_(config.timeout_ms),
        port_(std::stoi(settings_.port)),
        loop_(context.loop),
        resolver_(*context.resolver) {}
  ~TcpProbe() override {
    waiting_.clear();  // nothing may start connecting now
    while (!attempts_.empty()) cancel(attempts_.begin()->first);
  }

  void start(AttemptId id, ProbeDone done) override {
    auto* attempt = new Attempt{};
    attempt->probe = this;
    attempt->id = id;
    attempt->done = std::move(done);
    attempt->started_us = mono_now_us();
    attempts_.emplace(id, attempt);
    attempt->lookup =
        resolver_.resolve(settings_.host, Resolver::limit_for(timeout_ms_),
                          [this, attempt](const std::string& address, const std::string& error) {
                            resolved(attempt, address, error);
                          });
  }

  void cancel(AttemptId id) noexcept override {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    Attempt* attempt = node.mapped();
    attempt->abandoned = true;
    if (attempt->socket_open) {
      close_and_free(attempt);  // the connect callback then sees UV_ECANCELED
      serve_waiting();
    } else {
      resolver_.cancel(attempt->lookup);
      delete attempt;
    }
  }

  std::string progress(AttemptId id) const override {
    auto found = attempts_.find(id);
    if (found == attempts_.end() || found->second->address.empty() || found->second->socket_open)
      return {};
    return fmt::format("waiting for a free connection, {} in use", kMaxConnections);
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
    Resolver::Ticket lookup = 0;
    std::string address;  // resolved, waiting for a free connection
    uv_tcp_t socket{};
    uv_connect_t connect{};
  };

  // Connecting sockets one probe may hold at once: against a target that drops
  // SYNs, later attempts wait for one within their deadline instead of piling up.
  static constexpr int kMaxConnections = 3;

  void close_and_free(Attempt* attempt) {
    --sockets_open_;
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
    serve_waiting();
  }

  void serve_waiting() {
    while (!waiting_.empty() && sockets_open_ < kMaxConnections) {
      auto found = attempts_.find(waiting_.front());
      waiting_.pop_front();
      if (found != attempts_.end()) connect(found->second);  // else cancelled meanwhile
    }
  }

  void resolved(Attempt* attempt, const std::string& address, const std::string& error) {
    attempt->resolved_us = mono_now_us();
    if (address.empty()) return finish(attempt, ProbeResult::failure(ErrorClass::dns, error));
    attempt->address = address;
    if (sockets_open_ >= kMaxConnections) return waiting_.push_back(attempt->id);
    connect(attempt);
  }

  void connect(Attempt* attempt) {
    sockaddr_storage target{};
    if (uv_ip4_addr(attempt->address.c_str(), port_, reinterpret_cast<sockaddr_in*>(&target)) !=
            0 &&
        uv_ip6_addr(attempt->address.c_str(), port_, reinterpret_cast<sockaddr_in6*>(&target)) !=
            0) {
      return finish(attempt,
                    ProbeResult::failure(ErrorClass::dns, "resolve " + settings_.host +
                                                              ": bad address " + attempt->address));
    }
    uv_tcp_init(loop_, &attempt->socket);
    attempt->socket_open = true;
    ++sockets_open_;
    attempt->connect.data = attempt;
    int rc = uv_tcp_connect(&attempt->connect, &attempt->socket,
                            reinterpret_cast<const sockaddr*>(&target), &TcpProbe::on_connected);
    if (rc != 0) finish(attempt, ProbeResult::failure(classify(rc), uv_strerror(rc)));
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
    attempt->probe->finish(
        attempt, status == 0 ? ProbeResult::success(phases, "connected")
                             : ProbeResult::failure(classify(status), uv_strerror(status), phases));
  }

  const TcpSettings& settings_;
  int64_t timeout_ms_;
  int port_;
  uv_loop_t* loop_;
  Resolver& resolver_;
  std::unordered_map<AttemptId, Attempt*> attempts_;
  std::deque<AttemptId> waiting_;
  int sockets_open_ = 0;
};

}  // namespace

std::unique_ptr<Probe> make_tcp_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<TcpProbe>(config, context);
}

}  // namespace blip
