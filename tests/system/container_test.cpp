// blip's image as operators run it: built from the Dockerfile with podman
// (scripts/container), run read-only with every capability dropped against
// the test stack's nginx, Postgres and Redis on loopback, healthy, watching a
// real freeze, stopped with SIGTERM, its samples in the volume. And the
// compose override checked beside a stand-in for Mastodon's compose file.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/redis_server.hpp"
#include "support/servers.hpp"
#include "support/transcript.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::TempDir;
using test::wait_until;

const std::string kSource = BLIP_SOURCE_DIR;
const std::string kContainer = kSource + "/scripts/container";
const std::string kImage = "localhost/blip:test";

int podman(const std::vector<std::string>& args, std::string* output = nullptr,
           int timeout_ms = 120'000) {
  std::vector<std::string> argv{kContainer, "podman"};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_command(argv, output, timeout_ms);
}

std::string component_status(const json& summary, const std::string& name) {
  for (const json& component : summary["components"]) {
    if (component["name"] == name) return component["status"];
  }
  return "(missing)";
}

// The ${NAME} (or ${NAME:-...}) variables a directory of probe files reads, outside comment lines.
std::set<std::string> variables_read(const std::string& directory) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    std::istringstream text(test::read_file(entry.path().string()));
    for (std::string line; std::getline(text, line);) {
      if (line.find_first_not_of(' ') != std::string::npos &&
          line[line.find_first_not_of(' ')] == '#')
        continue;
      for (size_t at = line.find("${"); at != std::string::npos; at = line.find("${", at + 2)) {
        const size_t end = line.find_first_of(":}", at + 2);
        if (end != std::string::npos) names.insert(line.substr(at + 2, end - at - 2));
      }
    }
  }
  return names;
}

// A published port as "host_ip:published:target", from compose's short or long form.
std::string port_text(const json& port) {
  if (port.is_string()) {
    const std::string text = port.get<std::string>();
    return text.substr(0, text.find('/'));
  }
  return fmt::format("{}:{}:{}", port.value("host_ip", ""),
                     port.value("published", json("")).dump(), port.value("target", 0));
}

