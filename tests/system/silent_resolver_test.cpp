// Names that cannot stall probing: blip in a private mount namespace whose
// resolv.conf names a loopback DNS server that never answers. HTTP, Redis and
// Postgres probes by name go down as `dns` (or `timeout`); the probes by
// address next to them keep every sample on schedule and the loop never stalls.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

// A UDP socket on a loopback address, port 53, that reads nothing and answers nothing.
class SilentDnsServer {
 public:
  explicit SilentDnsServer(const std::string& address) : address_(address) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in bound{};
    bound.sin_family = AF_INET;
    bound.sin_port = htons(53);
    inet_pton(AF_INET, address.c_str(), &bound.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&bound), sizeof bound) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~SilentDnsServer() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& address() const { return address_; }

 private:
  std::string address_;
  int fd_ = -1;
};

// blip with its own /etc/resolv.conf (a bind mount inside `unshare -m`, private to it).
std::vector<std::string> with_resolv_conf(const std::string& path) {
  return {"unshare", "-m", "sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", path};
}

TEST(Dns, ASilentResolverDownsOnlyTheProbesByName) {
  SilentDnsServer dns("127.0.0.77");
  if (!dns.ok()) GTEST_SKIP() << "cannot bind 127.0.0.77:53 (needs root)";
  test::NginxServer nginx;
  test::RedisServer redis;
  test::PostgresServer postgres;
  test::TempDir dir;
  dir.write("resolv.conf", "nameserver 127.0.0.77\noptions timeout:5 attempts:2\n");
  const std::string nginx_port = std::to_string(nginx.port());
  const std::string redis_port = std::to_string(redis.port());
  const std::string pg_port = std::to_string(postgres.port());
  std::string config;
  auto probe = [&](const std::string& name, const std::string& type, const std::string& target) {
    config += fmt::format(
        "[[probe]]\nname = \"{}\"\ntype = \"{}\"\n{}\ninterval = \"100ms\"\ntimeout = \"1s\"\n\n",
        name, type, target);
  };
  probe("web-by-name", "http", "url = \"http://web.blip-test:" + nginx_port + "/health\"");
  // A redirect's host is looked up like the first one: by blip, inside the deadline (curl's own
  // lookup would wait out the resolver's 5 s and end every attempt as a timeout).
  const int redirecting_port = test::free_port();
  test::CustomNginxServer redirecting({redirecting_port}, [&](const std::string&) {
    return fmt::format(
        "  server {{ listen 127.0.0.1:{}; location / {{ return 302 http://web.blip-test:{}/health; "
        "}}"
        " }}\n",
        redirecting_port, nginx_port);
  });
  probe("redirect-to-name", "http",
        fmt::format("url = \"http://127.0.0.1:{}/\"\nfollow_redirects = true", redirecting_port));
  probe("redis-by-name", "redis", "address = \"redis.blip-test:" + redis_port + "\"");
  probe("db-by-name", "postgres",
        "dsn = \"host=db.blip-test port=" + pg_port + " dbname=postgres user=postgres\"");
  // A host list: the dead name is left out once its lookup gives up, the address still serves.
  config += fmt::format(
      "[[probe]]\nname = \"db-list\"\ntype = \"postgres\"\ndsn = \"host=db.blip-test,127.0.0.1 "
      "port={0},{0} "
      "dbname=postgres user=postgres\"\ninterval = \"1s\"\ntimeout = \"2s\"\n\n",
      pg_port);
  probe("web", "http", "url = \"http://127.0.0.1:" + nginx_port + "/health\"");
  probe("redis", "redis", "address = \"127.0.0.1:" + redis_port + "\"");
  probe("db", "postgres",
        "dsn = \"host=127.0.0.1 port=" + pg_port + " dbname=postgres user=postgres\"");
  probe("port", "tcp", "address = \"127.0.0.1:" + nginx_port + "\"");
  test::Daemon blip(dir, config, {}, "", with_resolv_conf(dir.file("resolv.conf")));
  std::this_thread::sleep_for(2s);
  const int64_t from_ms = wall_now_ms();
  std::this_thread::sleep_for(8s);
  const int64_t to_ms = wall_now_ms();
  ASSERT_EQ(blip.stop(), 0) << blip.log();

  Store store(blip.db(), Store::Mode::read_only);
  for (const std::string name :
       {"web-by-name", "redirect-to-name", "redis-by-name", "db-by-name"}) {
    SCOPED_TRACE(name);
    const auto samples = store.samples(name, from_ms, to_ms);
    ASSERT_GE(samples.size(), 10U) << blip.log();
    int dns_downs = 0;
    for (const Sample& sample : samples) {
      ASSERT_EQ(sample.status, Status::down) << sample.detail;
      ASSERT_TRUE(sample.error == ErrorClass::dns || sample.error == ErrorClass::timeout)
          << sample.detail;
      if (sample.error == ErrorClass::dns) {
        ++dns_downs;
        EXPECT_NE(sample.detail.find(".blip-test"), std::string::npos)
            << "the detail names the host: " << sample.detail;
      }
    }
    EXPECT_GT(dns_downs, 0) << "a lookup gives up inside the probe's deadline; the first: "
                            << samples.front().detail;
  }
  for (const std::string name : {"web", "redis", "db", "port"}) {
    SCOPED_TRACE(name);
    const auto samples = store.samples(name, from_ms, to_ms);
    EXPECT_GE(samples.size(), 78U) << "every 100 ms for 8 s";
    for (size_t i = 0; i < samples.size(); ++i) {
      ASSERT_EQ(samples[i].status, Status::up) << samples[i].detail;
      EXPECT_LT(samples[i].latency_us, 200'000) << "an address never waits for a name";
      if (i > 0) {
        // A lookup that held the loop would hold it for the resolver's 5 s timeout;
        // 400 ms (four intervals) is far under that and over what a loaded 2-core
        // machine delays a send (the 150 ms this had was half an interval of slack).
        EXPECT_LT(samples[i].sent_ms - samples[i - 1].sent_ms, 400)
            << "a gap at " << format_iso8601_ms(samples[i].sent_ms);
      }
    }
  }
  const auto listed = store.samples("db-list", from_ms, to_ms);
  ASSERT_GE(listed.size(), 6U);
  for (const Sample& sample : listed) EXPECT_EQ(sample.status, Status::up) << sample.detail;
  EXPECT_TRUE(store.blind_windows(0, INT64_MAX).empty())
      << "the loop never stalled: " << blip.log();
}

}  // namespace
}  // namespace blip
