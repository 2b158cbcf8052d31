// Redis probe against real redis-servers (and a few non-Redis servers) on loopback.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <regex>
#include <thread>

#include "blip/adapters/redis_uv.hpp"
#include "blip/core/clock.hpp"
#include "blip/probes/probe_runtime.hpp"
#include "blip/probes/sidekiq.hpp"
#include "blip/scheduler/scheduler.hpp"
#include "support/hostile_server.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using test::probe_once;
using test::RedisServer;
using Mode = RedisSettings::Mode;

constexpr const char* kServerPassword = "s3cret-pa55word";

using test::redis_probe;

RedisSettings& settings_of(ProbeConfig& config) { return std::get<RedisSettings>(config.settings); }

struct Delivered {
  Sample sample;
  int64_t arrived_ms;  // wall clock when the scheduler delivered it
};

// Runs the probes on the real scheduler (not single-shot) for `duration_ms`,
// then drains. `events` run on the loop at the given offsets (ms).
std::vector<std::vector<Delivered>> run_for(
    const std::vector<ProbeConfig>& configs, int64_t duration_ms,
    const std::vector<std::pair<int64_t, std::function<void()>>>& events = {}) {
  std::vector<std::vector<Delivered>> delivered(configs.size());
  ProbeRuntime runtime(configs);
  Scheduler scheduler(runtime.loop.get(), configs, runtime.probes,
                      [&](size_t index, const Sample& sample) {
                        delivered[index].push_back({sample, wall_now_ms()});
                      });
  std::vector<std::unique_ptr<Timer>> timers;
  for (const auto& [at_ms, action] : events) {
    timers.push_back(std::make_unique<Timer>(runtime.loop.get(), action));
    timers.back()->start(static_cast<uint64_t>(at_ms));
  }
  Timer stopper(runtime.loop.get(), [&] { scheduler.stop([&] { runtime.loop.stop(); }); });
  stopper.start(static_cast<uint64_t>(duration_ms));
  scheduler.start();
  runtime.loop.run();
  return delivered;
}

bool has_password(const Sample& sample, const std::string& password) {
  return !password.empty() && sample.detail.find(password) != std::string::npos;
}

// --- modes, SELECT, AUTH -----------------------------------------------------

struct ModeCase {
  std::string name;
  Mode mode;
  std::string username;
  std::string password;
  int64_t db;
  Status status;
  ErrorClass error;
  std::string detail;  // a substring of the detail
};

void run_mode_cases(const RedisServer& server, const std::vector<ModeCase>& cases) {
  for (const ModeCase& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = redis_probe(server.port(), c.mode);
    settings_of(config).username = c.username;
    settings_of(config).password = c.password;
    settings_of(config).db = c.db;
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_NE(sample.detail.find(c.detail), std::string::npos) << sample.detail;
    EXPECT_FALSE(has_password(sample, c.password)) << sample.detail;
    EXPECT_FALSE(has_password(sample, server.password())) << sample.detail;
  }
}

// Found by fuzz_sidekiq_job: from_chars reads "inf" and "nan", and a beat of
// "inf" made a process with no real heartbeat look alive for ever.
TEST(SidekiqReplies, OnlyFiniteBeatsAndEnqueuedTimesCount) {
  EXPECT_EQ(sidekiq_beat_s("1764633601.5"), 1764633601.5);
  EXPECT_EQ(sidekiq_beat_s("inf"), std::nullopt);
  EXPECT_EQ(sidekiq_beat_s("nan"), std::nullopt);
  EXPECT_EQ(sidekiq_beat_s("1e999"), std::nullopt);
  std::string problem;
  EXPECT_EQ(sidekiq_enqueued_at_s(R"({"class":"X","enqueued_at":1764633601654})", problem),
            1764633601.654);
  EXPECT_EQ(sidekiq_enqueued_at_s(R"({"class":"X","enqueued_at":1e999})", problem), std::nullopt);
  EXPECT_EQ(problem, "is not JSON");  // nlohmann refuses a number past double's range
  EXPECT_EQ(sidekiq_enqueued_at_s(R"({"class":"X","enqueued_at":"1764633601.6"})", problem),
            std::nullopt);
  EXPECT_EQ(problem, "has no enqueued_at");
  EXPECT_EQ(sidekiq_enqueued_at_s("[1]", problem), std::nullopt);
  EXPECT_EQ(problem, "is not JSON");
}

