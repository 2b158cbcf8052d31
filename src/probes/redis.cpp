// Redis probe: `ping` (PING), `write` (SET with expiry, then GET) or `sidekiq`
// (queue latency and process heartbeats), over persistent connections.
//
// Each attempt takes an idle connection from a small pool or opens a new one (at
// most three per probe; beyond that an attempt waits for one within its
// deadline), so an attempt stuck on a frozen server never delays the next. A connection
// goes back to the pool only after an attempt that got every reply; any
// connection failure or error reply drops it, so the next attempt reconnects.
// cancel() drops the attempt's connection with it.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "blip/adapters/redis_uv.hpp"
#include "blip/core/clock.hpp"
#include "blip/probes/probe.hpp"
#include "blip/probes/sidekiq.hpp"

namespace blip {
namespace {

constexpr size_t kMaxIdleConnections = 2;
constexpr const char* kWriteExpiryMs = "60000";

// 60000 -> "60s", 1500 -> "1.5s".
std::string seconds_text(int64_t ms) {
  return fmt::format("{:g}s", static_cast<double>(ms) / 1000.0);
}

double wall_now_seconds() { return static_cast<double>(wall_now_ms()) / 1000.0; }

class RedisProbe final : public Probe {
 public:
  RedisProbe(const ProbeConfig& config, ProbeContext& context)
      : name_(config.name),
        settings_(std::get<RedisSettings>(config.settings)),
        loop_(context.loop),
        resolver_(*context.resolver),
        lookup_limit_ms_(Resolver::limit_for(config.timeout_ms)) {
    endpoint_ = {settings_.host, settings_.port, settings_.username, settings_.password,
                 settings_.db};
    if (!settings_.key_namespace.empty()) key_prefix_ = settings_.key_namespace + ":";
  }
  // Attempts in flight are abandoned without calling done.
  ~RedisProbe() override {
    attempts_.clear();
    idle_.clear();
  }

  void start(AttemptId id, ProbeDone done) override {
    auto owned = std::make_unique<Attempt>();
    Attempt& attempt = *owned;
    attempt.id = id;
    attempt.done = std::move(done);
    attempt.started_us = mono_now_us();
    if (!attempts_.try_emplace(id, std::move(owned)).second) {
      attempt.done(ProbeResult::failure(ErrorClass::internal, "attempt id already in flight"));
      return;
    }
    if (!take_connection(attempt)) {
      // Every connection this probe may hold is busy (a slow or frozen server):
      // wait for one rather than pile up connections; the deadline still applies.
      attempt.waiting = true;
      waiting_.push_back(id);
      return;
    }
    send_commands(id);
  }

  std::string progress(AttemptId id) const override {
    auto found = attempts_.find(id);
    if (found == attempts_.end()) return {};
    if (found->second->waiting)
      return fmt::format("waiting for a free connection, {} in use", kMaxConnections);
    if (found->second->connection && found->second->connection->resolving())
      return "resolving " + settings_.host;
    return {};
  }

  void cancel(AttemptId id) noexcept override {
    attempts_.erase(id);  // closes its connection: its replies are never waited for again
    try {
      serve_waiting();
    } catch (...) {
      // cancel() must not throw; a waiting attempt then times out on its own deadline.
    }
  }

 private:
  struct Attempt {
    AttemptId id = 0;
    ProbeDone done;
    std::unique_ptr<RedisConnection> connection;
    bool fresh_connection = false;
    bool waiting = false;  // for a connection to come free
    int64_t started_us = 0;
    int64_t first_reply_us = 0;
    std::string written;  // write mode: the value SET stored
    // sidekiq mode
    size_t outstanding = 0;               // replies still to come
    std::vector<double> queue_latency_s;  // per configured queue
    std::string job_problem;              // the first job that could not be read
    size_t processes = 0;
    std::optional<double> newest_beat_s;
  };
  using ReplyHandler = std::function<void(Attempt&, const RedisReply&)>;

  // Connections one probe may hold at once (in use and idle), as for Postgres:
  // enough for an attempt that overlaps the next, few enough that a stalled
  // server does not see its client slots filled by its monitor.
  static constexpr size_t kMaxConnections = 3;

  size_t connections_held() const {
    size_t held = idle_.size();
    for (const auto& [id, attempt] : attempts_) held += attempt->connection ? 1 : 0;
    return held;
  }

