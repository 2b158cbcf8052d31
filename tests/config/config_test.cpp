// Tests of the probes.d loader. The error strings are the interface of
// `blip check`, so the invalid-config cases assert them exactly.

#include "blip/config/config.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "blip/cli/commands.hpp"
#include "blip/core/clock.hpp"

namespace blip {
namespace {

const std::string kProbesDir = BLIP_TESTDATA "/probes.d";

std::vector<std::string> error_strings(const LoadedConfig& loaded) {
  std::vector<std::string> out;
  for (const ConfigError& error : loaded.errors) out.push_back(error.to_string());
  return out;
}

// A directory from mkdtemp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "blip-config-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

// Sets an environment variable for the length of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// ---------------------------------------------------------------------------
// Invalid configurations: one fixture directory per case under
// testdata/probes.d, and every error `blip check` would print for it. In the
// expected strings "{dir}" stands for the fixture directory as passed to the
// loader.

struct InvalidCase {
  std::string dir;
  std::vector<std::string> errors;
};

std::string expand_dir(std::string text, const std::string& dir) {
  const std::string placeholder = "{dir}";
  for (size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + dir.size())) {
    text.replace(at, placeholder.size(), dir);
  }
  return text;
}

const InvalidCase kInvalidCases[] = {
    {"invalid-toml-syntax",
     {"{dir}/web.toml:2:12: Error while parsing string: unescaped control characters other than "
      "TAB (U+0009) are explicitly prohibited"}},
    {"invalid-unknown-probe-key",
     {"{dir}/web.toml:5:1: probe \"web\": unknown key \"expect_code\""}},
    {"invalid-unknown-top-level-key",
     {"{dir}/web.toml:1:1: top level (expected [[probe]], [[job]], [[alert]], [[maintenance]], "
      "[[remote_write]] and [[heartbeat]] tables and at most one [page] table): unknown key "
      "\"interval\""}},
    {"invalid-unknown-probe-type",
     {"{dir}/web.toml:3:8: probe \"web\": unknown probe type \"ping\" (expected one of: http, "
      "postgres, redis, tcp)"}},
    {"invalid-reserved-name",
     {"{dir}/web.toml:4:8: the name \"blip\" is taken: alerts about blip itself come under it"}},
    {"invalid-duplicate-name",
     {"{dir}/20-web-again.toml:4:8: duplicate probe name \"web\" (first defined at "
      "{dir}/10-web.toml:1)"}},
    {"invalid-duration",
     {"{dir}/web.toml:5:12: interval: invalid duration \"fast\": expected a number (write whole "
      "numbers with a unit: 250ms, 2s, 5m, 1h, 7d)"}},
    {"invalid-duration-unit",
     {"{dir}/web.toml:5:11: timeout: invalid duration \"5x\": unknown unit \"x\" (write whole "
      "numbers with a unit: 250ms, 2s, 5m, 1h, 7d)"}},
    {"invalid-unset-env",
     {"{dir}/web.toml:4:7: url: environment variable \"BLIP_TEST_SURELY_UNSET_VAR\" is not set"}},
    {"invalid-interval-too-short",
     {"{dir}/web.toml:5:12: interval: 10ms is below the minimum of 50ms"}},
    {"invalid-too-many-in-flight",
     {"{dir}/web.toml:6:11: timeout: 10s at an interval of 50ms allows 200 attempts in flight; at "
      "most 40 "
      "(lower the timeout or raise the interval)"}},
    {"invalid-zero-timeout", {"{dir}/web.toml:5:11: timeout: must be greater than zero"}},
    {"invalid-missing-url", {"{dir}/web.toml:1:1: probe \"web\": missing required key \"url\""}},
    {"invalid-missing-address",
     {"{dir}/db.toml:1:1: probe \"db\": missing required key \"address\""}},
    {"invalid-address-without-port",
     {"{dir}/db.toml:4:11: address: expected host:port, got \"127.0.0.1\""}},
    {"invalid-port-out-of-range",
     {"{dir}/db.toml:4:11: address: expected host:port, got \"127.0.0.1:70000\""}},
    {"invalid-postgres-service",
     {"{dir}/db.toml:4:7: dsn: a service (service= or PGSERVICE) without host= is not supported: "
      "blip "
      "resolves host names itself, so name the host in the dsn"}},
    {"invalid-url-scheme", {"{dir}/web.toml:4:7: url: scheme \"ftp\" is not http or https"}},
    {"invalid-expect-status",
     {"{dir}/web.toml:5:23: expect_status: expected status codes like 200 or ranges like "
      "\"200-299\""}},
    {"invalid-missing-password-file",
     {"{dir}/web.toml:6:17: password_file: cannot read \"/nonexistent/blip-test/web-password\": No "
      "such file or directory"}},
    {"invalid-missing-ca-file",
     {"{dir}/web.toml:5:11: ca_file: cannot read \"certs/missing-private-ca.pem\": No such file or "
      "directory"}},
    {"invalid-negative-min-cert-days",
     {"{dir}/web.toml:5:17: min_cert_days: must be 0 (no warning) or more days"}},
    {"invalid-confirm-zero", {"{dir}/web.toml:5:11: confirm: must be between 1 and 1000"}},
    {"invalid-page",
     {"{dir}/web.toml:2:13: page: unknown time zone \"Mars/Olympus\" (like Europe/Berlin or "
      "Etc/UTC)",
      "{dir}/web.toml:3:7: page: url must start with http:// or https://",
      "{dir}/web.toml:4:1: page: unknown key \"title\""}},
    {"invalid-second-page",
     {"{dir}/20-more.toml:1:1: page: a second [page] table (the first is at {dir}/10-web.toml:1)"}},
    {"invalid-several-errors",
     {"{dir}/web.toml:5:12: interval: invalid duration \"fast\": expected a number (write whole "
      "numbers with a unit: 250ms, 2s, 5m, 1h, 7d)",
      "{dir}/web.toml:6:11: confirm: must be between 1 and 1000",
      "{dir}/web.toml:7:1: probe \"web\": unknown key \"expect_bdy\""}},
    // Holds only web.toml.example: a directory without any *.toml file.
    {"invalid-no-toml-files", {"{dir}: no *.toml files in configuration directory"}},
    // No fixture: the directory does not exist.
    {"invalid-missing-directory",
     {"{dir}: cannot read configuration directory: No such file or directory"}},
};

class InvalidConfigTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfigTest, ReportsEveryErrorWithItsPosition) {
  const std::string dir = kProbesDir + "/" + GetParam().dir;
  std::vector<std::string> expected;
  for (const std::string& error : GetParam().errors) expected.push_back(expand_dir(error, dir));