// Found by fuzz_redis_reply: "*36035902\r\n" made hiredis 0.14 calloc 288 MB at once.
TEST(SidekiqReplies, AnArrayLongerThanTheBoundIsAnErrorNotAnAllocation) {
  auto read = [](const std::string& bytes) {
    std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(),
                                                                    redisReaderFree);
    bound_redis_reply_arrays(reader.get());
    redisReaderFeed(reader.get(), bytes.data(), bytes.size());
    void* reply = nullptr;
    const int status = redisReaderGetReply(reader.get(), &reply);
    if (reply) freeReplyObject(reply);
    return status == REDIS_OK && reply != nullptr;
  };
  EXPECT_TRUE(read("*2\r\n$1\r\na\r\n$1\r\nb\r\n"));
  std::string longest = fmt::format("*{}\r\n", kMaxRedisReplyArrayElements);
  for (long long i = 0; i < kMaxRedisReplyArrayElements; ++i) longest += ":1\r\n";
  EXPECT_TRUE(read(longest));
  EXPECT_FALSE(read("*36035902\r\n"));
}

TEST(RedisProbe, ModesAndSelectWithoutPassword) {
  RedisServer server;
  run_mode_cases(server,
                 {
                     {"ping", Mode::ping, "", "", 0, Status::up, ErrorClass::none, "PONG"},
                     {"write", Mode::write, "", "", 0, Status::up, ErrorClass::none, "SET and GET"},
                     {"ping in db 3", Mode::ping, "", "", 3, Status::up, ErrorClass::none, "PONG"},
                     {"write in db 5", Mode::write, "", "", 5, Status::up, ErrorClass::none, ""},
                     {"db out of range", Mode::ping, "", "", 99, Status::down, ErrorClass::query,
                      "SELECT 99 failed: ERR DB index is out of range"},
                     {"a password the server does not need", Mode::ping, "", "not-needed-pw", 0,
                      Status::down, ErrorClass::auth, "AUTH failed"},
                 });
  // SELECT really switched databases: the write went to db 5 (and db 0, from the case before).
  EXPECT_NE(server.command({"GET", "blip:probe:redis-under-test"}, 5), "(nil)");
  std::string ttl = server.command({"PTTL", "blip:probe:redis-under-test"}, 5);
  EXPECT_GT(std::stoll(ttl), 0) << "the probe key expires";
  EXPECT_LE(std::stoll(ttl), 60'000);
  EXPECT_EQ(server.command({"EXISTS", "blip:probe:redis-under-test"}, 4), "0");
}

// `address` as a socket's path: Redis on the same machine, as Debian's redis-server offers it.
TEST(RedisProbe, OverTheUnixSocket) {
  RedisServer server;
  for (const Mode mode : {Mode::ping, Mode::write}) {
    ProbeConfig config = redis_probe(0, mode);
    settings_of(config).host = server.socket_path();
    settings_of(config).port.clear();
    const Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, Status::up) << sample.detail;
  }
  ProbeConfig missing = redis_probe(0);
  settings_of(missing).host = server.socket_path() + ".none";
  settings_of(missing).port.clear();
  const Sample refused = probe_once(missing);
  EXPECT_EQ(refused.status, Status::down);
  EXPECT_EQ(refused.error, ErrorClass::refused) << refused.detail;
}

TEST(RedisProbe, ReadOnlyReplicaAnswersPingButFailsWrites) {
  RedisServer server;
  // A replica of a master that is not there: it still serves reads and PING, refuses writes.
  server.command({"REPLICAOF", "127.0.0.1", std::to_string(test::free_port())});
  run_mode_cases(server, {
                             {"ping", Mode::ping, "", "", 0, Status::up, ErrorClass::none, "PONG"},
                             {"write", Mode::write, "", "", 0, Status::down, ErrorClass::query,
                              "SET: READONLY"},
                         });
}

