// The Postgres probe against real PostgreSQL 15 clusters on loopback.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "blip/probes/postgres_reply.hpp"
#include "support/freeze.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

using test::postgres_probe;

PostgresSettings& pg(ProbeConfig& config) { return std::get<PostgresSettings>(config.settings); }

size_t count_status(const std::vector<Sample>& samples, Status status) {
  return static_cast<size_t>(std::count_if(samples.begin(), samples.end(),
                                           [&](const Sample& s) { return s.status == status; }));
}

class PostgresProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test::PostgresServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static test::PostgresServer* server_;
};
test::PostgresServer* PostgresProbeTest::server_ = nullptr;

// A server or pooler may send anything in a count or LSN column: std::stoll's
// throw left the attempt to time out instead of failing it as a protocol error.
TEST(PostgresReplies, IntegerColumnsAreReadWholeOrNotAtAll) {
  EXPECT_EQ(postgres_integer("0"), 0);
  EXPECT_EQ(postgres_integer("50331648"), 50331648);
  EXPECT_EQ(postgres_integer("-1"), -1);
  EXPECT_EQ(postgres_integer(""), std::nullopt);
  EXPECT_EQ(postgres_integer("abc"), std::nullopt);
  EXPECT_EQ(postgres_integer("12 "), std::nullopt);
  EXPECT_EQ(postgres_integer("1.5"), std::nullopt);
  EXPECT_EQ(postgres_integer("9223372036854775808"), std::nullopt);
}

TEST_F(PostgresProbeTest, ReadWriteAuthAndErrorCases) {
  struct Case {
    std::string name;
    std::string dsn;
    PostgresSettings::Mode mode;
    std::string query;
    Status status;
    ErrorClass error;
  };
  const auto read = PostgresSettings::Mode::read;
  const std::vector<Case> cases{
      {"superuser SELECT 1", server_->dsn(), read, "", Status::up, ErrorClass::none},
      {"password role", server_->dsn("blip", "blip-secret"), read, "", Status::up,
       ErrorClass::none},
      {"wrong password", server_->dsn("blip", "not-the-password"), read, "", Status::down,
       ErrorClass::auth},
      {"no password", server_->dsn("blip"), read, "", Status::down, ErrorClass::auth},
      {"unknown database", server_->dsn() + " dbname=nope", read, "", Status::down,
       ErrorClass::auth},
      {"custom query", server_->dsn(), read, "SELECT count(*) FROM pg_class", Status::up,
       ErrorClass::none},
      {"bad query", server_->dsn(), read, "SELECT * FROM no_such_table", Status::down,
       ErrorClass::query},
      {"COPY does not hang", server_->dsn(), read, "COPY (SELECT 1) TO STDOUT", Status::down,
       ErrorClass::protocol},
      {"write heartbeat", server_->dsn("blip", "blip-secret"), PostgresSettings::Mode::write, "",
       Status::up, ErrorClass::none},
      {"URI form",
       "postgresql://postgres@127.0.0.1:" + std::to_string(server_->port()) + "/postgres", read, "",
       Status::up, ErrorClass::none},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = postgres_probe("pg", c.dsn, c.mode);
    if (!c.query.empty()) pg(config).query = c.query;
    Sample sample = test::probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_EQ(sample.detail.find("secret"), std::string::npos) << sample.detail;
    EXPECT_EQ(sample.detail.find("not-the-password"), std::string::npos) << sample.detail;
    EXPECT_EQ(config.target_display.find("password"), std::string::npos) << config.target_display;
  }
  EXPECT_EQ(server_->sql("SELECT count(*) FROM blip_heartbeat WHERE probe = 'pg'"), "1");
}