  LoadedConfig loaded = load_config_directory(dir);

  EXPECT_FALSE(loaded.ok());
  EXPECT_EQ(error_strings(loaded), expected);
}

// "invalid-toml-syntax" -> "invalid_toml_syntax" (gtest names allow no dashes).
std::string case_name(const testing::TestParamInfo<InvalidCase>& param_info) {
  std::string name = param_info.param.dir;
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, InvalidConfigTest, testing::ValuesIn(kInvalidCases), case_name);

// ---------------------------------------------------------------------------
// The valid Mastodon-shaped configuration: 10-mastodon-web.toml holds web and
// streaming, 20-mastodon-db.toml holds db.

class GoodConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    loaded_ = load_config_directory(kProbesDir + "/good");
    ASSERT_TRUE(loaded_.ok()) << testing::PrintToString(error_strings(loaded_));
    ASSERT_EQ(loaded_.probes.size(), 3u);
  }

  LoadedConfig loaded_;
};

TEST_F(GoodConfigTest, LoadsEveryProbeInFileNameOrder) {
  std::vector<std::string> names;
  for (const ProbeConfig& probe : loaded_.probes) names.push_back(probe.name);
  EXPECT_EQ(names, (std::vector<std::string>{"web", "streaming", "db"}));
}

TEST_F(GoodConfigTest, ParsesHttpProbeSettings) {
  const ProbeConfig& web = loaded_.probes[0];
  EXPECT_EQ(web.type, "http");
  EXPECT_EQ(web.interval_ms, 250);
  EXPECT_EQ(web.timeout_ms, 2000);
  EXPECT_EQ(web.degraded_after_ms, std::optional<int64_t>(500));
  EXPECT_EQ(web.confirm, 3);
  EXPECT_EQ(web.tags, (std::vector<std::string>{"mastodon", "web"}));
  EXPECT_EQ(web.target_display, "http://127.0.0.1:3000/health");
  EXPECT_EQ(web.source, kProbesDir + "/good/10-mastodon-web.toml:3");
  ASSERT_TRUE(std::holds_alternative<HttpSettings>(web.settings));
  const auto& web_http = std::get<HttpSettings>(web.settings);
  EXPECT_EQ(web_http.url, "http://127.0.0.1:3000/health");
  EXPECT_EQ(web_http.method, "GET");
  EXPECT_EQ(web_http.headers, (std::vector<std::pair<std::string, std::string>>{
                                  {"Host", "social.example.org"}, {"X-Forwarded-Proto", "https"}}));
  ASSERT_EQ(web_http.expect_status.size(), 1u);  // the default
  EXPECT_EQ(web_http.expect_status[0].first, 200);
  EXPECT_EQ(web_http.expect_status[0].last, 399);
  EXPECT_EQ(web_http.expect_body, "OK");

  const ProbeConfig& streaming = loaded_.probes[1];
  EXPECT_EQ(streaming.interval_ms, 1000);
  EXPECT_EQ(streaming.timeout_ms, 1500);
  EXPECT_EQ(streaming.degraded_after_ms, std::nullopt);
  EXPECT_EQ(streaming.confirm, 2);  // the default
  EXPECT_EQ(streaming.target_display, "http://127.0.0.1:4000/api/v1/streaming/health");
  ASSERT_TRUE(std::holds_alternative<HttpSettings>(streaming.settings));
  const auto& streaming_http = std::get<HttpSettings>(streaming.settings);
  ASSERT_EQ(streaming_http.expect_status.size(), 2u);
  EXPECT_EQ(streaming_http.expect_status[0].first, 101);
  EXPECT_EQ(streaming_http.expect_status[0].last, 101);
  EXPECT_EQ(streaming_http.expect_status[1].first, 200);
  EXPECT_EQ(streaming_http.expect_status[1].last, 299);
  EXPECT_TRUE(streaming_http.headers.empty());
  EXPECT_EQ(streaming_http.expect_body, "");
}

TEST_F(GoodConfigTest, ParsesTcpProbeSettings) {
  const ProbeConfig& db = loaded_.probes[2];
  EXPECT_EQ(db.type, "tcp");
  EXPECT_EQ(db.interval_ms, 5000);
  EXPECT_EQ(db.timeout_ms, 2000);  // the default
  EXPECT_EQ(db.tags, (std::vector<std::string>{"mastodon", "postgres"}));
  EXPECT_EQ(db.target_display, "127.0.0.1:5432");
  EXPECT_EQ(db.source, kProbesDir + "/good/20-mastodon-db.toml:3");
  ASSERT_TRUE(std::holds_alternative<TcpSettings>(db.settings));
  EXPECT_EQ(std::get<TcpSettings>(db.settings).host, "127.0.0.1");
  EXPECT_EQ(std::get<TcpSettings>(db.settings).port, "5432");
}

TEST(ConfigUnixSocketTest, ARedisAddressMayBeASocketsPathATcpOneMayNot) {
  const LoadedConfig redis = load_config_text(
      "[[probe]]\nname = \"redis\"\ntype = \"redis\"\naddress = "
      "\"/var/run/redis/redis-server.sock\"\n",
      "redis.toml");
  ASSERT_TRUE(redis.ok()) << redis.errors.at(0).to_string();
  const auto& settings = std::get<RedisSettings>(redis.probes.at(0).settings);
  EXPECT_EQ(settings.host, "/var/run/redis/redis-server.sock");
  EXPECT_EQ(settings.port, "");
  EXPECT_EQ(redis.probes[0].target_display, "/var/run/redis/redis-server.sock");
  const LoadedConfig tcp = load_config_text(
      "[[probe]]\nname = \"tcp\"\ntype = \"tcp\"\naddress = \"/var/run/redis.sock\"\n", "tcp.toml");
  ASSERT_EQ(tcp.errors.size(), 1u);
  EXPECT_EQ(tcp.errors[0].to_string(),
            "tcp.toml:4:11: address: expected host:port, got \"/var/run/redis.sock\"");
}

// ---------------------------------------------------------------------------
// Environment variables and secrets.