TEST(RedisProbe, ErrorRepliesAreClassified) {
  const std::vector<std::pair<std::string, ErrorClass>> cases{
      {"NOAUTH Authentication required.", ErrorClass::auth},
      {"WRONGPASS invalid username-password pair or user is disabled.", ErrorClass::auth},
      {"ERR invalid password", ErrorClass::auth},
      {"-ERR AUTH <password> called without any password configured for the default user.",
       ErrorClass::auth},
      {"ERR Client sent AUTH, but no password is set", ErrorClass::auth},
      {"ERR wrong number of arguments for 'auth' command", ErrorClass::auth},
      {"NOPERM this user has no permissions to run the 'set' command", ErrorClass::auth},
      {"ERR max number of clients reached",
       ErrorClass::refused},  // as Postgres' "too many clients"
      {"WRONGTYPE Operation against a key holding the wrong kind of value", ErrorClass::query},
      {"READONLY You can't write against a read only replica.", ErrorClass::query},
      {"ERR DB index is out of range", ErrorClass::query},
      {"LOADING Redis is loading the dataset in memory", ErrorClass::query},
  };
  for (const auto& [reply, error] : cases)
    EXPECT_EQ(classify_redis_error_reply(reply), error) << reply;
}

TEST(RedisProbe, AuthWithPasswordAndUsername) {
  RedisServer server(kServerPassword);
  run_mode_cases(server, {
                             {"right password", Mode::ping, "", kServerPassword, 0, Status::up,
                              ErrorClass::none, "PONG"},
                             {"right password, write in db 2", Mode::write, "", kServerPassword, 2,
                              Status::up, ErrorClass::none, ""},
                             {"user default and right password", Mode::ping, "default",
                              kServerPassword, 0, Status::up, ErrorClass::none, "PONG"},
                             {"wrong password", Mode::ping, "", "wrong-pa55word", 0, Status::down,
                              ErrorClass::auth, "WRONGPASS"},
                             {"unknown user", Mode::ping, "nobody", kServerPassword, 0,
                              Status::down, ErrorClass::auth, "WRONGPASS"},
                             {"password required, none given", Mode::ping, "", "", 0, Status::down,
                              ErrorClass::auth, "NOAUTH"},
                             {"password required, none given, write", Mode::write, "", "", 0,
                              Status::down, ErrorClass::auth, "NOAUTH"},
                             {"password required, none given, sidekiq", Mode::sidekiq, "", "", 0,
                              Status::down, ErrorClass::auth, "NOAUTH"},
                         });
}

TEST(RedisProbe, HostNameIsResolvedAndPhasesAreRecorded) {
  RedisServer server;
  ProbeConfig config = redis_probe(server.port());
  settings_of(config).host = "localhost";  // from /etc/hosts; redis listens on 127.0.0.1 only
  Sample sample = probe_once(config);
  ASSERT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_GT(sample.phases.dns_us, 0);
  EXPECT_GT(sample.phases.connect_us, 0);
  EXPECT_GT(sample.phases.first_byte_us, 0);
  EXPECT_GE(sample.latency_us, sample.phases.connect_us + sample.phases.first_byte_us);
}

// --- servers that are not Redis, or not there ---------------------------------

TEST(RedisProbe, NotRedisOrNotThere) {
  test::NginxServer nginx;
  test::HostileServer garbage(test::HostileServer::Mode::garbage);
  test::HostileServer reset(test::HostileServer::Mode::reset);
  test::HostileServer hang(test::HostileServer::Mode::hang);
  struct Case {
    std::string name;
    int port;
    Mode mode;
    ErrorClass error;
  };
  const std::vector<Case> cases{
      {"nginx answers HTTP", nginx.port(), Mode::ping, ErrorClass::protocol},
      {"nginx answers HTTP, write", nginx.port(), Mode::write, ErrorClass::protocol},
      {"garbage bytes", garbage.port(), Mode::ping, ErrorClass::protocol},
      {"connection reset (RST)", reset.port(), Mode::ping, ErrorClass::reset},
      {"accepts and never answers", hang.port(), Mode::ping, ErrorClass::timeout},
      {"nothing listens", test::free_port(), Mode::ping, ErrorClass::refused},
      {"nothing listens, sidekiq", test::free_port(), Mode::sidekiq, ErrorClass::refused},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = redis_probe(c.port, c.mode, 500);
    settings_of(config).password = "hunter2-never-shown";
    auto started = std::chrono::steady_clock::now();
    Sample sample = probe_once(config);
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(sample.status, Status::down);
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_FALSE(has_password(sample, "hunter2-never-shown")) << sample.detail;
    EXPECT_LT(elapsed, std::chrono::milliseconds(900));
  }
}

// --- connections over time: reuse, freeze, kill and restart --------------------

