// Hostile and failing targets, one attempt at a time through the real loop,
// probe and scheduler: each fault is a down sample of its class, with a
// detail that says what happened. The servers are real (nginx, PostgreSQL 15,
// redis-server) or raw TCP servers that misbehave on purpose.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "blip/core/clock.hpp"
#include "support/hostile_server.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::HostileServer;
using test::probe_once;

ProbeConfig postgres_probe(const std::string& dsn,
                           PostgresSettings::Mode mode = PostgresSettings::Mode::read,
                           int64_t timeout_ms = 1000) {
  return test::postgres_probe("pg-under-test", dsn, mode, timeout_ms);
}

ProbeConfig redis_probe(int port, int64_t timeout_ms = 1000) {
  return test::redis_probe(port, RedisSettings::Mode::ping, timeout_ms);
}

// Probes until a sample is down (the server's refusal can take a moment to begin).
Sample first_down_sample(const ProbeConfig& config) {
  Sample sample;
  EXPECT_TRUE(test::wait_until(
      [&] {
        sample = probe_once(config);
        return sample.status == Status::down;
      },
      20s, 100ms))
      << sample.detail;
  return sample;
}

std::string local_dsn(int port) {
  return fmt::format("host=127.0.0.1 port={} dbname=postgres user=postgres", port);
}

struct FaultCase {
  std::string name;
  ProbeConfig config;
  ErrorClass error;
  std::string detail_part;  // the detail holds this
};