TEST(ConfigEnvTest, ExpandsEnvironmentVariablesAndDoubledDollar) {
  ScopedEnv host("BLIP_TEST_WEB_HOST", "127.0.0.1");
  ScopedEnv tag("BLIP_TEST_TAG", "production");
  TempDir dir;
  dir.write("web.toml", R"toml([[probe]]
name = "web"
type = "http"
url = "http://${BLIP_TEST_WEB_HOST}:3000/health"
expect_body = "costs $$5 (${BLIP_TEST_TAG})"
tags = ["${BLIP_TEST_TAG}", "$${BLIP_TEST_TAG}"]
headers = { Authorization = "Bearer ${BLIP_TEST_TAG}" }
)toml");

  LoadedConfig loaded = load_config_directory(dir.path());

  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.probes.size(), 1u);
  const auto& http = std::get<HttpSettings>(loaded.probes[0].settings);
  EXPECT_EQ(http.url, "http://127.0.0.1:3000/health");
  EXPECT_EQ(http.expect_body, "costs $5 (production)");
  ASSERT_EQ(http.headers.size(), 1u);
  EXPECT_EQ(http.headers[0].second, "Bearer production");
  EXPECT_EQ(loaded.probes[0].tags, (std::vector<std::string>{"production", "${BLIP_TEST_TAG}"}));
}

// The fuzz target's seam: one file's text loads as the same file in a directory would.
TEST(ConfigTextTest, LoadsOneFilesTextAsTheDirectoryLoadsTheFile) {
  TempDir dir;
  const std::string text = R"toml([[probe]]
name = "web"
type = "http"
url = "http://127.0.0.1:3000/health"
interval = "10ms"

[[probe]]
name = "db"
type = "tcp"
)toml";
  const std::string file = dir.write("web.toml", text);

  const LoadedConfig from_directory = load_config_directory(dir.path());
  const LoadedConfig from_text = load_config_text(text, file);

  EXPECT_EQ(error_strings(from_text), error_strings(from_directory));
  EXPECT_EQ(
      error_strings(from_text),
      (std::vector<std::string>{file + ":5:12: interval: 10ms is below the minimum of 50ms",
                                file + ":7:1: probe \"db\": missing required key \"address\""}));
  ASSERT_EQ(from_text.probes.size(), from_directory.probes.size());
  EXPECT_EQ(from_text.probes[0], from_directory.probes[0]);
  dir.write("web.toml", "[[probe]\n");  // a TOML syntax error
  EXPECT_EQ(error_strings(load_config_text("[[probe]\n", file)),
            error_strings(load_config_directory(dir.path())));
}

// Found by fuzz_maintenance_time: "Etc/UTC\0…" passed the zone file check (the
// path stops at the NUL) though date cannot find it; ".tab" files passed too.
TEST(ConfigTimeZoneTest, OnlyIanaNamesAreKnownZones) {
  EXPECT_TRUE(known_time_zone("Europe/Berlin"));
  EXPECT_TRUE(known_time_zone("Etc/GMT+1"));
  EXPECT_FALSE(known_time_zone(std::string("Etc/UTC\0\0", 9)));
  EXPECT_FALSE(known_time_zone("zone.tab"));
  EXPECT_FALSE(known_time_zone("../zoneinfo/UTC"));
  // Found by fuzz_config in CI: a component over NAME_MAX threw filesystem_error out of the loader.
  EXPECT_FALSE(known_time_zone("Europe/" + std::string(300, 'w')));
  const LoadedConfig loaded =
      load_config_text("[page]\ntime_zone = \"Etc/UTC\\u0000\"\n", "page.toml");
  ASSERT_EQ(loaded.errors.size(), 1u);
  EXPECT_EQ(loaded.errors[0].line, 2);
  EXPECT_TRUE(loaded.errors[0].message.starts_with("page: unknown time zone"))
      << loaded.errors[0].message;
}

// Found by fuzz_config in CI: `name = ""` loaded, a probe no URL, label or report row can name;
// alerts and maintenance windows, named in logs and the feed, too.
TEST(ConfigNameTest, AnEmptyNameIsAnError) {
  ScopedEnv empty("BLIP_TEST_EMPTY_NAME", "");
  const char* const tables[] = {
      "[[probe]]\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
      "[[job]]\nperiod = \"1h\"\ntoken = \"0123456789abcdef0123\"\n",
      "[[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n",
      "[[maintenance]]\nstart = \"0 3 * * *\"\nduration = \"1h\"\n",
  };
  for (const char* name : {"\"\"", "\"${BLIP_TEST_EMPTY_NAME}\""}) {
    for (const char* table : tables) {
      const std::string text = fmt::format("{}name = {}\n", table, name);
      const LoadedConfig loaded = load_config_text(text, "names.toml");
      ASSERT_EQ(loaded.errors.size(), 1u) << text;
      EXPECT_EQ(loaded.errors[0].to_string(), "names.toml:4:8: name must not be empty") << text;
    }
  }
}

TEST(ConfigTlsTest, ResolvesTlsFilesFromTheConfigDirectoryAndDefaultsMinCertDays) {
  TempDir dir;
  dir.write("private-ca.pem", "not parsed at load time\n");
  dir.write("client.pem", "x\n");
  dir.write("client.key", "x\n");
  dir.write("web.toml", R"toml([[probe]]
name = "web"
type = "http"
url = "https://127.0.0.1:3443/health"
ca_file = "private-ca.pem"
client_cert = "client.pem"
client_key = "client.key"

[[probe]]
name = "public"
type = "http"
url = "https://127.0.0.1:3443/health"
min_cert_days = 0
)toml");
  LoadedConfig loaded = load_config_directory(dir.path());
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  const auto& web = std::get<HttpSettings>(loaded.probes[0].settings);
  EXPECT_EQ(web.ca_file, dir.path() + "/private-ca.pem");
  EXPECT_EQ(web.client_cert, dir.path() + "/client.pem");
  EXPECT_EQ(web.client_key, dir.path() + "/client.key");
  EXPECT_EQ(web.min_cert_days, 14);
  const auto& public_site = std::get<HttpSettings>(loaded.probes[1].settings);
  EXPECT_EQ(public_site.ca_file, "");
  EXPECT_EQ(public_site.min_cert_days, 0);
}

TEST(ConfigTlsTest, ClientKeyWithoutCertificateIsAnError) {
  TempDir dir;
  dir.write("client.key", "x\n");
  dir.write("web.toml", R"toml([[probe]]
name = "web"
type = "http"
url = "https://127.0.0.1:3443/health"
client_key = "client.key"
)toml");
  LoadedConfig loaded = load_config_directory(dir.path());
  EXPECT_EQ(error_strings(loaded),
            (std::vector<std::string>{
                dir.path() + "/web.toml:5:14: probe \"web\": client_key needs client_cert"}));
}