TEST(RedisProbe, OneConnectionServesManySamples) {
  RedisServer server;
  auto connections = [&] {
    std::string info = server.command({"INFO", "stats"});
    size_t at = info.find("total_connections_received:");
    return std::stoll(info.substr(at + std::string("total_connections_received:").size()));
  };
  const long long before = connections();
  ProbeConfig config = redis_probe(server.port(), Mode::write);
  config.interval_ms = 50;
  auto delivered = run_for({config}, 1000);
  ASSERT_GE(delivered[0].size(), 10U);
  for (const Delivered& d : delivered[0]) EXPECT_EQ(d.sample.status, Status::up) << d.sample.detail;
  // One connection for the probe, plus the one that asks the second time.
  EXPECT_LE(connections() - before, 2);
  EXPECT_GT(delivered[0].front().sample.phases.connect_us, 0) << "the first sample connects";
  EXPECT_EQ(delivered[0].back().sample.phases.connect_us, 0)
      << "later samples reuse the connection";
}

TEST(RedisProbe, ServerClosingTheIdleConnectionCostsNoSample) {
  RedisServer server;
  ProbeConfig config = redis_probe(server.port(), Mode::ping);
  int64_t killed_at_ms = 0;
  // Between two samples (they fire at 0, 100, 200, ... ms): the pool sees the close and reconnects.
  auto delivered = run_for(
      {config}, 1000, {{550, [&] {
                          server.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
                          killed_at_ms = wall_now_ms();
                        }}});
  int reconnects = 0;
  for (const Delivered& d : delivered[0]) {
    EXPECT_EQ(d.sample.status, Status::up) << d.sample.detail;
    if (d.sample.sent_ms > killed_at_ms && d.sample.phases.connect_us > 0) ++reconnects;
  }
  EXPECT_EQ(reconnects, 1);
}

TEST(RedisProbe, FrozenServerTimesOutWhileOthersKeepTheirScheduleAndItRecovers) {
  RedisServer frozen;
  RedisServer healthy;
  ProbeConfig frozen_probe = redis_probe(frozen.port(), Mode::ping, 500);
  frozen_probe.name = "frozen";
  ProbeConfig healthy_probe = redis_probe(healthy.port(), Mode::write, 500);
  healthy_probe.name = "healthy";

  int64_t frozen_from_ms = 0;
  int64_t thawed_at_ms = 0;
  std::thread freezer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    frozen_from_ms = wall_now_ms();
    frozen.freeze();
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));
    frozen.thaw();
    thawed_at_ms = wall_now_ms();
  });
  auto delivered = run_for({frozen_probe, healthy_probe}, 6000);
  freezer.join();

  const auto& frozen_samples = delivered[0];
  const auto& healthy_samples = delivered[1];
  int timeouts = 0;
  for (const Delivered& d : frozen_samples) {
    const Sample& s = d.sample;
    if (s.status == Status::up) continue;
    EXPECT_EQ(s.error, ErrorClass::timeout) << s.detail;
    // A timeout's latency is the time the attempt really took: never less than the
    // timeout (2 ms for libuv's whole-millisecond, possibly coarse, loop clock) and never more than
    // the wall time from its send to its delivery (+2 ms: two millisecond readings), not a copy of
    // the configured 500 ms.
    EXPECT_GE(s.latency_us, 498'000) << "a timeout stores its real elapsed time";
    EXPECT_LE(s.latency_us, (d.arrived_ms - s.sent_ms + 2) * 1000)
        << "a timeout stores its real elapsed time";
    EXPECT_EQ(s.detail, "no answer within 500ms");
    // Reported by its deadline, not when the server thaws (the freeze lasts 3 s):
    // 400 ms beyond the timeout is slack for a loaded machine's late timers.
    EXPECT_LE(d.arrived_ms - s.sent_ms, 500 + 400) << "reported within its timeout";
    EXPECT_GE(s.sent_ms, frozen_from_ms - 500) << "down only around the freeze";
    EXPECT_LE(s.sent_ms, thawed_at_ms);
    ++timeouts;
  }
  EXPECT_GE(timeouts, 20) << "about 30 attempts fall into the 3 s freeze";
  ASSERT_GE(frozen_samples.size(), 5U);
  for (size_t i = frozen_samples.size() - 5; i < frozen_samples.size(); ++i) {
    EXPECT_EQ(frozen_samples[i].sample.status, Status::up)
        << "recovered after SIGCONT: " << frozen_samples[i].sample.detail;
  }

  ASSERT_GE(healthy_samples.size(), 50U);
  int64_t largest_send_gap = 0;
  int64_t largest_arrival_gap = 0;
  for (size_t i = 0; i < healthy_samples.size(); ++i) {
    EXPECT_EQ(healthy_samples[i].sample.status, Status::up) << healthy_samples[i].sample.detail;
    if (i == 0) continue;
    largest_send_gap = std::max(largest_send_gap, healthy_samples[i].sample.sent_ms -
                                                      healthy_samples[i - 1].sample.sent_ms);
    largest_arrival_gap = std::max(
        largest_arrival_gap, healthy_samples[i].arrived_ms - healthy_samples[i - 1].arrived_ms);
  }
  // Had the frozen probe held the loop, the healthy one would wait for its 500 ms
  // timeout at least; 400 ms (four intervals) is below that and leaves 300 ms for
  // a loaded 2-core machine running the loop late.
  EXPECT_LT(largest_send_gap, 400);
  EXPECT_LT(largest_arrival_gap, 400);
  std::printf(
      "[ timings  ] frozen probe: %d timeouts of %zu samples; healthy probe: %zu samples, largest "
      "gap "
      "between sends %lld ms, between arrivals %lld ms\n",
      timeouts, frozen_samples.size(), healthy_samples.size(),
      static_cast<long long>(largest_send_gap), static_cast<long long>(largest_arrival_gap));
}

