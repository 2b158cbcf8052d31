// Postgres probe: read (SELECT 1 or a query), write (a committed heartbeat
// upsert) and replication (standby streaming and replay lag, or replicas
// present on a primary), over persistent asynchronous libpq connections.
//
// A timed-out attempt is abandoned by dropping its connection, never by
// PQcancel (which blocks). So that a dropped connection does not leave a
// backend waiting for ever on a lock, every session starts with statement_timeout
// just above the probe's timeout: the server ends the statement itself.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <memory>
#include <unordered_map>

#include "blip/adapters/pq_uv.hpp"
#include "blip/adapters/resolver.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/probes/postgres_reply.hpp"
#include "blip/probes/probe.hpp"

namespace blip {
namespace {

constexpr const char* kCreateHeartbeat =
    "CREATE TABLE IF NOT EXISTS blip_heartbeat(probe text PRIMARY KEY, beat timestamptz NOT NULL)";
constexpr const char* kWriteHeartbeat =
    "INSERT INTO blip_heartbeat(probe, beat) VALUES ($1, now()) "
    "ON CONFLICT (probe) DO UPDATE SET beat = excluded.beat";
constexpr const char* kStandbyState =
    "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver LIMIT 1), "
    "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint, "
    "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint";
constexpr const char* kPrimaryState =
    "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication WHERE state = "
    "'streaming')";

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

// libpq reports connection failures as text only.
ErrorClass classify_connect_error(const std::string& error) {
  if (contains(error, "Connection refused")) return ErrorClass::refused;
  // The server answers but takes no session: every slot is taken (53300), or it is starting up,
  // shutting down or in recovery without hot standby (57P03). It refuses the connection, it speaks
  // Postgres fine.
  if (contains(error, "too many clients") ||
      contains(error, "remaining connection slots are reserved") ||
      contains(error, "the database system is")) {
    return ErrorClass::refused;
  }
  if (contains(error, "authentication") || contains(error, "pg_hba.conf") ||
      contains(error, "does not exist") || contains(error, "password")) {
    return ErrorClass::auth;
  }
  if (contains(error, "could not translate host name")) return ErrorClass::dns;
  if (contains(error, "server closed the connection unexpectedly")) return ErrorClass::reset;
  if (contains(error, "timeout expired")) return ErrorClass::timeout;
  return ErrorClass::protocol;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  size_t start = 0;
  for (size_t comma = text.find(','); comma != std::string::npos; comma = text.find(',', start)) {
    items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  items.push_back(text.substr(start));
  return items;
}

std::string join(const std::vector<std::string>& items, const char* separator = ",") {
  std::string text;
  for (size_t index = 0; index < items.size(); ++index)
    text += (index ? separator : "") + items[index];
  return text;
}

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string megabytes(int64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

class PostgresProbe final : public Probe {
 public:
  PostgresProbe(const ProbeConfig& config, ProbeContext& context)
      : name_(config.name),
        settings_(std::get<PostgresSettings>(config.settings)),
        timeout_ms_(config.timeout_ms),
        loop_(context.loop),
        resolver_(*context.resolver) {
    std::string hosts;
    std::string ports;
    bool has_hostaddr = false;
    char* error = nullptr;
    if (PQconninfoOption* options = PQconninfoParse(settings_.dsn.c_str(), &error)) {
      for (PQconninfoOption* option = options; option->keyword; ++option) {
        if (!option->val) continue;
        const std::string_view keyword = option->keyword;
        if (keyword == "host") hosts = option->val;
        if (keyword == "port") ports = option->val;
        if (keyword == "hostaddr") has_hostaddr = true;
        if (keyword == "options") startup_options_ = std::string(option->val) + " ";
      }
      PQconninfoFree(options);
    }
    PQfreemem(error);
    // libpq falls back to the environment for what the DSN leaves out.
    if (hosts.empty() && !has_hostaddr && std::getenv("PGHOSTADDR") == nullptr)
      hosts = env_or_empty("PGHOST");
    if (ports.empty()) ports = env_or_empty("PGPORT");
    if (!has_hostaddr) {
      hosts_ = split_list(hosts);
      ports_ = split_list(ports);
      needs_lookup_ = std::any_of(hosts_.begin(), hosts_.end(), [](const std::string& host) {
        return !host.empty() && host.front() != '/' && !Resolver::is_numeric(host);
      });
    }
    // Set at start-up rather than with SET: through a transaction-mode PgBouncer a SET
    // would stay on the server connection for other clients.
    startup_options_ += fmt::format("-c statement_timeout={}", timeout_ms_ + 1000);
  }
  ~PostgresProbe() override {
    for (auto& [id, attempt] : attempts_) cancel_lookups(attempt);
  }

  void start(AttemptId id, ProbeDone done) override {
    Attempt& attempt = attempts_[id];
    attempt.done = std::move(done);
    attempt.started_us = mono_now_us();
    if (!use_idle_connection(id) && !open_connection_if_allowed(id)) {
      // Every connection this probe may hold is busy (a slow or frozen server):
      // wait for one rather than pile up backends; the deadline still applies.
      attempt.waiting = true;
      waiting_.push_back(id);
    }
  }

  std::string progress(AttemptId id) const override {
    auto found = attempts_.find(id);
    if (found == attempts_.end()) return {};
    if (found->second.waiting)
      return fmt::format("waiting for a free connection, {} in use", kMaxConnections);
    if (found->second.pending_lookups > 0) return "resolving " + join(hosts_);
    if (!found->second.connection) return {};
    std::string where = found->second.connection->progress();
    if (where == "waiting for the query's result" && found->second.connected_us == 0)
      where = "running the session setup";
    return where;
  }

  void cancel(AttemptId id) noexcept override {
    auto found = attempts_.find(id);
    if (found == attempts_.end()) return;
    cancel_lookups(found->second);
    std::unique_ptr<PgConnection> connection = std::move(found->second.connection);
    attempts_.erase(found);
    if (connection && connection->querying()) {
      // The server is working on (or waiting in) our statement: keep the
      // connection until statement_timeout ends it, so a stalled server holds
      // at most kMaxConnections of our backends instead of one per attempt.
      PgConnection* draining = connection.get();
      draining->redirect([this, draining](PgQueryResult) {
        auto node = draining_.extract(draining);
        if (!node.empty() && node.mapped()->usable()) idle_.push_back(std::move(node.mapped()));
        serve_waiting();
      });
      draining_.emplace(draining, std::move(connection));
    }
    try {
      serve_waiting();
    } catch (...) {
      // cancel() must not throw; a waiting attempt then times out on its own deadline.
    }
  }

 private:
  struct Attempt {
    ProbeDone done;
    std::unique_ptr<PgConnection> connection;
    std::vector<Resolver::Ticket> lookups;  // per entry of hosts_: its lookup while running, else 0
    size_t pending_lookups = 0;
    std::vector<std::string>
        addresses;  // per entry of hosts_: numeric, or empty (a socket, or failed)
    std::vector<std::string> lookup_errors;
    int64_t started_us = 0;
    int64_t resolved_us = 0;
    int64_t connected_us = 0;
    bool created_table = false;
    bool reused = false;   // took an idle connection, which the server may have closed meanwhile
    bool waiting = false;  // for a connection to come free
  };

  // Connections one probe may hold at once (in use and idle): enough for an
  // attempt that overlaps the next, few enough that a stalled server does not
  // see its connection slots filled by its monitor.
  static constexpr size_t kMaxConnections = 3;

  size_t connections_held() const {
    size_t held = idle_.size() + draining_.size();
    for (const auto& [id, attempt] : attempts_)
      held += attempt.connection || attempt.pending_lookups > 0 ? 1 : 0;
    return held;
  }

  bool use_idle_connection(AttemptId id) {
    while (!idle_.empty()) {
      std::unique_ptr<PgConnection> connection = std::move(idle_.back());
      idle_.pop_back();
      if (connection->usable()) {
        Attempt& attempt = attempts_.at(id);
        attempt.connection = std::move(connection);
        attempt.reused = true;
        attempt.resolved_us = attempt.connected_us = mono_now_us();
        run_check(id);
        return true;
      }
    }
    return false;
  }

  bool open_connection_if_allowed(AttemptId id) {
    if (connections_held() >= kMaxConnections) return false;
    resolve_then_connect(id);
    return true;
  }

  // A connection came free or was dropped: hand it on to the oldest waiting attempt.
  void serve_waiting() {
    while (!waiting_.empty()) {
      const AttemptId id = waiting_.front();
      auto found = attempts_.find(id);
      if (found == attempts_.end()) {  // cancelled meanwhile
        waiting_.pop_front();
        continue;
      }
      found->second.waiting = false;
      waiting_.pop_front();
      if (use_idle_connection(id) || open_connection_if_allowed(id)) continue;
      found->second.waiting = true;
      waiting_.push_front(id);
      return;
    }
  }

  // libpq resolves host names with a blocking getaddrinfo: blip's Resolver looks up
  // every name of the host list first and libpq gets the addresses as hostaddr
  // (host stays, for TLS and pg_hba); a name that fails is left out of the list.
  void resolve_then_connect(AttemptId id) {
    Attempt& attempt = attempts_.at(id);
    if (!needs_lookup_) {
      attempt.resolved_us = attempt.started_us;
      return connect(id, {});
    }
    // An attempt that waited for a free connection has less of its deadline left.
    const int64_t limit_ms =
        Resolver::limit_for(timeout_ms_) - (mono_now_us() - attempt.started_us) / 1000;
    attempt.addresses.assign(hosts_.size(), "");
    attempt.lookups.assign(hosts_.size(), 0);
    attempt.lookup_errors.clear();
    for (size_t index = 0; index < hosts_.size(); ++index) {
      const std::string& host = hosts_[index];
      if (host.empty() || host.front() == '/') continue;
      ++attempt.pending_lookups;
      attempt.lookups[index] = resolver_.resolve(
          host, std::max<int64_t>(limit_ms, 1),
          [this, id, index](const std::string& address, const std::string& error) {
            Attempt& resolving = attempts_.at(id);
            resolving.lookups[index] = 0;
            resolving.addresses[index] = address;
            if (!error.empty()) resolving.lookup_errors.push_back(error);
            if (--resolving.pending_lookups == 0) resolved(id);
          });
    }
  }

  void resolved(AttemptId id) {
    Attempt& attempt = attempts_.at(id);
    attempt.resolved_us = mono_now_us();
    std::vector<std::string> hosts, addresses, ports;
    for (size_t index = 0; index < hosts_.size(); ++index) {
      const std::string& host = hosts_[index];
      const bool socket = host.empty() || host.front() == '/';
      if (!socket && attempt.addresses[index].empty()) continue;
      hosts.push_back(host);
      addresses.push_back(socket ? "" : attempt.addresses[index]);
      if (ports_.size() == hosts_.size()) ports.push_back(ports_[index]);
    }
    if (hosts.empty())
      return finish(id, ProbeResult::failure(ErrorClass::dns, join(attempt.lookup_errors, "; ")));
    std::vector<std::pair<std::string, std::string>> target{{"host", join(hosts)},
                                                            {"hostaddr", join(addresses)}};
    if (!ports.empty()) target.emplace_back("port", join(ports));
    connect(id, target);
  }

  void cancel_lookups(Attempt& attempt) noexcept {
    for (Resolver::Ticket ticket : attempt.lookups) {
      if (ticket) resolver_.cancel(ticket);
    }
    attempt.lookups.clear();
    attempt.pending_lookups = 0;
  }

  void connect(AttemptId id, std::vector<std::pair<std::string, std::string>> target) {
    std::vector<std::pair<std::string, std::string>> options{{"application_name", "blip"},
                                                             {"options", startup_options_}};
    options.insert(options.end(), target.begin(), target.end());
    Attempt& attempt = attempts_.at(id);
    attempt.connection =
        std::make_unique<PgConnection>(loop_, settings_.dsn, settings_.password, options);
    attempt.connection->connect([this, id](bool ok, const std::string& error) {
      if (!ok) return finish(id, ProbeResult::failure(classify_connect_error(error), error));
      attempts_.at(id).connected_us = mono_now_us();
      run_check(id);
    });
  }

  void run_check(AttemptId id) {
    Attempt& attempt = attempts_.at(id);
    const int64_t query_started_us = mono_now_us();
    auto on_result = [this, id, query_started_us](PgQueryResult result) {
      Attempt& finished = attempts_.at(id);
      // An idle connection that broke while pooled (a restart, idle_session_timeout)
      // says nothing about the server now: try once more on a new connection.
      if (!result.ok && result.sqlstate.empty() && finished.reused) {
        finished.reused = false;
        finished.connection.reset();
        return resolve_then_connect(id);
      }
      // The heartbeat table is created only when missing: CREATE needs a
      // privilege that a monitoring role with a prepared table may lack.
      if (!result.ok && result.sqlstate == "42P01" &&
          settings_.mode == PostgresSettings::Mode::write && !finished.created_table) {
        finished.created_table = true;
        return finished.connection->query(kCreateHeartbeat, {}, [this, id](PgQueryResult created) {
          // Another connection may have created it at the same moment (23505 on pg_type, or 42P07).
          const bool raced = created.sqlstate == "23505" || created.sqlstate == "42P07";
          if (!created.ok && !raced) {
            return finish(id,
                          ProbeResult::failure(classify_postgres_error(created), created.error));
          }
          run_check(id);
        });
      }
      Phases phases;
      phases.dns_us = finished.resolved_us - finished.started_us;
      phases.connect_us = finished.connected_us - finished.resolved_us;
      phases.first_byte_us = mono_now_us() - query_started_us;
      if (!result.ok)
        return finish(id,
                      ProbeResult::failure(classify_postgres_error(result), result.error, phases));
      ProbeResult verdict = evaluate(result);
      verdict.phases = phases;
      finish(id, std::move(verdict), /*keep_connection=*/true);
    };
    switch (settings_.mode) {
      case PostgresSettings::Mode::read:
        return attempt.connection->query(settings_.query, {}, on_result);
      case PostgresSettings::Mode::write:
        return attempt.connection->query(kWriteHeartbeat, {name_}, on_result);
      case PostgresSettings::Mode::replication:
        return attempt.connection->query(
            settings_.role == PostgresSettings::Role::standby ? kStandbyState : kPrimaryState, {},
            on_result);
    }
  }

  ProbeResult evaluate(const PgQueryResult& result) {
    switch (settings_.mode) {
      case PostgresSettings::Mode::read:
        return ProbeResult::success(
            {}, fmt::format("{} row{}", result.rows.size(), result.rows.size() == 1 ? "" : "s"));
      case PostgresSettings::Mode::write:
        return ProbeResult::success({}, "heartbeat committed");
      case PostgresSettings::Mode::replication:
        if (result.rows.size() != 1 || result.rows[0].size() < 2) {
          return ProbeResult::failure(ErrorClass::protocol, "unexpected replication status shape");
        }
        return settings_.role == PostgresSettings::Role::standby ? evaluate_standby(result.rows[0])
                                                                 : evaluate_primary(result.rows[0]);
    }
    return ProbeResult::failure(ErrorClass::internal, "unknown mode");
  }

  ProbeResult evaluate_primary(const std::vector<std::optional<std::string>>& row) {
    if (row[0] == "t")
      return ProbeResult::failure(ErrorClass::replication, "expected a primary, found a standby");
    const std::optional<int64_t> streaming = row[1] ? postgres_integer(*row[1]) : 0;
    if (!streaming) return ProbeResult::failure(ErrorClass::protocol, "unexpected replica count");
    std::string detail = fmt::format("{} replica{} streaming, {} expected", *streaming,
                                     *streaming == 1 ? "" : "s", settings_.min_replicas);
    if (*streaming < settings_.min_replicas)
      return ProbeResult::failure(ErrorClass::replication, detail);
    return ProbeResult::success({}, detail);
  }

  // Lag is measured in WAL, not in time since the last replayed commit (which
  // grows without bound on an idle primary): the standby lags by how long the
  // oldest WAL it has received but not replayed has been waiting.
  ProbeResult evaluate_standby(const std::vector<std::optional<std::string>>& row) {
    if (row[0] != "t")
      return ProbeResult::failure(ErrorClass::replication,
                                  "not a standby: pg_is_in_recovery() is false");
    if (row[1] != "streaming") {
      received_.clear();
      return ProbeResult::failure(
          ErrorClass::replication,
          fmt::format("WAL receiver is not streaming (status: {})", row[1].value_or("none")));
    }
    // Parsed here, not with std::stoll: a throw would leave the attempt to time out.
    const std::optional<int64_t> received_or =
        row.size() < 4 || !row[2] ? std::nullopt : postgres_integer(*row[2]);
    const std::optional<int64_t> replayed_or =
        row.size() < 4 || !row[3] ? std::nullopt : postgres_integer(*row[3]);
    if (!received_or || !replayed_or || *received_or < 0 || *replayed_or < 0) {
      return ProbeResult::failure(ErrorClass::protocol, "no WAL positions");
    }
    const int64_t received = *received_or;
    const int64_t replayed = *replayed_or;
    const int64_t now_ms = mono_now_us() / 1000;
    if (received_.empty() || received_.back().second != received)
      received_.emplace_back(now_ms, received);
    while (!received_.empty() && received_.front().second <= replayed) received_.pop_front();
    if (received_.size() > 10'000)
      received_.pop_front();  // bound memory; the oldest entry stays a lower bound
    const int64_t lag_ms = received_.empty() ? 0 : now_ms - received_.front().first;
    if (lag_ms > settings_.max_lag_ms) {
      return ProbeResult::failure(
          ErrorClass::lag,
          fmt::format("replay {} behind receive for {} (max_lag {})",
                      megabytes(received - replayed), format_duration_brief(lag_ms),
                      format_duration_ms(settings_.max_lag_ms)));
    }
    return ProbeResult::success(
        {}, fmt::format("streaming, replay lag {}", format_duration_brief(lag_ms)));
  }

  void finish(AttemptId id, ProbeResult result, bool keep_connection = false) {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    Attempt& attempt = node.mapped();
    cancel_lookups(attempt);
    if (keep_connection && !settings_.reconnect_each && attempt.connection &&
        attempt.connection->usable()) {
      idle_.push_back(std::move(attempt.connection));
    }
    auto done = std::move(attempt.done);
    done(std::move(result));
    serve_waiting();
    // `node` (and a dropped connection) is destroyed here, after the callback returned.
  }

  std::string name_;
  const PostgresSettings& settings_;
  int64_t timeout_ms_;
  uv_loop_t* loop_;
  Resolver& resolver_;
  std::vector<std::string> hosts_;  // the host list (DSN or PGHOST); empty when hostaddr is given
  std::vector<std::string> ports_;
  bool needs_lookup_ = false;
  std::string startup_options_;
  std::unordered_map<AttemptId, Attempt> attempts_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::deque<AttemptId> waiting_;
  std::unordered_map<PgConnection*, std::unique_ptr<PgConnection>>
      draining_;                                      // given up on, result pending
  std::deque<std::pair<int64_t, int64_t>> received_;  // (monotonic ms first seen, receive LSN)
};

}  // namespace

ErrorClass classify_postgres_error(const PgQueryResult& result) {
  if (result.sqlstate.rfind("28", 0) == 0 || result.sqlstate == "3D000") return ErrorClass::auth;
  if (result.sqlstate == "57014") return ErrorClass::timeout;                // statement_timeout
  if (result.sqlstate.empty()) return classify_connect_error(result.error);  // the connection broke
  return ErrorClass::query;
}

std::optional<int64_t> postgres_integer(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [parsed_to, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || parsed_to != end) return std::nullopt;
  return value;
}

std::unique_ptr<Probe> make_postgres_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<PostgresProbe>(config, context);
}

}  // namespace blip