  // An idle connection, or a new one while under kMaxConnections; false when none is free.
  bool take_connection(Attempt& attempt) {
    while (!idle_.empty()) {
      std::unique_ptr<RedisConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->usable()) {
        attempt.fresh_connection = false;
        attempt.connection = std::move(connection);
        return true;
      }
    }
    if (connections_held() >= kMaxConnections) return false;
    attempt.fresh_connection = true;
    // An attempt that waited for a free connection has less of its deadline left for the lookup.
    const int64_t lookup_limit_ms =
        std::max<int64_t>(1, lookup_limit_ms_ - (mono_now_us() - attempt.started_us) / 1000);
    attempt.connection = std::make_unique<RedisConnection>(
        loop_, resolver_, lookup_limit_ms, endpoint_,
        [this](RedisConnection& connection, const RedisFailure& failure) {
          on_connection_failure(connection, failure);
        });
    return true;
  }

  void send_commands(AttemptId id) {
    Attempt& attempt = *attempts_.at(id);
    bool queued = false;
    switch (settings_.mode) {
      case RedisSettings::Mode::ping:
        queued = start_ping(attempt);
        break;
      case RedisSettings::Mode::write:
        queued = start_write(attempt);
        break;
      case RedisSettings::Mode::sidekiq:
        queued = start_sidekiq(attempt);
        break;
    }
    if (!queued)
      finish(id, ProbeResult::failure(ErrorClass::internal, "could not queue the command"), false);
  }

  // A connection came free or was dropped: hand one to the oldest waiting attempt.
  void serve_waiting() {
    while (!waiting_.empty()) {
      auto found = attempts_.find(waiting_.front());
      if (found == attempts_.end()) {  // cancelled meanwhile
        waiting_.pop_front();
        continue;
      }
      if (!take_connection(*found->second)) return;
      found->second->waiting = false;
      const AttemptId id = waiting_.front();
      waiting_.pop_front();
      send_commands(id);
    }
  }

  void on_connection_failure(RedisConnection& connection, const RedisFailure& failure) {
    for (auto& [id, attempt] : attempts_) {
      if (attempt->connection.get() == &connection) {
        const AttemptId failed = id;
        finish(failed, ProbeResult::failure(failure.error, failure.message, phases_of(*attempt)),
               false);
        return;
      }
    }
    // An idle connection died (the server closed it or went away): forget it.
    std::erase_if(idle_, [&](const auto& idle) { return idle.get() == &connection; });
    serve_waiting();
  }

  // Ends an attempt: its connection goes back to the pool or is closed, then done runs.
  void finish(AttemptId id, ProbeResult result, bool keep_connection) {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    std::unique_ptr<Attempt> attempt = std::move(node.mapped());
    if (keep_connection && attempt->connection && attempt->connection->usable() &&
        idle_.size() < kMaxIdleConnections) {
      idle_.push_back(std::move(attempt->connection));
    }
    result.detail = redact(std::move(result.detail));
    ProbeDone done = std::move(attempt->done);
    attempt.reset();  // may close the connection from inside its own callback: RedisConnection
                      // allows that
    done(std::move(result));
    serve_waiting();
  }

  std::string redact(std::string detail) const {
    const std::string& password = settings_.password;
    if (password.empty()) return detail;
    for (size_t at = detail.find(password); at != std::string::npos;
         at = detail.find(password, at + 3)) {
      detail.replace(at, password.size(), "***");
    }
    return detail;
  }

  static Phases phases_of(const Attempt& attempt) {
    Phases phases;
    int64_t sent_us = attempt.started_us;
    if (attempt.connection) {
      if (attempt.fresh_connection) {
        phases.dns_us = attempt.connection->resolve_duration_us();
        phases.connect_us = attempt.connection->connect_duration_us();
      }
      sent_us = std::max(sent_us, attempt.connection->connected_at_us());
    }
    if (attempt.first_reply_us)
      phases.first_byte_us = std::max<int64_t>(0, attempt.first_reply_us - sent_us);
    return phases;
  }

  // The callback for one command of one attempt: ignored once the attempt has
  // ended; an error reply ends the attempt, naming the command.
  RedisConnection::ReplyCallback on_reply_of(AttemptId id, std::string command,
                                             ReplyHandler handle) {
    return [this, id, command = std::move(command),
            handle = std::move(handle)](const RedisReply& reply) {
      auto found = attempts_.find(id);
      if (found == attempts_.end()) return;
      Attempt& attempt = *found->second;
      if (!attempt.first_reply_us) attempt.first_reply_us = mono_now_us();
      if (reply.is_error()) {
        finish(id,
               ProbeResult::failure(classify_redis_error_reply(reply.text),
                                    fmt::format("{}: {}", command, reply.text), phases_of(attempt)),
               false);
        return;
      }
      handle(attempt, reply);
    };
  }