TEST(ConfigEnvTest, FallbackAppliesWhenTheVariableIsUnsetOrEmpty) {
  ScopedEnv set("BLIP_TEST_SET", "redis.internal");
  ScopedEnv empty("BLIP_TEST_EMPTY", "");
  TempDir dir;
  dir.write("cache.toml", R"toml([[probe]]
name = "cache"
type = "redis"
address = "${BLIP_TEST_SET:-redis}:${BLIP_TEST_SURELY_UNSET_PORT:-6379}"
password = "${BLIP_TEST_EMPTY:-}"
namespace = "${BLIP_TEST_EMPTY:-mastodon}"
)toml");
  LoadedConfig loaded = load_config_directory(dir.path());
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  const auto& redis = std::get<RedisSettings>(loaded.probes[0].settings);
  EXPECT_EQ(redis.host, "redis.internal");
  EXPECT_EQ(redis.port, "6379");
  EXPECT_EQ(redis.password, "");
  EXPECT_EQ(redis.key_namespace, "mastodon");
}

TEST(ConfigEnvTest, AFallbackMayNameAnotherVariable) {
  ScopedEnv set("BLIP_TEST_SET", "files.example.org");
  ScopedEnv empty("BLIP_TEST_EMPTY", "");
  std::string error;
  // The media probe's form: S3_ALIAS_HOST when set, else the instance's own name.
  EXPECT_EQ(expand_environment("https://${BLIP_TEST_EMPTY:-${BLIP_TEST_SET}}/a.png", &error),
            "https://files.example.org/a.png")
      << error;
  EXPECT_EQ(expand_environment("${BLIP_TEST_SURELY_UNSET:-${BLIP_TEST_EMPTY:-x}}y", &error), "xy")
      << error;
  // A fallback not used is not expanded, as in a shell.
  EXPECT_EQ(expand_environment("${BLIP_TEST_SET:-${BLIP_TEST_SURELY_UNSET}}", &error),
            "files.example.org")
      << error;
  EXPECT_EQ(expand_environment("${BLIP_TEST_EMPTY:-${BLIP_TEST_SURELY_UNSET}}", &error),
            std::nullopt);
  EXPECT_EQ(error, "environment variable \"BLIP_TEST_SURELY_UNSET\" is not set");
  EXPECT_EQ(expand_environment("${BLIP_TEST_EMPTY:-${BLIP_TEST_SET}", &error), std::nullopt);
  EXPECT_EQ(error, "unterminated \"${\" in string");
}

TEST(ConfigSecretTest, ReadsPasswordFileWithoutTrailingNewline) {
  TempDir dir;
  const std::string secret_file = dir.write("web-password", "hunter2\n");
  dir.write("web.toml",
            "[[probe]]\n"
            "name = \"web\"\n"
            "type = \"http\"\n"
            "url = \"http://127.0.0.1:3000/admin\"\n"
            "username = \"blip\"\n"
            "password_file = \"" +
                secret_file + "\"\n");

  LoadedConfig loaded = load_config_directory(dir.path());

  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.probes.size(), 1u);
  const auto& http = std::get<HttpSettings>(loaded.probes[0].settings);
  EXPECT_EQ(http.username, "blip");
  EXPECT_EQ(http.password, "hunter2");
}

TEST(ConfigSecretTest, RedactsTheUserInfoAndSecretQueryValuesOfAUrl) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://u:secret@h/x", "http://***@h/x"},
      {"http://token@h/x", "http://***@h/x"},
      {"http://127.0.0.1:3000/health", "http://127.0.0.1:3000/health"},
      {"https://h/health?token=s3cret&verbose", "https://h/health?token=***&verbose"},
      {"https://h/a?x=1&api_key=k#frag", "https://h/a?x=1&api_key=***#frag"},
      {"https://h/a?ACCESS_TOKEN=t&page=2", "https://h/a?ACCESS_TOKEN=***&page=2"},
      {"https://h/a?X-Amz-Signature=abc&X-Amz-Date=1",
       "https://h/a?X-Amz-Signature=***&X-Amz-Date=1"},
      {"https://h/a?keyboard=1&monkey=2", "https://h/a?keyboard=1&monkey=2"},
      {"https://h/a?sig=1&client_secret=2&password=3",
       "https://h/a?sig=***&client_secret=***&password=***"},
  };
  for (const auto& [url, shown] : cases) EXPECT_EQ(redact_url(url), shown) << url;
  EXPECT_EQ(redact_url("https://h/a?session=1&page=2", {"Session"}),
            "https://h/a?session=***&page=2");
}