// On the same machine Postgres is reached over its Unix socket: host= names the socket's directory
// (nothing to look up), and read and write both pass.
TEST_F(PostgresProbeTest, OverTheUnixSocket) {
  const std::string dsn = fmt::format("host={} port={} dbname=postgres user=postgres",
                                      server_->socket_directory(), server_->port());
  for (const auto mode : {PostgresSettings::Mode::read, PostgresSettings::Mode::write}) {
    const Sample sample = test::probe_once(postgres_probe("pg-socket", dsn, mode));
    EXPECT_EQ(sample.status, Status::up) << sample.detail;
    EXPECT_EQ(sample.phases.dns_us, 0) << "a socket's directory was looked up";
  }
  // A directory without the socket: refused, not a lookup failure.
  const Sample missing = test::probe_once(postgres_probe(
      "pg-socket", fmt::format("host={} port={} dbname=postgres user=postgres",
                               server_->socket_directory() + "/none", server_->port())));
  EXPECT_EQ(missing.status, Status::down);
  EXPECT_NE(missing.error, ErrorClass::dns) << missing.detail;
}

TEST_F(PostgresProbeTest, SeparatePasswordSetting) {
  ProbeConfig config = postgres_probe("pg", server_->dsn("blip"));
  pg(config).password = "blip-secret";
  EXPECT_EQ(test::probe_once(config).status, Status::up);
}