TEST(Container, ComposeOverrideFitsBesideMastodonsComposeFile) {
  TempDir project;
  std::filesystem::copy_file(kSource + "/tests/testdata/mastodon/docker-compose.yml",
                             project.file("docker-compose.yml"));
  std::filesystem::copy(kSource + "/deploy", project.file("deploy"),
                        std::filesystem::copy_options::recursive);
  // Mastodon's secrets beside what blip needs: only the latter may reach blip.
  project.write(".env.production",
                "LOCAL_DOMAIN=social.example\nDB_USER=mastodon\nDB_PASS=dbsecret\nREDIS_PASSWORD="
                "redissecret\nBLIP_DUMP_TOKEN=0123456789abcdef0123456789abcdef\n"
                "SECRET_KEY_BASE=secret-key-base-value\nOTP_SECRET=otp-secret-value\n"
                "VAPID_PRIVATE_KEY=vapid-private-value\nSMTP_PASSWORD=smtp-password-value\n"
                "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY=ar-primary-key-value\n");
  const std::string compose =
      "cd " + project.path() + " && docker-compose -f docker-compose.yml -f deploy/compose.yaml";
  std::string output;
  ASSERT_EQ(
      test::run_command(
          {"sh", "-c",
           compose + " --env-file .env.production config | python3 -c "
                     "'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'"},
          &output),
      0)
      << output;
  const json rendered = json::parse(output.substr(output.find('{')));
  ASSERT_TRUE(rendered["services"].contains("blip")) << rendered.dump(2);
  const json& blip = rendered["services"]["blip"];
  EXPECT_FALSE(blip.contains("env_file")) << "an env_file would pass every Mastodon secret";

  // The environment: exactly what deploy/probes.d reads, and blip's own settings.
  std::set<std::string> expected = variables_read(kSource + "/deploy/probes.d");
  ASSERT_TRUE(expected.contains("DB_PASS") && expected.contains("LOCAL_DOMAIN"))
      << "read the probe files";
  for (const char* own : {"BLIP_LOG_FORMAT", "BLIP_VANTAGE", "BLIP_ALLOWED_HOSTS",
                          "BLIP_PUBLIC_LISTEN", "BLIP_TRUSTED_PROXY"}) {
    expected.insert(own);
  }
  std::set<std::string> passed;
  for (const auto& [name, value] : blip["environment"].items()) passed.insert(name);
  EXPECT_EQ(passed, expected);
  const json& environment = blip["environment"];
  EXPECT_EQ(environment.value("DB_PASS", ""), "dbsecret") << "read from .env.production";
  EXPECT_EQ(environment.value("LOCAL_DOMAIN", ""), "social.example");
  EXPECT_EQ(environment.value("BLIP_ALLOWED_HOSTS", ""), "blip")
      << "Prometheus and blip exec use blip:9185";
  EXPECT_EQ(environment.value("BLIP_PUBLIC_LISTEN", ""), "0.0.0.0:9186");
  EXPECT_FALSE(environment.value("BLIP_VANTAGE", "").empty());
  for (const char* secret :
       {"SECRET_KEY_BASE", "OTP_SECRET", "VAPID_PRIVATE_KEY", "SMTP_PASSWORD",
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY", "secret-key-base-value", "otp-secret-value",
        "vapid-private-value", "smtp-password-value", "ar-primary-key-value"}) {
    EXPECT_EQ(blip.dump().find(secret), std::string::npos) << secret;
  }
  EXPECT_NE(rendered["services"]["web"].dump().find("secret-key-base-value"), std::string::npos)
      << "Mastodon's own services still get theirs (the stand-in's env_file was read)";

  // Published: the public face on the host's loopback, nothing else (the private face stays
  // internal).
  ASSERT_TRUE(blip["ports"].is_array()) << blip.dump(2);
  std::vector<std::string> ports;
  for (const json& port : blip["ports"]) ports.push_back(port_text(port));
  EXPECT_EQ(ports, std::vector<std::string>{"127.0.0.1:9186:9186"});

  // The trusted proxy is blip_edge's subnet (its gateway is where the host's connections come
  // from), a network only blip is on.
  ASSERT_TRUE(blip["networks"].contains("internal_network") &&
              blip["networks"].contains("blip_edge"))
      << blip.dump(2);
  EXPECT_EQ(blip["networks"].size(), 2u);
  ASSERT_TRUE(rendered["networks"].contains("blip_edge"));
  EXPECT_EQ(rendered["networks"]["blip_edge"]["ipam"]["config"][0].value("subnet", "(none)"),
            environment.value("BLIP_TRUSTED_PROXY", ""));
  for (const auto& [name, service] : rendered["services"].items()) {
    if (name != "blip") {
      EXPECT_FALSE(service["networks"].contains("blip_edge")) << name;
    }
  }
  EXPECT_TRUE(rendered["networks"]["internal_network"].value("internal", false))
      << "Mastodon's stays internal";
  EXPECT_EQ(blip["read_only"], true);
  EXPECT_EQ(blip["cap_drop"], json::array({"ALL"}));
  for (const char* expected_text : {"/etc/blip/probes.d:ro", "blip-data:/var/lib/blip"}) {
    EXPECT_NE(blip["volumes"].dump().find(expected_text), std::string::npos)
        << expected_text << " in\n"
        << blip.dump(2);
  }

  // Without --env-file compose stops and says what is missing.
  EXPECT_NE(test::run_command({"sh", "-c", compose + " config"}, &output), 0);
  EXPECT_NE(output.find("--env-file .env.production"), std::string::npos) << output;

  // Nor without the dump job's token: compose says how to make one.
  project.write(".env.no-token", "LOCAL_DOMAIN=social.example\n");
  EXPECT_NE(test::run_command({"sh", "-c", compose + " --env-file .env.no-token config"}, &output),
            0);
  EXPECT_NE(output.find("set BLIP_DUMP_TOKEN in .env.production (openssl rand -hex 16)"),
            std::string::npos)
      << output;

  // The probes it mounts are valid with just the variables compose passes.
  std::vector<std::string> check{"env", "-i"};
  for (const auto& [name, value] : environment.items())
    check.push_back(name + "=" + value.get<std::string>());
  for (const std::string& part : {std::string(BLIP_BINARY), std::string("check"), std::string("-c"),
                                  kSource + "/deploy/probes.d"}) {
    check.push_back(part);
  }
  std::string result;
  EXPECT_EQ(test::run_command(check, &result), 0) << result;
}