// `[[remote_write]]`: every key, relative files read from the configuration file's directory.
TEST(ConfigRemoteWriteTest, ReadsEveryKey) {
  ScopedEnv tenant("BLIP_TEST_TENANT", "team-a");
  TempDir dir;
  dir.write("mimir-token", "Bearer t0ken\n\n");
  dir.write("mimir-password", "hunter2\n");
  const LoadedConfig loaded = load_config_text(R"toml(
[[remote_write]]
url = "https://mimir.example:9009/api/v1/push"
headers = { X-Scope-OrgID = "${BLIP_TEST_TENANT}" }
header_files = { Authorization = "mimir-token" }
username = "blip"
password_file = "mimir-password"
timeout = "30s"

[[remote_write]]
url = "http://victoria:8428/api/v1/write"
)toml",
                                               dir.path() + "/rw.toml");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.remote_writes.size(), 2u);
  const RemoteWriteConfig& mimir = loaded.remote_writes[0];
  EXPECT_EQ(mimir.url, "https://mimir.example:9009/api/v1/push");
  EXPECT_EQ(mimir.headers, (std::vector<std::pair<std::string, std::string>>{
                               {"X-Scope-OrgID", "team-a"}, {"Authorization", "Bearer t0ken"}}));
  EXPECT_EQ(mimir.username, "blip");
  EXPECT_EQ(mimir.password, "hunter2");
  EXPECT_EQ(mimir.timeout_ms, 30'000);
  EXPECT_EQ(mimir.source, dir.path() + "/rw.toml:2");
  // Only a url: no headers, no basic auth, the default timeout.
  const RemoteWriteConfig& victoria = loaded.remote_writes[1];
  EXPECT_EQ(victoria.url, "http://victoria:8428/api/v1/write");
  EXPECT_TRUE(victoria.headers.empty());
  EXPECT_EQ(victoria.username, "");
  EXPECT_EQ(victoria.password, "");
  EXPECT_EQ(victoria.timeout_ms, 10'000);
  EXPECT_EQ(victoria.source, dir.path() + "/rw.toml:10");
}

// `[[heartbeat]]`: every key; its errors at their keys, never quoting the URL (a check's uuid).
TEST(ConfigHeartbeatTest, ReadsEveryKeyAndReportsErrorsWithoutTheUrl) {
  TempDir dir;
  dir.write("ping-token", "s3cret\n");
  const LoadedConfig loaded = load_config_text(R"toml(
[[heartbeat]]
url = "https://hc-ping.com/0b1c2d3e"
every = "30s"
timeout = "5s"
header_files = { X-Token = "ping-token" }

[[heartbeat]]
url = "http://127.0.0.1:9187/ping/abc"
)toml",
                                               dir.path() + "/hb.toml");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.heartbeats.size(), 2u);
  EXPECT_EQ(loaded.heartbeats[0].every_ms, 30'000);
  EXPECT_EQ(loaded.heartbeats[0].timeout_ms, 5'000);
  EXPECT_EQ(loaded.heartbeats[0].headers,
            (std::vector<std::pair<std::string, std::string>>{{"X-Token", "s3cret"}}));
  EXPECT_EQ(loaded.heartbeats[1].every_ms, 60'000);
  EXPECT_EQ(loaded.heartbeats[1].timeout_ms, 10'000);
  EXPECT_EQ(loaded.heartbeats[1].source, dir.path() + "/hb.toml:8");

  const std::pair<std::string, std::string> cases[] = {
      {"[[heartbeat]]\nevery = \"1m\"\n", "hb.toml:1:1: heartbeat: missing required key \"url\""},
      {"[[heartbeat]]\nurl = \"ftp://hc-ping.com/s3cret\"\n",
       "hb.toml:2:7: url: must start with http:// or https://"},
      {"[[heartbeat]]\nurl = \"https://hc-ping.com/s3cret\"\nevery = \"500ms\"\n",
       "hb.toml:3:9: every: at least 1s"},
      {"[[heartbeat]]\nurl = \"https://hc-ping.com/s3cret\"\nmethod = \"POST\"\n",
       "hb.toml:3:1: heartbeat: unknown key \"method\""},
  };
  for (const auto& [toml, error] : cases) {
    const LoadedConfig bad = load_config_text(toml, dir.path() + "/hb.toml");
    const auto errors = error_strings(bad);
    ASSERT_EQ(errors.size(), 1u) << toml;
    EXPECT_EQ(errors[0], dir.path() + "/" + error) << toml;
    EXPECT_EQ(errors[0].find("s3cret"), std::string::npos);
  }
}

// Each bad table's errors, exactly; the URLs hold a password that no error may show.
TEST(ConfigRemoteWriteTest, ReportsEachErrorAtItsKeyWithoutTheUrl) {
  TempDir dir;
  dir.write("password", "hunter2\n");
  struct Case {
    const char* name;
    std::string toml;
    std::vector<std::string> errors;
  };
  const Case cases[] = {
      {"missing url",
       "[[remote_write]]\ntimeout = \"5s\"\n",
       {"{dir}/rw.toml:1:1: remote_write: missing required key \"url\""}},
      {"bad scheme",
       "[[remote_write]]\nurl = \"ftp://blip:s3cret@mimir/api/v1/push\"\n",
       {"{dir}/rw.toml:2:7: url: must start with http:// or https://"}},
      {"no scheme",
       "[[remote_write]]\nurl = \"blip:s3cret@mimir/api/v1/push\"\n",
       {"{dir}/rw.toml:2:7: url: must start with http:// or https://"}},
      {"unparsable url",
       "[[remote_write]]\nurl = \"http://blip:s3cret@mimir:99999/api/v1/push\"\n",
       {"{dir}/rw.toml:2:7: url: not a valid URL"}},
      {"zero timeout",
       "[[remote_write]]\nurl = \"https://blip:s3cret@mimir/api/v1/push\"\ntimeout = \"0s\"\n",
       {"{dir}/rw.toml:3:11: timeout: must be within (0s, 60s]"}},
      {"timeout above a minute",
       "[[remote_write]]\nurl = \"https://blip:s3cret@mimir/api/v1/push\"\ntimeout = \"61s\"\n",
       {"{dir}/rw.toml:3:11: timeout: must be within (0s, 60s]"}},
      {"password_file without username",
       "[[remote_write]]\nurl = \"https://mimir/api/v1/push?token=s3cret\"\n"
       "password_file = \"password\"\n",
       {"{dir}/rw.toml:3:17: remote_write: password_file needs username"}},
      {"username without password_file",
       "[[remote_write]]\nurl = \"https://mimir/api/v1/push?token=s3cret\"\nusername = \"blip\"\n",
       {"{dir}/rw.toml:3:12: remote_write: username needs password_file"}},
      {"unreadable password_file",
       "[[remote_write]]\nurl = \"https://mimir/s3cret/push\"\nusername = \"blip\"\n"
       "password_file = \"missing-password\"\n",
       {"{dir}/rw.toml:4:17: password_file: cannot read \"missing-password\": No such file or "
        "directory"}},
      {"inline password",
       "[[remote_write]]\nurl = \"https://mimir/s3cret/push\"\nusername = \"blip\"\n"
       "password_file = \"password\"\npassword = \"hunter2\"\n",
       {"{dir}/rw.toml:5:1: remote_write: unknown key \"password\""}},
      {"duplicate url",
       "[[remote_write]]\nurl = \"https://blip:s3cret@mimir/api/v1/push\"\n\n"
       "[[remote_write]]\nurl = \"https://blip:s3cret@mimir/api/v1/push\"\ntimeout = \"5s\"\n",
       {"{dir}/rw.toml:5:7: url: the same endpoint as the [[remote_write]] at {dir}/rw.toml:1 "
        "(every sample would be sent twice)"}},
      {"name is not a key",
       "[[remote_write]]\nurl = \"https://blip:s3cret@mimir/api/v1/push\"\nname = \"mimir\"\n",
       {"{dir}/rw.toml:3:1: remote_write: unknown key \"name\""}},
      {"headers not a table",
       "[[remote_write]]\nurl = \"https://mimir/s3cret/push\"\nheaders = \"X-Scope-OrgID: a\"\n",
       {"{dir}/rw.toml:3:11: headers: expected a table of header names to values"}},
      {"a table, not a list of tables",
       "[remote_write]\nurl = \"https://mimir/s3cret/push\"\n",
       {"{dir}/rw.toml:1:1: remote_write: expected [[remote_write]] tables"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const LoadedConfig loaded = load_config_text(c.toml, dir.path() + "/rw.toml");
    std::vector<std::string> errors;
    for (const std::string& error : c.errors) errors.push_back(expand_dir(error, dir.path()));
    EXPECT_EQ(error_strings(loaded), errors);
    for (const std::string& error : error_strings(loaded))
      EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
  }
}

// The alert reader shares read_headers with [[remote_write]]: `headers` then `header_files`.
TEST(ConfigAlertTest, ReadsHeadersAndHeaderFiles) {
  ScopedEnv key("BLIP_TEST_ALERT_KEY", "k3y");
  TempDir dir;
  dir.write("token", "Bearer t0ken\r\n");
  const LoadedConfig loaded = load_config_text(R"toml([[alert]]
kind = "webhook"
url = "https://hooks.example/blip"
headers = { X-Api-Key = "${BLIP_TEST_ALERT_KEY}" }
header_files = { Authorization = "token" }
timeout = "20s"
)toml",
                                               dir.path() + "/alerts.toml");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.alerts.size(), 1u);
  EXPECT_EQ(loaded.alerts[0].headers,
            (std::vector<std::pair<std::string, std::string>>{{"X-Api-Key", "k3y"},
                                                              {"Authorization", "Bearer t0ken"}}));
  EXPECT_EQ(loaded.alerts[0].timeout_ms, 20'000);
  const LoadedConfig missing = load_config_text(
      "[[alert]]\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/blip\"\n"
      "header_files = { Authorization = \"missing-token\" }\ntimeout = \"2m\"\n",
      dir.path() + "/alerts.toml");
  EXPECT_EQ(error_strings(missing),
            (std::vector<std::string>{
                dir.path() + "/alerts.toml:4:34: header_files: cannot read \"missing-token\": No "
                             "such file or directory",
                dir.path() + "/alerts.toml:5:11: timeout: must be within (0s, 60s]"}));
}

// group: "incident" by default, "probe" for one message per outage; anything else names
// the file, line, column and key.
TEST(ConfigAlertTest, GroupIsIncidentByDefaultProbeWhenAskedAndAnErrorOtherwise) {
  TempDir dir;
  const LoadedConfig loaded = load_config_text(
      "[[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n\n"
      "[[alert]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/\"\ngroup = \"probe\"\n",
      dir.path() + "/alerts.toml");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.alerts.size(), 2u);
  EXPECT_EQ(loaded.alerts[0].group, AlertConfig::Group::incident);
  EXPECT_EQ(loaded.alerts[1].group, AlertConfig::Group::probe);
  const LoadedConfig wrong = load_config_text(
      "[[alert]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\ngroup = \"outage\"\n",
      dir.path() + "/alerts.toml");
  EXPECT_EQ(
      error_strings(wrong),
      (std::vector<std::string>{dir.path() + "/alerts.toml:4:9: group: unknown value \"outage\" "
                                             "(expected one of: incident, probe)"}));
}

// kind = "email": every value may be ${ENV} (Mastodon's SMTP_* variables), the
// password from `password` or `password_file`, addresses with or without a name.
TEST(ConfigAlertTest, ReadsAnEmailAlertFromEnvironmentAndFiles) {
  ScopedEnv server("BLIP_TEST_SMTP_SERVER", "smtp.example.org");
  ScopedEnv port("BLIP_TEST_SMTP_PORT", "587");
  ScopedEnv login("BLIP_TEST_SMTP_LOGIN", "mastodon");
  ScopedEnv password("BLIP_TEST_SMTP_PASSWORD", "s3cret");
  ScopedEnv from("BLIP_TEST_SMTP_FROM_ADDRESS", "Mastodon <notifications@example.org>");
  TempDir dir;
  dir.write("smtp-password", "f1le-s3cret\n");
  const LoadedConfig loaded = load_config_text(R"toml([[alert]]
name = "mail"
kind = "email"
url = "smtp://${BLIP_TEST_SMTP_SERVER}:${BLIP_TEST_SMTP_PORT}"
from = "${BLIP_TEST_SMTP_FROM_ADDRESS}"
to = ["ops@example.org", "\"Ops, on call\" <oncall@example.org>"]
username = "${BLIP_TEST_SMTP_LOGIN}"
password = "${BLIP_TEST_SMTP_PASSWORD}"
starttls = "require"
subject_prefix = "[blip] "

[[alert]]
kind = "email"
url = "smtps://127.0.0.1:465"
from = "blip@example.org"
to = ["ops@example.org"]
username = "blip"
password_file = "smtp-password"
)toml",
                                               dir.path() + "/alerts.toml");
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.alerts.size(), 2u);
  const AlertConfig& mail = loaded.alerts[0];
  EXPECT_EQ(mail.kind, AlertConfig::Kind::email);
  EXPECT_EQ(mail.url, "smtp://smtp.example.org:587");
  EXPECT_EQ(mail.mail.from, (MailAddress{"Mastodon", "notifications@example.org"}));
  EXPECT_EQ(mail.mail.to, (std::vector<MailAddress>{{"", "ops@example.org"},
                                                    {"Ops, on call", "oncall@example.org"}}));
  EXPECT_EQ(mail.mail.username, "mastodon");
  EXPECT_EQ(mail.mail.password, "s3cret");
  EXPECT_EQ(mail.mail.starttls, MailSettings::StartTls::require);
  EXPECT_EQ(mail.mail.subject_prefix, "[blip] ");
  EXPECT_EQ(loaded.alerts[1].name, "email-2");
  EXPECT_EQ(loaded.alerts[1].mail.password, "f1le-s3cret");
  EXPECT_EQ(loaded.alerts[1].mail.starttls, MailSettings::StartTls::try_upgrade);
}

TEST(ConfigAlertTest, EmailErrorsNameFileLineAndKey) {
  TempDir dir;
  struct Case {
    const char* name;
    std::string toml;
    std::vector<std::string> errors;
  };
  const std::string head = "[[alert]]\nname = \"m\"\nkind = \"email\"\n";
  const std::vector<Case> cases{
      {"an http url",
       head + "url = \"https://mail.example.org\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\n",
       {"{file}:4:7: url: must start with smtp:// or smtps://"}},
      {"a login in the url",
       head + "url = \"smtp://me:s3cret@mail.example.org\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\n",
       {"{file}:4:7: url: the login goes in username and password (or password_file), not in "
        "the url"}},
      {"no from, no to",
       head + "url = \"smtp://127.0.0.1:25\"\n",
       {"{file}:1:1: alert \"m\": missing required key \"from\"",
        "{file}:1:1: alert \"m\": missing required key \"to\""}},
      {"an empty to",
       head + "url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.org\"\nto = []\n",
       {"{file}:6:6: to: expected a list of at least one address"}},
      {"bad addresses",
       head + "url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.org, b@example.org\"\nto = "
              "[\"ops\", \"x@example.org\\r\\nBcc: y@example.org\"]\n",
       {"{file}:5:8: from: not an address like name@example.org (spaces, specials or non-ASCII)",
        "{file}:6:7: to: not an address like name@example.org",
        "{file}:6:14: to: a control character or line break"}},
      {"username without password",
       head + "url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\nusername = \"u\"\n",
       {"{file}:7:12: alert \"m\": username needs password or password_file"}},
      {"password without username",
       head + "url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\npassword = \"s3cret\"\n",
       {"{file}:7:12: alert \"m\": a password needs username"}},
      {"starttls on smtps and an unknown value",
       head + "url = \"smtps://127.0.0.1:465\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\nstarttls = \"maybe\"\n",
       {"{file}:7:12: starttls: only for smtp:// (smtps:// is TLS from the first byte)",
        "{file}:7:12: starttls: unknown value \"maybe\" (expected one of: try, require, off)"}},
      {"headers are HTTP's",
       head + "url = \"smtp://127.0.0.1:25\"\nfrom = \"a@example.org\"\nto = "
              "[\"b@example.org\"]\nheaders = { X = \"y\" }\n",
       {"{file}:7:1: alert \"m\": unknown key \"headers\""}},
      {"mail keys on a webhook",
       "[[alert]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nfrom = "
       "\"a@example.org\"\n",
       {"{file}:5:1: alert \"w\": unknown key \"from\""}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = dir.path() + "/alerts.toml";
    const LoadedConfig loaded = load_config_text(c.toml, file);
    std::vector<std::string> expected;
    for (std::string error : c.errors) {
      error.replace(error.find("{file}"), 6, file);
      expected.push_back(error);
    }
    EXPECT_EQ(error_strings(loaded), expected);
    for (const std::string& error : error_strings(loaded))
      EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
  }
}

TEST(ConfigPageTest, ReadsThePageTableWithDefaultsForTheRest) {
  TempDir dir;
  dir.write("web.toml", R"toml([page]
name = "Example status"
time_zone = "Europe/Berlin"

[[probe]]
name = "web"
type = "http"
url = "http://127.0.0.1:3000/health"
)toml");
  LoadedConfig loaded = load_config_directory(dir.path());
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  EXPECT_EQ(loaded.page.name, "Example status");
  EXPECT_EQ(loaded.page.time_zone, "Europe/Berlin");
  EXPECT_EQ(loaded.page.url, "");

  TempDir bare;
  bare.write("web.toml", "[[probe]]\nname = \"web\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n");
  LoadedConfig defaults = load_config_directory(bare.path());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults.page.name, "blip");
  EXPECT_EQ(defaults.page.time_zone, "Etc/UTC");
}

TEST(ConfigSecretTest, TargetDisplayNeverShowsTheUrlPassword) {
  TempDir dir;
  dir.write("web.toml", R"toml([[probe]]
name = "web"
type = "http"
url = "http://blip:hunter2@127.0.0.1:3000/admin"
)toml");

  LoadedConfig loaded = load_config_directory(dir.path());

  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.probes.size(), 1u);
  EXPECT_EQ(loaded.probes[0].target_display, "http://***@127.0.0.1:3000/admin");
  EXPECT_EQ(loaded.probes[0].target_display.find("hunter2"), std::string::npos);
}