  bool start_ping(Attempt& attempt) {
    return attempt.connection->command(
        {"PING"}, on_reply_of(attempt.id, "PING", [this](Attempt& a, const RedisReply& reply) {
          if (reply.type == RedisReply::Type::status && reply.text == "PONG") {
            finish(a.id, ProbeResult::success(phases_of(a), "PONG"), true);
          } else {
            finish(a.id,
                   ProbeResult::failure(ErrorClass::protocol, "PING: the reply is not PONG",
                                        phases_of(a)),
                   false);
          }
        }));
  }

  // SET and GET are pipelined: one round trip.
  bool start_write(Attempt& attempt) {
    attempt.written = fmt::format("{}:{}", wall_now_ms(), attempt.id);
    const std::string key = "blip:probe:" + name_;
    bool queued = attempt.connection->command(
        {"SET", key, attempt.written, "PX", kWriteExpiryMs},
        on_reply_of(attempt.id, "SET", [](Attempt&, const RedisReply&) {}));
    return queued &&
           attempt.connection->command(
               {"GET", key},
               on_reply_of(attempt.id, "GET", [this](Attempt& a, const RedisReply& reply) {
                 if (reply.type == RedisReply::Type::string && reply.text == a.written) {
                   finish(a.id, ProbeResult::success(phases_of(a), "SET and GET"), true);
                 } else {
                   finish(
                       a.id,
                       ProbeResult::failure(ErrorClass::query,
                                            "GET did not return the value SET wrote", phases_of(a)),
                       true);
                 }
               }));
  }

  // One LINDEX per queue and SMEMBERS processes, pipelined; then one HGET beat per process.
  bool start_sidekiq(Attempt& attempt) {
    const AttemptId id = attempt.id;
    attempt.queue_latency_s.assign(settings_.queues.size(), 0.0);
    attempt.outstanding = settings_.queues.size() + 1;
    for (size_t i = 0; i < settings_.queues.size(); ++i) {
      const std::string key = key_prefix_ + "queue:" + settings_.queues[i];
      bool queued = attempt.connection->command(
          {"LINDEX", key, "-1"},
          on_reply_of(id, "LINDEX " + key, [this, i](Attempt& a, const RedisReply& reply) {
            record_oldest_job(a, i, reply);
            reply_arrived(a);
          }));
      if (!queued) return false;
    }
    return attempt.connection->command(
        {"SMEMBERS", key_prefix_ + "processes"},
        on_reply_of(
            id, "SMEMBERS " + key_prefix_ + "processes",
            [this](Attempt& a, const RedisReply& reply) {
              a.processes = reply.elements.size();
              for (const RedisReply& member : reply.elements) {
                ++a.outstanding;
                bool queued =
                    a.connection->command({"HGET", key_prefix_ + member.text, "beat"},
                                          on_reply_of(a.id, "HGET " + key_prefix_ + member.text,
                                                      [this](Attempt& b, const RedisReply& beat) {
                                                        record_beat(b, beat);
                                                        reply_arrived(b);
                                                      }));
                if (!queued) {
                  finish(a.id,
                         ProbeResult::failure(ErrorClass::internal, "could not queue the command"),
                         false);
                  return;
                }
              }
              reply_arrived(a);
            }));
  }

  void record_oldest_job(Attempt& attempt, size_t queue_index, const RedisReply& reply) const {
    if (reply.type == RedisReply::Type::nil) return;  // an empty queue has no latency
    const std::string& queue = settings_.queues[queue_index];
    if (!attempt.job_problem.empty()) return;
    if (reply.type != RedisReply::Type::string) {
      attempt.job_problem = fmt::format("queue {}: LINDEX did not return a job", queue);
      return;
    }
    std::string problem;
    const auto enqueued_s = sidekiq_enqueued_at_s(reply.text, problem);
    if (!enqueued_s) {
      attempt.job_problem = fmt::format("queue {}: the oldest job {}", queue, problem);
      return;
    }
    attempt.queue_latency_s[queue_index] = std::max(0.0, wall_now_seconds() - *enqueued_s);
  }