TEST(RedisProbe, KilledServerIsRefusedThenTheSameProbeReconnects) {
  RedisServer server;
  ProbeConfig config = redis_probe(server.port(), Mode::ping, 500);
  int64_t kill_began_ms = 0;
  int64_t kill_ended_ms = 0;
  int64_t restart_began_ms = 0;
  int64_t restart_ended_ms = 0;
  auto delivered = run_for({config}, 3000,
                           {{600,
                             [&] {
                               kill_began_ms = wall_now_ms();
                               server.stop();
                               kill_ended_ms = wall_now_ms();
                             }},
                            {1800, [&] {
                               restart_began_ms = wall_now_ms();
                               server.start();
                               restart_ended_ms = wall_now_ms();
                             }}});
  const auto& samples = delivered[0];
  int refused = 0;
  int up_after_restart = 0;
  for (const Delivered& d : samples) {
    const Sample& s = d.sample;
    if (s.sent_ms < kill_began_ms - 5) {
      EXPECT_EQ(s.status, Status::up) << s.detail;
    } else if (s.sent_ms > kill_ended_ms + 5 && s.sent_ms < restart_began_ms - 5) {
      EXPECT_EQ(s.status, Status::down);
      EXPECT_EQ(s.error, ErrorClass::refused) << s.detail;
      refused += s.error == ErrorClass::refused;
    } else if (s.sent_ms > restart_ended_ms + 5) {
      EXPECT_EQ(s.status, Status::up) << s.detail;
      up_after_restart += s.status == Status::up;
    }
  }
  EXPECT_GE(refused, 8);
  EXPECT_GE(up_after_restart, 8);
  ASSERT_FALSE(samples.empty());
  EXPECT_EQ(samples.back().sample.status, Status::up);
}

TEST(RedisProbe, DestroyedOrCancelledWithAttemptsInFlightNeverCallsDone) {
  RedisServer server;
  server.freeze();
  ProbeConfig config = redis_probe(server.port(), Mode::sidekiq);
  {
    ProbeRuntime runtime({config});
    Probe& probe = *runtime.probes[0];
    int calls = 0;
    auto count = [&](const ProbeResult&) { ++calls; };
    probe.start(1, count);
    probe.start(2, count);
    probe.cancel(2);  // while still resolving
    probe.cancel(7);  // unknown: ignored
    Timer pause(runtime.loop.get(), [&] { runtime.loop.stop(); });
    pause.start(200);
    runtime.loop.run();  // attempt 1 is now connected and waiting on the frozen server
    probe.start(3, count);
    probe.start(4, count);
    probe.cancel(1);         // while waiting for replies
    runtime.probes.clear();  // attempt 3 and 4 still resolving or connecting
    EXPECT_EQ(calls, 0);
  }
  server.thaw();
}

// --- sidekiq -------------------------------------------------------------------