TEST(ShippedExamples, MastodonProbesDirectoryIsValid) {
  ScopedEnv domain("MASTODON_DOMAIN", "social.example.org");
  ScopedEnv password("BLIP_DB_PASSWORD", "example");
  LoadedConfig loaded = load_config_directory(BLIP_TESTDATA "/../../probes.d");
  EXPECT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  EXPECT_EQ(loaded.probes.size(), 10u);
}

TEST(ConfigLimits, TimeoutAboveAnHourIsRejected) {
  TempDir dir;
  dir.write(
      "web.toml",
      "[[probe]]\nname = \"web\"\ntype = \"tcp\"\naddress = \"127.0.0.1:80\"\ntimeout = \"2h\"\n");
  LoadedConfig loaded = load_config_directory(dir.path());
  EXPECT_EQ(error_strings(loaded),
            (std::vector<std::string>{dir.path() +
                                      "/web.toml:5:11: timeout: 2h is above the maximum of 1h"}));
}

// Jobs load into their own list; the components keep the directory's order:
// file by file, each file's probes before its jobs.
TEST(ConfigComponents, JobsLoadApartAndComponentsKeepTheFilesOrder) {
  TempDir dir;
  auto job = [](const std::string& name) {
    return "[[job]]\nname = \"" + name +
           "\"\nperiod = \"1h\"\ntoken = \"0123456789abcdef0123456789abcdef\"\n";
  };
  auto probe = [](const std::string& name) {
    return "[[probe]]\nname = \"" + name + "\"\ntype = \"tcp\"\naddress = \"127.0.0.1:80\"\n";
  };
  dir.write("a.toml", job("backup"));
  dir.write("b.toml", job("dump") + probe("web"));
  dir.write("c.toml", probe("db"));
  const LoadedConfig loaded = load_config_directory(dir.path());
  ASSERT_TRUE(loaded.ok()) << testing::PrintToString(error_strings(loaded));
  ASSERT_EQ(loaded.probes.size(), 2u);
  ASSERT_EQ(loaded.jobs.size(), 2u);
  EXPECT_EQ(loaded.jobs[0].kind, ComponentKind::job);
  EXPECT_EQ(loaded.jobs[0].type, kJobType);
  EXPECT_EQ(loaded.jobs[0].settings.period_ms, 3'600'000);
  std::vector<std::string> order;
  for (const ComponentRef& component : loaded.components()) {
    order.push_back(fmt::format("{}:{}", component->name, component.job() ? "job" : "probe"));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"backup:job", "web:probe", "dump:job", "db:probe"}));

  // A job and a probe of one name differ: a reload replaces the one by the other.
  dir.write("a.toml", probe("backup"));
  const LoadedConfig next = load_config_directory(dir.path());
  ASSERT_TRUE(next.ok()) << testing::PrintToString(error_strings(next));
  const ComponentChanges changes = compare_components(loaded.components(), next.components());
  EXPECT_EQ(changes.removed, (std::vector<size_t>{0}));
  EXPECT_EQ(changes.kept, (std::vector<std::optional<size_t>>{std::nullopt, 1, 2, 3}));
}