void expect_fault_cases(const std::vector<FaultCase>& cases) {
  for (const FaultCase& c : cases) {
    SCOPED_TRACE(c.name);
    const auto started = std::chrono::steady_clock::now();
    Sample sample = probe_once(c.config);
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(sample.status, Status::down) << sample.detail;
    EXPECT_EQ(to_string(sample.error), to_string(c.error)) << sample.detail;
    EXPECT_NE(sample.detail.find(c.detail_part), std::string::npos) << sample.detail;
    EXPECT_LE(sample.latency_us, c.config.timeout_ms * 1000 + 100'000)
        << "reported within its timeout";
    EXPECT_LT(elapsed, std::chrono::milliseconds(c.config.timeout_ms + 1500));
    std::printf("[ fault    ] %-45s %-8s \"%s\"\n", c.name.c_str(),
                std::string(to_string(sample.error)).c_str(), sample.detail.c_str());
  }
}

TEST(HostileTargets, HttpProbeFaultsAreDownSamplesOfTheirClass) {
  HostileServer hang(HostileServer::Mode::hang);
  HostileServer trickle(HostileServer::Mode::trickle);
  HostileServer half(HostileServer::Mode::close_mid_headers);
  HostileServer garbage(HostileServer::Mode::garbage);
  test::RedisServer redis;
  expect_fault_cases({
      {"accepts and never answers", test::http_probe(hang.url("/health"), 1000),
       ErrorClass::timeout, "no answer within 1s"},
      // A valid answer, but one byte a second: the timeout bounds the whole attempt, not the gap
      // between bytes.
      {"answers one byte a second", test::http_probe(trickle.url("/health"), 1500),
       ErrorClass::timeout, "no answer within 1s500ms"},
      // curl itself calls this a complete "HTTP 200" answer; blip checks that the headers ended.
      {"closes mid-headers", test::http_probe(half.url("/health"), 1000), ErrorClass::reset,
       "connection closed in the middle of the response headers"},
      {"invalid HTTP", test::http_probe(garbage.url("/health"), 1000), ErrorClass::protocol, ""},
      // redis-server takes "Host:" for a cross-protocol attack and drops the connection without a
      // byte.
      {"HTTP probe on the Redis port (redis-server)",
       test::http_probe(fmt::format("http://127.0.0.1:{}/health", redis.port()), 1000),
       ErrorClass::reset, "Empty reply from server"},
  });
  EXPECT_EQ(redis.command({"PING"}), "PONG") << "redis-server shrugged off the HTTP request";
}

TEST(HostileTargets, PostgresAndRedisProbesAgainstPeersThatMisbehave) {
  HostileServer hang(HostileServer::Mode::hang);
  HostileServer half(HostileServer::Mode::close_mid_headers);
  HostileServer garbage(HostileServer::Mode::garbage);
  test::NginxServer nginx;
  expect_fault_cases({
      {"postgres: accepts and never answers", postgres_probe(local_dsn(hang.port())),
       ErrorClass::timeout, "no answer within 1s"},
      {"postgres: HTTP on the Postgres port (nginx)", postgres_probe(local_dsn(nginx.port())),
       ErrorClass::protocol, ""},
      {"postgres: garbage", postgres_probe(local_dsn(garbage.port())), ErrorClass::protocol, ""},
      {"postgres: half an HTTP answer, then FIN", postgres_probe(local_dsn(half.port())),
       ErrorClass::protocol, ""},
      {"redis: accepts and never answers", redis_probe(hang.port()), ErrorClass::timeout,
       "no answer within 1s"},
      {"redis: HTTP on the Redis port (nginx)", redis_probe(nginx.port()), ErrorClass::protocol,
       ""},
      {"redis: half an HTTP answer, then FIN", redis_probe(half.port()), ErrorClass::protocol, ""},
  });
}

// Holds one connection to a Postgres server until destroyed: psql running a long sleep.
std::unique_ptr<test::ChildProcess> hold_postgres_connection(int port) {
  return std::make_unique<test::ChildProcess>(
      std::vector<std::string>{"psql", "-X", "-q", local_dsn(port), "-c", "SELECT pg_sleep(600)"});
}

TEST(PostgresFaults, MaxConnectionsReachedIsRefusedAndRecovers) {
  test::PostgresServer server;
  server.sql("ALTER SYSTEM SET max_connections = 3");
  server.sql("ALTER SYSTEM SET superuser_reserved_connections = 0");
  // A backend in pg_sleep notices its client is gone only with this; then a slot frees when psql is
  // killed.
  server.sql("ALTER SYSTEM SET client_connection_check_interval = '100ms'");
  server.stop();
  server.start();
  ASSERT_EQ(server.sql("SHOW max_connections"), "3");
  std::vector<std::unique_ptr<test::ChildProcess>> held;
  for (int i = 0; i < 2; ++i) held.push_back(hold_postgres_connection(server.port()));
  ASSERT_TRUE(test::wait_until(
      [&] {
        return server.sql(
                   "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                   "AND "
                   "query LIKE 'SELECT pg_sleep%'") == "2";
      },
      20s));
  held.push_back(hold_postgres_connection(server.port()));  // the last slot
  const ProbeConfig config = postgres_probe(server.dsn());
  const Sample sample = first_down_sample(config);
  ASSERT_EQ(sample.status, Status::down);
  EXPECT_EQ(to_string(sample.error), "refused") << sample.detail;
  EXPECT_NE(sample.detail.find("too many clients"), std::string::npos) << sample.detail;
  std::printf("[ fault    ] postgres max_connections reached: %s \"%s\"\n",
              std::string(to_string(sample.error)).c_str(), sample.detail.c_str());
  held.clear();  // psql killed: its backend goes, a slot frees
  ASSERT_TRUE(test::wait_until([&] { return probe_once(config).status == Status::up; }, 20s, 100ms))
      << "up again once a connection slot is free";
}

// SIGKILL to the postmaster and every backend, by their ids, as the OOM killer
// or a crashed VM would leave it; then a start that must run crash recovery.
TEST(PostgresFaults, KilledWithSigkillThenCrashRecoveryThenUpOnTheSameProbe) {
  test::PostgresServer server;
  const std::string data = server.sql("SHOW data_directory");
  ProbeConfig config = postgres_probe(server.dsn(), PostgresSettings::Mode::write, 500);
  int64_t killed_ms = 0;
  int64_t restarted_ms = 0;
  auto samples = test::run_probes_for({config}, 6s, [&] {
    std::this_thread::sleep_for(1s);
    const pid_t postmaster = std::stoi(test::read_file(data + "/postmaster.pid"));
    std::vector<pid_t> backends;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = test::read_file(entry.path().string() + "/stat");
      const size_t after_name = stat.rfind(')');
      if (after_name == std::string::npos) continue;
      int parent = 0;
      if (std::sscanf(stat.c_str() + after_name + 1, " %*c %d", &parent) == 1 &&
          parent == postmaster) {
        backends.push_back(std::stoi(name));
      }
    }
    killed_ms = wall_now_ms();
    kill(postmaster, SIGKILL);
    for (pid_t backend : backends) kill(backend, SIGKILL);
    std::this_thread::sleep_for(1500ms);
    server.start();  // the same data: "database system was interrupted", automatic recovery
    restarted_ms = wall_now_ms();
  });
  const auto& db = samples[0];
  ASSERT_GE(db.size(), 20U);
  int refused = 0;
  for (const Sample& sample : db) {
    if (sample.sent_ms < killed_ms - 100) {
      EXPECT_EQ(sample.status, Status::up) << sample.detail;
    }
    if (sample.status != Status::down) continue;
    // The pooled connection breaks (reset), new ones find no listener or a server still recovering
    // (refused).
    EXPECT_TRUE(sample.error == ErrorClass::reset || sample.error == ErrorClass::refused)
        << to_string(sample.error) << ": " << sample.detail;
    refused += sample.error == ErrorClass::refused;
  }
  EXPECT_GE(refused, 5);
  EXPECT_EQ(db.back().status, Status::up)
      << "the same probe reconnects after the restart: " << db.back().detail;
  EXPECT_GT(db.back().sent_ms, restarted_ms);
  std::map<std::string, int> seen;
  for (const Sample& sample : db) {
    if (sample.status == Status::down)
      ++seen[std::string(to_string(sample.error)) + " \"" + sample.detail.substr(0, 90) + "\""];
  }
  for (const auto& [what, count] : seen)
    std::printf("[ fault    ] postgres SIGKILLed: %3d x %s\n", count, what.c_str());
}