class ContainerImage : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string output;
    if (test::run_command({kContainer, "podman", "version"}, &output, 600'000) != 0) {
      skip_reason_ = "podman cannot be installed or run here: " + output;
      return;
    }
    const auto started = std::chrono::steady_clock::now();
    build_status_ = test::run_command({kContainer, "build", kImage}, &build_log_, 40 * 60'000);
    build_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_EQ(build_status_, 0) << build_log_.substr(
        build_log_.size() > 8000 ? build_log_.size() - 8000 : 0);
  }
  static inline std::string skip_reason_;
  static inline int build_status_ = -1;
  static inline std::string build_log_;
  static inline double build_seconds_ = 0;
};

TEST_F(ContainerImage, IsSmallNonRootAndLabelled) {
  std::string inspect;
  ASSERT_EQ(podman({"image", "inspect", kImage}, &inspect), 0) << inspect;
  const json image = json::parse(inspect)[0];
  const json& config = image["Config"];
  EXPECT_EQ(config["User"], "10001:10001");
  EXPECT_EQ(config["Entrypoint"], json::array({"blip"}));
  EXPECT_EQ(config["Cmd"], json::array({"run", "-c", "/etc/blip/probes.d", "--db",
                                        "/var/lib/blip/blip.db", "--listen", "0.0.0.0:9185"}));
  EXPECT_TRUE(config["Volumes"].contains("/var/lib/blip"));
  EXPECT_TRUE(config["ExposedPorts"].contains("9185/tcp"));
  EXPECT_TRUE(config["ExposedPorts"].contains("9186/tcp"));
  for (const char* variable : {"BLIP_PUBLIC_LISTEN=0.0.0.0:9186", "BLIP_ALLOWED_HOSTS=blip"}) {
    EXPECT_NE(std::find(config["Env"].begin(), config["Env"].end(), variable), config["Env"].end())
        << variable << " in " << config["Env"];
  }
  EXPECT_EQ(config["StopSignal"], "SIGTERM");
  ASSERT_TRUE(image.contains("Healthcheck"))
      << "built with --format docker, which keeps HEALTHCHECK";
  EXPECT_EQ(image["Healthcheck"]["Test"], json::array({"CMD", "blip", "health"}))
      << image["Healthcheck"];
  ASSERT_TRUE(config.contains("Labels"));
  const json& labels = config["Labels"];
  for (const char* label : {"org.opencontainers.image.source", "org.opencontainers.image.version",
                            "org.opencontainers.image.licenses"}) {
    EXPECT_TRUE(labels.contains(label)) << label;
  }
  std::string version;
  ASSERT_EQ(podman({"run", "--rm", "--no-healthcheck", "--network", "none", kImage, "--version"},
                   &version),
            0)
      << version;
  EXPECT_EQ(version, labels["org.opencontainers.image.version"].get<std::string>() + "\n");
  // Only the runtime: no compiler, no headers, no package lists.
  std::string listing;
  EXPECT_EQ(podman({"run", "--rm", "--no-healthcheck", "--network", "none", "--entrypoint", "sh",
                    kImage, "-c",
                    "ls /usr/bin/c++ /usr/bin/gcc /usr/include/uv.h /var/lib/apt/lists/*_Packages "
                    "2>/dev/null | wc -l"},
                   &listing),
            0);
  EXPECT_EQ(listing, "0\n");
  const double megabytes = image["Size"].get<double>() / 1e6;
  EXPECT_LT(megabytes, 250.0);
  std::cerr << fmt::format("image: {:.1f} MB, built in {:.0f} s\n", megabytes, build_seconds_);
}