std::string job_seconds(double enqueued_s) {
  return fmt::format(R"({{"class":"X","jid":"abc","enqueued_at":{:.3f}}})", enqueued_s);
}
std::string job_milliseconds(int64_t enqueued_ms) {
  return fmt::format(R"({{"class":"X","jid":"abc","created_at":{0},"enqueued_at":{0}}})",
                     enqueued_ms);
}

TEST(RedisProbe, SidekiqQueueLatencyAndHeartbeat) {
  RedisServer server;
  using Commands = std::vector<std::vector<std::string>>;
  // Commands built at run time: every timestamp is relative to now.
  auto beat = [](const std::string& key, double age_s) {
    return Commands{
        {"SADD", key.substr(0, key.find("host:")) + "processes", key.substr(key.find("host:"))},
        {"HSET", key, "beat",
         fmt::format("{:.3f}", static_cast<double>(wall_now_ms()) / 1000.0 - age_s)}};
  };
  auto now_s = [] { return static_cast<double>(wall_now_ms()) / 1000.0; };
  struct Case {
    std::string name;
    std::function<Commands()> setup;
    std::string key_namespace;
    Status status;
    ErrorClass error;
    std::string detail;  // a regular expression the detail must match (regex_search)
  };
  auto join = [](std::vector<Commands> parts) {
    Commands all;
    for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
    return all;
  };
  const std::vector<Case> cases{
      {"empty queues and a fresh beat", [&] { return beat("host:1:abc", 1); }, "", Status::up,
       ErrorClass::none, R"(^1 process, worst queue default 0\.0s$)"},
      {"fresh jobs, float seconds (Sidekiq 7)",
       [&] {
         return join({beat("host:1:abc", 2),
                      {{"LPUSH", "queue:default", job_seconds(now_s() - 0.1)},
                       {"LPUSH", "queue:push", job_seconds(now_s() - 0.3)}}});
       },
       "", Status::up, ErrorClass::none, R"(^1 process, worst queue push 0\.\ds$)"},
      {"fresh jobs, integer milliseconds (Sidekiq 8)",
       [&] {
         return join({beat("host:1:abc", 2),
                      {{"LPUSH", "queue:mailers", job_milliseconds(wall_now_ms() - 300)},
                       {"LPUSH", "queue:pull", job_milliseconds(wall_now_ms() - 100)}}});
       },
       "", Status::up, ErrorClass::none, R"(^1 process, worst queue mailers 0\.\ds$)"},
      {"an old job, float seconds",
       [&] {
         return join(
             {beat("host:1:abc", 1), {{"LPUSH", "queue:push", job_seconds(now_s() - 95.2)}}});
       },
       "", Status::down, ErrorClass::lag, R"(^queue push latency 95\.\ds > 60s$)"},
      {"an old job, integer milliseconds",
       [&] {
         return join({beat("host:1:abc", 1),
                      {{"LPUSH", "queue:ingress", job_milliseconds(wall_now_ms() - 95'200)}}});
       },
       "", Status::down, ErrorClass::lag, R"(^queue ingress latency 95\.\ds > 60s$)"},
      {"only the oldest job (the right end) counts",
       [&] {
         return join({beat("host:1:abc", 1),
                      {{"LPUSH", "queue:default", job_seconds(now_s() - 120)},
                       {"LPUSH", "queue:default", job_seconds(now_s())}}});
       },
       "", Status::down, ErrorClass::lag, R"(^queue default latency 120\.\ds > 60s$)"},
      {"a newer job behind a fresh one does not count",
       [&] {
         return join({beat("host:1:abc", 1),
                      {{"LPUSH", "queue:default", job_seconds(now_s() - 0.2)},
                       {"LPUSH", "queue:default", job_seconds(now_s() - 500)}}});
       },
       "", Status::up, ErrorClass::none, R"(^1 process, worst queue default 0\.\ds$)"},
      {"stale heartbeat", [&] { return beat("host:1:abc", 312); }, "", Status::down,
       ErrorClass::lag, R"(^no Sidekiq process beat within 60s \(newest 312s ago\)$)"},
      {"no processes",
       [&] {
         return Commands{{"LPUSH", "queue:default", job_seconds(now_s())}};
       },
       "", Status::down, ErrorClass::lag,
       R"(^no Sidekiq process beat within 60s \(no processes\)$)"},
      {"a process whose hash expired",
       [&] {
         return Commands{{"SADD", "processes", "host:9:gone"}};
       },
       "", Status::down, ErrorClass::lag,
       R"(^no Sidekiq process beat within 60s \(no beat recorded\)$)"},
      {"one stale and one fresh process",
       [&] {
         return join({beat("host:1:abc", 312), beat("host:2:def", 3)});
       },
       "", Status::up, ErrorClass::none, R"(^2 processes, worst queue default 0\.0s$)"},
      {"old job and no beat: both named",
       [&] {
         return Commands{{"LPUSH", "queue:scheduler", job_seconds(now_s() - 70)}};
       },
       "", Status::down, ErrorClass::lag,
       R"(^queue scheduler latency 70\.\ds > 60s; no Sidekiq process beat within 60s \(no processes\)$)"},
      {"malformed JSON",
       [&] {
         return join({beat("host:1:abc", 1), {{"LPUSH", "queue:mailers", "{not json"}}});
       },
       "", Status::down, ErrorClass::protocol, R"(^queue mailers: the oldest job is not JSON$)"},
      {"job without enqueued_at",
       [&] {
         return join({beat("host:1:abc", 1), {{"LPUSH", "queue:default", R"({"class":"X"})"}}});
       },
       "", Status::down, ErrorClass::protocol,
       R"(^queue default: the oldest job has no enqueued_at$)"},
      {"a queue key of the wrong type",
       [&] {
         return join({beat("host:1:abc", 1), {{"SET", "queue:default", "x"}}});
       },
       "", Status::down, ErrorClass::query, R"(^LINDEX queue:default: WRONGTYPE )"},
      {"namespace: old job",
       [&] {
         return join({beat("mastodon:host:1:abc", 1),
                      {{"LPUSH", "mastodon:queue:default", job_seconds(now_s() - 95.2)}}});
       },
       "mastodon", Status::down, ErrorClass::lag, R"(^queue default latency 95\.\ds > 60s$)"},
      {"namespace: fresh",
       [&] {
         return join({beat("mastodon:host:1:abc", 1),
                      {{"LPUSH", "mastodon:queue:push", job_seconds(now_s() - 0.4)}}});
       },
       "mastodon", Status::up, ErrorClass::none, R"(^1 process, worst queue push 0\.\ds$)"},
      {"namespace: keys without it are not seen",
       [&] {
         return join(
             {beat("host:1:abc", 1), {{"LPUSH", "queue:default", job_seconds(now_s() - 95)}}});
       },
       "mastodon", Status::down, ErrorClass::lag, R"(\(no processes\)$)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    server.flush_all();
    for (const auto& command : c.setup()) server.command(command);
    ProbeConfig config = redis_probe(server.port(), Mode::sidekiq);
    settings_of(config).key_namespace = c.key_namespace;
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_TRUE(std::regex_search(sample.detail, std::regex(c.detail))) << sample.detail;
  }
}

TEST(RedisProbe, SidekiqWithPasswordNamespaceAndLimits) {
  RedisServer server(kServerPassword);
  const double now_s = static_cast<double>(wall_now_ms()) / 1000.0;
  server.command({"SADD", "ns:processes", "host:1:abc"});
  server.command({"HSET", "ns:host:1:abc", "beat", fmt::format("{:.3f}", now_s - 5)});
  server.command({"LPUSH", "ns:queue:critical", job_seconds(now_s - 2)});
  ProbeConfig config = redis_probe(server.port(), Mode::sidekiq);
  auto& redis = settings_of(config);
  redis.password = kServerPassword;
  redis.key_namespace = "ns";
  redis.queues = {"critical"};
  Sample sample = probe_once(config);
  EXPECT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_NE(sample.detail.find("worst queue critical 2."), std::string::npos) << sample.detail;

  redis.max_latency_ms = 1500;
  redis.max_heartbeat_age_ms = 4000;
  sample = probe_once(config);
  EXPECT_EQ(sample.error, ErrorClass::lag) << sample.detail;
  // Latencies keep growing while the test runs: match the format, not the tenths.
  EXPECT_TRUE(std::regex_match(
      sample.detail,
      std::regex(
          R"(queue critical latency 2\.\ds > 1\.5s; no Sidekiq process beat within 4s \(newest 5s ago\))")))
      << sample.detail;
  EXPECT_FALSE(has_password(sample, kServerPassword));
}

}  // namespace
}  // namespace blip