  static void record_beat(Attempt& attempt, const RedisReply& reply) {
    if (reply.type != RedisReply::Type::string) return;  // the process's hash expired
    const auto beat_s = sidekiq_beat_s(reply.text);
    if (!beat_s) return;
    if (!attempt.newest_beat_s || *beat_s > *attempt.newest_beat_s) attempt.newest_beat_s = beat_s;
  }

  void reply_arrived(Attempt& attempt) {
    if (--attempt.outstanding == 0) evaluate_sidekiq(attempt);
  }

  void evaluate_sidekiq(Attempt& attempt) {
    const Phases phases = phases_of(attempt);
    if (!attempt.job_problem.empty()) {
      finish(attempt.id, ProbeResult::failure(ErrorClass::protocol, attempt.job_problem, phases),
             true);
      return;
    }
    const double now_s = wall_now_seconds();
    std::vector<std::string> problems;
    size_t worst = 0;
    for (size_t i = 1; i < attempt.queue_latency_s.size(); ++i) {
      if (attempt.queue_latency_s[i] > attempt.queue_latency_s[worst]) worst = i;
    }
    const std::string& worst_queue =
        settings_.queues.empty() ? std::string() : settings_.queues[worst];
    const double worst_latency_s =
        attempt.queue_latency_s.empty() ? 0.0 : attempt.queue_latency_s[worst];
    if (worst_latency_s * 1000.0 > static_cast<double>(settings_.max_latency_ms)) {
      problems.push_back(fmt::format("queue {} latency {:.1f}s > {}", worst_queue, worst_latency_s,
                                     seconds_text(settings_.max_latency_ms)));
    }
    const bool beating =
        attempt.newest_beat_s && (now_s - *attempt.newest_beat_s) * 1000.0 <=
                                     static_cast<double>(settings_.max_heartbeat_age_ms);
    if (!beating) {
      std::string newest = attempt.processes == 0 ? "no processes"
                           : !attempt.newest_beat_s
                               ? "no beat recorded"
                               : fmt::format("newest {:.0f}s ago", now_s - *attempt.newest_beat_s);
      problems.push_back(fmt::format("no Sidekiq process beat within {} ({})",
                                     seconds_text(settings_.max_heartbeat_age_ms), newest));
    }
    if (!problems.empty()) {
      finish(attempt.id,
             ProbeResult::failure(ErrorClass::lag, fmt::format("{}", fmt::join(problems, "; ")),
                                  phases),
             true);
      return;
    }
    finish(
        attempt.id,
        ProbeResult::success(
            phases, fmt::format("{} process{}, worst queue {} {:.1f}s", attempt.processes,
                                attempt.processes == 1 ? "" : "es", worst_queue, worst_latency_s)),
        true);
  }

  const std::string name_;
  const RedisSettings settings_;
  uv_loop_t* loop_;
  Resolver& resolver_;
  int64_t lookup_limit_ms_;
  RedisEndpoint endpoint_;
  std::string key_prefix_;  // "<namespace>:" or empty
  std::unordered_map<AttemptId, std::unique_ptr<Attempt>> attempts_;
  std::vector<std::unique_ptr<RedisConnection>> idle_;
  std::deque<AttemptId> waiting_;
};

}  // namespace

std::optional<double> sidekiq_enqueued_at_s(std::string_view job_json, std::string& problem) {
  const nlohmann::json job = nlohmann::json::parse(job_json, nullptr, /*allow_exceptions=*/false);
  if (job.is_discarded() || !job.is_object()) {
    problem = "is not JSON";
    return std::nullopt;
  }
  auto enqueued = job.find("enqueued_at");
  if (enqueued == job.end() || !enqueued->is_number()) {
    problem = "has no enqueued_at";
    return std::nullopt;
  }
  double enqueued_s = enqueued->get<double>();
  if (enqueued_s > 1e11)
    enqueued_s /= 1000.0;  // Sidekiq 8: integer milliseconds; before: float seconds
  return enqueued_s;
}

std::optional<double> sidekiq_beat_s(std::string_view beat) {
  double beat_s = 0;
  const char* end = beat.data() + beat.size();
  auto [parsed_to, error] = std::from_chars(beat.data(), end, beat_s);
  // from_chars reads "inf" and "nan": an infinite beat would keep a dead process alive for ever.
  if (error != std::errc() || parsed_to != end || !std::isfinite(beat_s)) return std::nullopt;
  return beat_s;
}

std::unique_ptr<Probe> make_redis_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<RedisProbe>(config, context);
}

}  // namespace blip