TEST_F(ContainerImage, ProbesTheStackReadOnlyAndStopsCleanlyOnSigterm) {
  test::NginxServer nginx;
  test::PostgresServer postgres;
  test::RedisServer redis("redis-secret");
  TempDir dir;
  const int feed_port = test::free_port();
  dir.write("probes.d/stack.toml",
            fmt::format(R"toml([page]
name = "container test"

[[probe]]
name = "web"
type = "http"
url = "{0}"
interval = "250ms"
timeout = "300ms"
tags = ["web"]

# By name: resolved inside the container (its nsswitch.conf and /etc/hosts).
[[probe]]
name = "web-by-name"
type = "http"
url = "http://localhost:{3}/health"
interval = "500ms"
tags = ["web"]

[[probe]]
name = "db-read"
type = "postgres"
dsn = "{1}"
password = "${{DB_PASS}}"
interval = "500ms"
tags = ["db"]

[[probe]]
name = "db-write"
type = "postgres"
dsn = "{1}"
password = "${{DB_PASS}}"
mode = "write"
interval = "500ms"
tags = ["db"]

[[probe]]
name = "redis"
type = "redis"
address = "127.0.0.1:{2}"
password = "${{REDIS_PASSWORD}}"
interval = "500ms"
tags = ["redis"]
)toml",
                        nginx.url("/health"), postgres.dsn("blip"), redis.port(), nginx.port()));
  std::filesystem::create_directories(dir.file("data"));
  ASSERT_EQ(chown(dir.file("data").c_str(), 10001, 10001), 0) << "the image's user owns its volume";
  const std::string name = fmt::format("blip-test-{}", getpid());
  std::string output;
  podman({"rm", "-f", name}, &output);
  // The image's own CMD, but the feed on a free port of the host's network (BLIP_LISTEN also tells
  // the health check), and the public face too: the image's 0.0.0.0:9186 would take the host's
  // port.
  ASSERT_EQ(podman({"run",
                    "-d",
                    "--name",
                    name,
                    "--read-only",
                    "--cap-drop=ALL",
                    "--network",
                    "host",
                    "--security-opt",
                    "no-new-privileges",
                    "-v",
                    dir.file("data") + ":/var/lib/blip",
                    "-v",
                    dir.file("probes.d") + ":/etc/blip/probes.d:ro",
                    "-e",
                    fmt::format("BLIP_LISTEN=127.0.0.1:{}", feed_port),
                    "-e",
                    fmt::format("BLIP_PUBLIC_LISTEN=127.0.0.1:{}", test::free_port()),
                    "-e",
                    "DB_PASS=blip-secret",
                    "-e",
                    "REDIS_PASSWORD=redis-secret",
                    kImage,
                    "run",
                    "-c",
                    "/etc/blip/probes.d",
                    "--db",
                    "/var/lib/blip/blip.db"},
                   &output),
            0)
      << output;
  struct Remove {
    std::string name;
    ~Remove() { podman({"rm", "-f", name}); }
  } remove{name};
  const auto started = std::chrono::steady_clock::now();
  const bool healthy = wait_until(
      [&] {
        return podman({"healthcheck", "run", name}) == 0;
      },
      60s, 250ms);
  std::string logs;
  podman({"logs", name}, &logs);
  ASSERT_TRUE(healthy) << logs;
  std::cerr << fmt::format(
      "healthy after {:.2f} s\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

  // What the running process holds: not root, no capability in any set, and a root
  // filesystem it cannot write to (only its volume).
  std::string status;
  ASSERT_EQ(podman({"exec", name, "cat", "/proc/1/status"}, &status), 0) << status;
  EXPECT_NE(status.find("\nUid:\t10001\t10001\t10001\t10001\n"), std::string::npos) << status;
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_NE(status.find(fmt::format("\n{}:\t0000000000000000\n", set)), std::string::npos)
        << set << "\n"
        << status;
  }
  EXPECT_NE(status.find("\nNoNewPrivs:\t1\n"), std::string::npos) << status;
  for (const char* path : {"/x", "/usr/bin/x", "/etc/blip/x", "/var/lib/x"}) {
    std::string write_error;
    EXPECT_NE(podman({"exec", name, "sh", "-c", fmt::format("echo x > {}", path)}, &write_error), 0)
        << path;
    EXPECT_NE(write_error.find("Read-only file system"), std::string::npos)
        << path << ": " << write_error;
  }
  EXPECT_EQ(podman({"exec", name, "sh", "-c",
                    "echo x > /var/lib/blip/probe-write && rm /var/lib/blip/probe-write"}),
            0)
      << "the volume is writable";

  const std::string summary_url = fmt::format("http://127.0.0.1:{}/api/v2/summary.json", feed_port);
  json summary;
  auto all_operational = [&] {
    auto response = test::http_request(summary_url);
    if (response.status != 200) return false;
    summary = json::parse(response.body);
    for (const char* probe : {"web", "web-by-name", "db-read", "db-write", "redis"}) {
      if (component_status(summary, probe) != "operational") return false;
    }
    return std::all_of(summary["blip"]["probes"].begin(), summary["blip"]["probes"].end(),
                       [](const json& probe) { return probe.value("last_result", "") == "up"; });
  };
  ASSERT_TRUE(wait_until(all_operational, 15s, 200ms)) << summary.dump(2) << logs;
  EXPECT_EQ(summary["page"]["name"], "container test");
  for (const char* secret : {"blip-secret", "redis-secret"}) {
    EXPECT_EQ(summary.dump().find(secret), std::string::npos) << secret;
  }

  // A real freeze, seen from outside through the feed.
  nginx.freeze();
  EXPECT_TRUE(wait_until(
      [&] {
        return component_status(json::parse(test::http_request(summary_url).body), "web") ==
               "major_outage";
      },
      5s, 100ms));
  std::this_thread::sleep_for(3s);
  nginx.thaw();
  EXPECT_TRUE(wait_until(
      [&] {
        return component_status(json::parse(test::http_request(summary_url).body), "web") ==
               "operational";
      },
      5s, 100ms));

  // podman stop sends the image's STOPSIGNAL, SIGTERM, to blip as PID 1.
  const auto stopping = std::chrono::steady_clock::now();
  const int64_t stopping_ms = wall_now_ms();
  ASSERT_EQ(podman({"stop", "-t", "10", name}, &output), 0) << output;
  const double stop_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count();
  EXPECT_LT(stop_seconds, 5.0) << "well inside compose's 10 s";
  std::string exit_code;
  ASSERT_EQ(podman({"inspect", "--format", "{{.State.ExitCode}}", name}, &exit_code), 0);
  podman({"logs", name}, &logs);
  EXPECT_EQ(exit_code, "0\n") << logs;
  EXPECT_NE(logs.find("run: stopped"), std::string::npos) << logs;
  test::keep_transcript("blip output (podman logs)", logs);

  // From the host: the volume holds the samples and the outage.
  Store store(dir.file("data/blip.db"), Store::Mode::read_only);
  const auto samples = store.samples("web", 0, INT64_MAX);
  ASSERT_GE(samples.size(), 20U);
  EXPECT_GE(samples.back().sent_ms, stopping_ms - 400)
      << "the samples up to the signal were flushed";
  const auto outages = store.outages(0, INT64_MAX, "web");
  ASSERT_EQ(outages.size(), 1U) << logs;
  EXPECT_EQ(outages[0].end_reason, "recovered");
  EXPECT_EQ(outages[0].error, ErrorClass::timeout);
  EXPECT_EQ(store.outages(0, INT64_MAX, "web-by-name").size(), 1U)
      << "the same nginx, reached by name";
  for (const char* probe : {"db-read", "db-write", "redis"}) {
    EXPECT_GE(store.samples(probe, 0, INT64_MAX).size(), 8U) << probe;
    EXPECT_TRUE(store.outages(0, INT64_MAX, probe).empty()) << probe;
  }
  std::cerr << fmt::format("stopped in {:.2f} s\n", stop_seconds);
}

}  // namespace
}  // namespace blip