// A job token of 16 to 31 characters loads, with a warning at the key: 32 hex
// characters are 128 bits. Below 16 it stays an error.
TEST(ConfigJobToken, AShortTokenIsAWarningAndATooShortOneAnError) {
  TempDir dir;
  dir.write("token.txt", std::string(20, 'f') + "\n");
  struct Case {
    std::string name;
    std::string token_line;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
  };
  const std::string warning_text =
      "20 characters; 32 or more (128 bits as hex) make it unguessable (try: openssl rand -hex 16)";
  const std::vector<Case> cases{
      {"32 characters", "token = \"" + std::string(32, 'a') + "\"", {}, {}},
      {"31 characters",
       "token = \"" + std::string(31, 'a') + "\"",
       {},
       {"{dir}/jobs.toml:4:9: token: 31 characters; 32 or more (128 bits as hex) make it "
        "unguessable (try: openssl "
        "rand -hex 16)"}},
      {"20 characters",
       "token = \"0123456789abcdef0123\"",
       {},
       {"{dir}/jobs.toml:4:9: token: " + warning_text}},
      {"20 characters from a file",
       "token_file = \"token.txt\"",
       {},
       {"{dir}/jobs.toml:4:14: token_file: " + warning_text}},
      {"a file that is missing: one error, not a second about its length",
       "token_file = \"missing.txt\"",
       {"{dir}/jobs.toml:4:14: token_file: cannot read \"missing.txt\": No such file or directory"},
       {}},
      {"15 characters",
       "token = \"" + std::string(15, 'a') + "\"",
       {"{dir}/jobs.toml:4:9: token: must be at least 16 characters, without / ? # % & or spaces "
        "(try: openssl rand "
        "-hex 16)"},
       {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    dir.write("jobs.toml", "[[job]]\nname = \"dump\"\nperiod = \"1d\"\n" + c.token_line + "\n");
    const LoadedConfig loaded = load_config_directory(dir.path());
    std::vector<std::string> errors;
    for (const std::string& error : c.errors) errors.push_back(expand_dir(error, dir.path()));
    std::vector<std::string> warnings;
    for (const std::string& warning : c.warnings)
      warnings.push_back(expand_dir(warning, dir.path()));
    EXPECT_EQ(error_strings(loaded), errors);
    std::vector<std::string> loaded_warnings;
    for (const ConfigError& warning : loaded.warnings)
      loaded_warnings.push_back(warning.to_string());
    EXPECT_EQ(loaded_warnings, warnings);
  }
}

// `[page] operator_token` (issue 21): optional, read like a job's token (inline or from a file
// beside the configuration), with the same length rules and errors at file:line.
TEST(ConfigOperatorToken, ReadLikeAJobsToken) {
  TempDir dir;
  const std::string probe =
      "[[probe]]\nname = \"web\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
  dir.write("operator.txt", std::string(32, 'e') + "\n");
  dir.write("probes.toml", probe);
  EXPECT_EQ(load_config_directory(dir.path()).page.operator_token, "");
  dir.write("probes.toml", probe + "[page]\noperator_token_file = \"operator.txt\"\n");
  LoadedConfig loaded = load_config_directory(dir.path());
  EXPECT_EQ(error_strings(loaded), std::vector<std::string>{});
  EXPECT_EQ(loaded.page.operator_token, std::string(32, 'e'));
  dir.write("probes.toml", probe + "[page]\noperator_token = \"short\"\n");
  EXPECT_EQ(error_strings(load_config_directory(dir.path())),
            std::vector<std::string>{expand_dir(
                "{dir}/probes.toml:6:18: operator_token: must be at least 16 characters, without / "
                "? # % & or spaces (try: openssl rand -hex 16)",
                dir.path())});
  dir.write("probes.toml", probe + "[page]\noperator_token = \"" + std::string(32, 'a') +
                               "\"\noperator_token_file = \"operator.txt\"\n");
  EXPECT_EQ(error_strings(load_config_directory(dir.path())),
            std::vector<std::string>{expand_dir(
                "{dir}/probes.toml:7:23: page: set operator_token or operator_token_file, not both",
                dir.path())});
}

TEST(ConfigJobToken, CheckPrintsTheWarningAndPasses) {
  TempDir dir;
  dir.write("jobs.toml",
            "[[job]]\nname = \"dump\"\nperiod = \"1d\"\ntoken = \"0123456789abcdef0123\"\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check(CheckOptions{dir.path()}, out, err), kExitOk);
  EXPECT_EQ(
      err.str(),
      dir.path() +
          "/jobs.toml:4:9: warning: token: 20 characters; 32 or more (128 bits as hex) make it "
          "unguessable (try: openssl rand -hex 16)\n");
  EXPECT_EQ(out.str(),
            dir.path() + ": configuration ok, 0 probes, 1 job, 0 alerts, 0 maintenance windows\n");
  // With an error beside it, both show and the check fails.
  dir.write("web.toml", "[[probe]]\nname = \"web\"\ntype = \"tcp\"\n");
  std::ostringstream failed_out;
  std::ostringstream failed_err;
  EXPECT_EQ(run_check(CheckOptions{dir.path()}, failed_out, failed_err), kExitUsage);
  EXPECT_NE(
      failed_err.str().find("web.toml:1:1: probe \"web\": missing required key \"address\"\n"),
      std::string::npos)
      << failed_err.str();
  EXPECT_NE(failed_err.str().find("jobs.toml:4:9: warning: token: 20 characters"),
            std::string::npos)
      << failed_err.str();
  EXPECT_EQ(failed_out.str(), "");
}

}  // namespace
}  // namespace blip