TEST_F(PostgresProbeTest, WritesStallUnderATableLockWhileReadsStayUp) {
  test::probe_once(postgres_probe("db-write", server_->dsn(),
                                  PostgresSettings::Mode::write));  // creates the table
  std::vector<ProbeConfig> configs{
      postgres_probe("db-write", server_->dsn(), PostgresSettings::Mode::write, 500),
      postgres_probe("db-read", server_->dsn(), PostgresSettings::Mode::read, 500)};
  int blip_backends_during_lock = 0;
  auto samples = test::run_probes_for(configs, 4s, [&] {
    std::this_thread::sleep_for(500ms);
    std::thread count([&] {
      std::this_thread::sleep_for(1700ms);
      blip_backends_during_lock = std::stoi(
          server_->sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'blip'"));
    });
    // Another session takes the heartbeat table for 2 s, as a long migration or a backup's lock
    // would.
    server_->sql(
        "BEGIN; LOCK TABLE blip_heartbeat IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2); COMMIT");
    count.join();
  });
  // Writes every 100 ms that each hang for 500 ms: without a bound on
  // connections this would be a new backend per attempt, waiting on the lock.
  EXPECT_LE(blip_backends_during_lock, 6) << "connections held by the two probes during the lock";
  const auto& writes = samples[0];
  const auto& reads = samples[1];
  EXPECT_GE(count_status(writes, Status::down), 10U);
  for (const Sample& sample : writes) {
    if (sample.status == Status::down) {
      EXPECT_EQ(sample.error, ErrorClass::timeout) << sample.detail;
      const bool in_query =
          sample.detail.find("waiting for the query's result") != std::string::npos;
      const bool queued =
          sample.detail.find("waiting for a free connection, 3 in use") != std::string::npos;
      EXPECT_TRUE(in_query || queued) << sample.detail;
    }
  }
  EXPECT_EQ(writes.back().status, Status::up) << "writes recover once the lock is gone";
  EXPECT_EQ(count_status(reads, Status::down), 0U);
  EXPECT_GE(reads.size(), 30U);
}

TEST_F(PostgresProbeTest, FrozenServerTimesOutOthersStayOnTimeAndItRecovers) {
  test::NginxServer nginx;
  std::vector<ProbeConfig> configs{
      postgres_probe("db", server_->dsn(), PostgresSettings::Mode::read, 500),
      test::http_probe(nginx.url("/health"), 500)};
  configs[1].interval_ms = 100;
  auto samples = test::run_probes_for(configs, 6s, [] {
    std::this_thread::sleep_for(1500ms);
    test::freeze_for(*server_, 3s);
  });
  const auto& db = samples[0];
  ASSERT_GE(count_status(db, Status::down), 20U);
  for (const Sample& sample : db) {
    if (sample.status != Status::down) continue;
    EXPECT_EQ(sample.error, ErrorClass::timeout) << sample.detail;
    EXPECT_NE(sample.detail.find("no answer within 500ms ("), std::string::npos) << sample.detail;
    // Ended by its deadline, not by the thaw 3 s later: at least the timeout (2 ms
    // for libuv's whole-millisecond, possibly coarse, loop clock), and under twice it, which leaves
    // 500 ms for a loaded machine's late timers.
    EXPECT_GE(sample.latency_us, 498'000) << "a timeout is never called early";
    EXPECT_LT(sample.latency_us, 1'000'000) << "a timeout is reported within the timeout";
  }
  EXPECT_EQ(db.back().status, Status::up) << "recovers after SIGCONT without a restart";
  EXPECT_EQ(count_status(samples[1], Status::down), 0U);
  // A probe waiting for the frozen one (or for its own earlier attempt) would
  // wait its 500 ms timeout; 400 ms (four intervals) is below that and leaves
  // 300 ms for a loaded 2-core machine running the loop late.
  EXPECT_LT(test::largest_gap_ms(samples[1]), 400) << "the other probe kept its schedule";
  EXPECT_LT(test::largest_gap_ms(db), 400) << "the frozen probe kept its own schedule too";
}

TEST_F(PostgresProbeTest, ReconnectsAfterTheServerIsKilledAndRestarted) {
  ProbeConfig config = postgres_probe("db", server_->dsn());
  auto samples = test::run_probes_for({config}, 5s, [] {
    std::this_thread::sleep_for(1s);
    server_->stop();
    std::this_thread::sleep_for(1s);
    server_->start();
  });
  const auto& db = samples[0];
  ASSERT_GE(count_status(db, Status::down), 3U);
  bool saw_refused = false;
  for (const Sample& sample : db) saw_refused = saw_refused || sample.error == ErrorClass::refused;
  EXPECT_TRUE(saw_refused);
  EXPECT_EQ(db.back().status, Status::up);
}

// A pooled connection the server closed while idle costs no down sample.
TEST_F(PostgresProbeTest, ServerClosingTheIdleConnectionCostsNoSample) {
  ProbeConfig config = postgres_probe("db", server_->dsn());
  config.interval_ms = 200;
  auto samples = test::run_probes_for({config}, 2s, [] {
    std::this_thread::sleep_for(1s);
    server_->sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blip'");
  });
  ASSERT_GE(samples[0].size(), 8U);
  for (const Sample& sample : samples[0]) EXPECT_EQ(sample.status, Status::up) << sample.detail;
}

TEST_F(PostgresProbeTest, ReconnectEachOpensAFreshConnection) {
  ProbeConfig config = postgres_probe("db", server_->dsn());
  pg(config).reconnect_each = true;
  auto samples = test::run_probes_for({config}, 1s);
  ASSERT_GE(samples[0].size(), 5U);
  for (const Sample& sample : samples[0]) {
    EXPECT_EQ(sample.status, Status::up) << sample.detail;
    EXPECT_GT(sample.phases.connect_us, 0) << "each sample connected anew";
  }
}

TEST(PostgresProbeWrongPeer, NotPostgresOnThePortIsAProtocolError) {
  test::NginxServer nginx;
  Sample http =
      test::probe_once(postgres_probe("db", "host=127.0.0.1 port=" + std::to_string(nginx.port())));
  EXPECT_EQ(http.status, Status::down);
  EXPECT_EQ(http.error, ErrorClass::protocol) << http.detail;
  Sample refused = test::probe_once(
      postgres_probe("db", "host=127.0.0.1 port=" + std::to_string(test::free_port())));
  EXPECT_EQ(refused.error, ErrorClass::refused) << refused.detail;
}

// Each probe pointed at the other's server: a down sample of class protocol, quickly.
TEST_F(PostgresProbeTest, PostgresAndRedisProbesPointedAtEachOther) {
  test::RedisServer redis;
  Sample postgres_at_redis =
      test::probe_once(postgres_probe("db", "host=127.0.0.1 port=" + std::to_string(redis.port())));
  // Redis waits for a line that libpq's binary startup message never ends, so
  // nothing answers; the detail says how far the attempt got.
  EXPECT_EQ(postgres_at_redis.status, Status::down);
  EXPECT_EQ(postgres_at_redis.error, ErrorClass::timeout);
  EXPECT_EQ(postgres_at_redis.detail,
            "no answer within 1s (connected, no Postgres answer to the startup message)");

  ProbeConfig redis_at_postgres;
  redis_at_postgres.name = "redis";
  redis_at_postgres.type = "redis";
  redis_at_postgres.timeout_ms = 1000;
  RedisSettings settings;
  settings.host = "127.0.0.1";
  settings.port = std::to_string(server_->port());
  redis_at_postgres.settings = settings;
  Sample sample = test::probe_once(redis_at_postgres);
  EXPECT_EQ(sample.status, Status::down);
  EXPECT_NE(sample.error, ErrorClass::none);
  EXPECT_TRUE(sample.error == ErrorClass::protocol || sample.error == ErrorClass::reset)
      << sample.detail;
}

TEST(PostgresReplication, StandbyStreamingLagAndPrimaryReplicas) {
  test::PostgresServer primary;
  test::PostgresServer standby(&primary);
  primary.sql("CREATE TABLE ticks(at timestamptz)");
  ProbeConfig on_standby =
      postgres_probe("replica", standby.dsn(), PostgresSettings::Mode::replication);
  pg(on_standby).max_lag_ms = 1000;
  ProbeConfig on_primary =
      postgres_probe("replicas", primary.dsn(), PostgresSettings::Mode::replication);
  pg(on_primary).role = PostgresSettings::Role::primary;

  // Healthy: streaming, no lag, one replica.
  for (int attempt = 0; attempt < 50 && test::probe_once(on_standby).status != Status::up;
       ++attempt) {
    std::this_thread::sleep_for(100ms);  // the receiver may still be starting
  }
  Sample streaming = test::probe_once(on_standby);
  EXPECT_EQ(streaming.status, Status::up) << streaming.detail;
  Sample replicas = test::probe_once(on_primary);
  EXPECT_EQ(replicas.status, Status::up) << replicas.detail;

  // The standby probe pointed at the primary is down: it is not a standby.
  ProbeConfig wrong_role = on_standby;
  pg(wrong_role).dsn = primary.dsn();
  EXPECT_EQ(test::probe_once(wrong_role).error, ErrorClass::replication);

  // Replay paused while the primary keeps writing: the lag grows past max_lag.
  standby.sql("SELECT pg_wal_replay_pause()");
  auto paused = test::run_probes_for({on_standby}, 3s, [&] {
    for (int i = 0; i < 25; ++i) {
      primary.sql("INSERT INTO ticks VALUES (now())");
      std::this_thread::sleep_for(100ms);
    }
  });
  ASSERT_FALSE(paused[0].empty());
  EXPECT_EQ(paused[0].front().status, Status::up) << paused[0].front().detail;
  EXPECT_EQ(paused[0].back().status, Status::down);
  EXPECT_EQ(paused[0].back().error, ErrorClass::lag) << paused[0].back().detail;
  standby.sql("SELECT pg_wal_replay_resume()");

  // An idle primary: no lag however long since the last commit.
  auto idle = test::run_probes_for({on_standby}, 1500ms);
  EXPECT_EQ(idle[0].back().status, Status::up) << idle[0].back().detail;

  // The standby stops replicating: both probes go down.
  standby.sql("ALTER SYSTEM SET primary_conninfo = ''");
  standby.sql("SELECT pg_reload_conf()");
  Sample stopped;
  for (int attempt = 0; attempt < 50; ++attempt) {
    stopped = test::probe_once(on_standby);
    if (stopped.status == Status::down) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(stopped.error, ErrorClass::replication) << stopped.detail;
  Sample none = test::probe_once(on_primary);
  for (int attempt = 0; attempt < 50 && none.status != Status::down; ++attempt) {
    std::this_thread::sleep_for(100ms);
    none = test::probe_once(on_primary);
  }
  EXPECT_EQ(none.error, ErrorClass::replication) << none.detail;
  EXPECT_EQ(none.detail, "0 replicas streaming, 1 expected");
}

}  // namespace
}  // namespace blip