TEST(PostgresFaults, InRecoveryReadsAnswerWritesFailAndWithoutHotStandbyItRefuses) {
  test::PostgresServer primary;
  test::PostgresServer standby(&primary);
  Sample read;
  ASSERT_TRUE(test::wait_until(
      [&] {
        read = probe_once(postgres_probe(standby.dsn()));
        return read.status == Status::up;
      },
      20s, 100ms))
      << read.detail;
  ASSERT_EQ(standby.sql("SELECT pg_is_in_recovery()"), "t");
  Sample write = probe_once(postgres_probe(standby.dsn(), PostgresSettings::Mode::write));
  EXPECT_EQ(write.status, Status::down);
  EXPECT_EQ(to_string(write.error), "query") << write.detail;
  EXPECT_NE(write.detail.find("read-only transaction"), std::string::npos) << write.detail;
  std::printf("[ fault    ] postgres write on a hot standby: %s \"%s\"\n",
              std::string(to_string(write.error)).c_str(), write.detail.c_str());

  // The same standby without hot standby: in recovery, it takes no connections at all.
  const std::string data = standby.sql("SHOW data_directory");
  standby.sql("ALTER SYSTEM SET hot_standby = off");
  standby.stop();
  std::vector<std::string> argv{"/usr/lib/postgresql/15/bin/postgres", "-D", data};
  if (geteuid() == 0)
    argv.insert(argv.begin(),
                {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"});
  test::TempDir logs;
  test::ChildProcess recovering(argv, logs.file("postgres.log"), logs.file("postgres.log"));
  Sample refused;
  ASSERT_TRUE(test::wait_until(
      [&] {
        refused = probe_once(postgres_probe(standby.dsn()));
        return refused.detail.find("not accepting connections") != std::string::npos;
      },
      20s, 100ms))
      << refused.detail;  // past its start, while recovery goes on
  EXPECT_EQ(refused.status, Status::down);
  EXPECT_EQ(to_string(refused.error), "refused") << refused.detail;
  EXPECT_NE(refused.detail.find("not accepting connections"), std::string::npos) << refused.detail;
  std::printf("[ fault    ] postgres in recovery, hot_standby off: %s \"%s\"\n",
              std::string(to_string(refused.error)).c_str(), refused.detail.c_str());
  recovering.signal(SIGINT);
  EXPECT_GE(recovering.wait(30'000), 0);
}

TEST(RedisFaults, MaxClientsReachedIsRefusedAndRecovers) {
  test::RedisServer server;
  // Two idle clients connect first, then the limit drops to two: set before they were in,
  // command()'s own connection could still hold a place and turn one of them away.
  std::vector<std::unique_ptr<test::ChildProcess>> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::make_unique<test::ChildProcess>(
        std::vector<std::string>{"redis-cli", "-h", "127.0.0.1", "-p",
                                 std::to_string(server.port()), "BLPOP", "never-pushed", "600"}));
  }
  ASSERT_TRUE(test::wait_until(
      [&] {
        return server.command({"INFO", "clients"}).find("blocked_clients:2") != std::string::npos;
      },
      20s));
  server.command({"CONFIG", "SET", "maxclients", "2"});
  const ProbeConfig config = redis_probe(server.port());
  const Sample sample = first_down_sample(config);
  ASSERT_EQ(sample.status, Status::down);
  EXPECT_EQ(to_string(sample.error), "refused") << sample.detail;
  EXPECT_NE(sample.detail.find("max number of clients reached"), std::string::npos)
      << sample.detail;
  std::printf("[ fault    ] redis maxclients reached: %s \"%s\"\n",
              std::string(to_string(sample.error)).c_str(), sample.detail.c_str());
  held.clear();
  ASSERT_TRUE(test::wait_until([&] { return probe_once(config).status == Status::up; }, 20s, 100ms))
      << "up again once a client place is free";
}

}  // namespace
}  // namespace blip
