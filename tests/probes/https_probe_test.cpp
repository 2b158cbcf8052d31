// HTTPS probes against a private nginx on loopback, with certificates made by
// the openssl CLI: a private CA, a soon-expiring and an expired certificate,
// self-signed and wrong-host ones, and mutual TLS.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "blip/core/clock.hpp"
#include "blip/feed/status_feed.hpp"
#include "blip/recorder/live_state.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using test::http_probe;
using test::probe_once;

constexpr int64_t kDayMs = 86'400'000;

void openssl(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  std::string output;
  if (test::run_command(argv, &output) != 0) {
    std::string command;
    for (const std::string& part : argv) command += part + " ";
    throw std::runtime_error("failed: " + command + "\n" + output);
  }
}

// A certificate's notAfter, read back with the openssl CLI, as Unix ms.
int64_t not_after_ms(const std::string& certificate) {
  std::string output;
  test::run_command({"openssl", "x509", "-in", certificate, "-noout", "-enddate"}, &output);
  std::tm when{};
  // "notAfter=Dec  6 22:50:00 2026 GMT"
  if (output.rfind("notAfter=", 0) != 0 ||
      !strptime(output.c_str() + 9, "%b %d %H:%M:%S %Y GMT", &when)) {
    throw std::runtime_error("unreadable notAfter: " + output);
  }
  return static_cast<int64_t>(timegm(&when)) * 1000;
}

// Keys, CAs and certificates for every case, made once.
class Certificates {
 public:
  Certificates() {
    dir_.write("index.txt", "");
    dir_.write("serial", "1000\n");
    std::filesystem::create_directories(dir_.file("issued"));
    // `openssl ca` is what sets dates in the past on OpenSSL 3.0 (x509 -req has no -not_before).
    dir_.write("ca.cnf", fmt::format(R"([ ca ]
default_ca = private_ca
[ private_ca ]
database = {0}/index.txt
new_certs_dir = {0}/issued
serial = {0}/serial
certificate = {0}/ca.pem
private_key = {0}/ca.key
default_md = sha256
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
[ loopback ]
subjectAltName = IP:127.0.0.1,DNS:localhost
basicConstraints = CA:FALSE
[ elsewhere ]
subjectAltName = DNS:elsewhere.example
basicConstraints = CA:FALSE
)",
                                     dir_.path()));
    self_signed("ca", "blip test private CA", "basicConstraints=critical,CA:TRUE");
    self_signed("client-ca", "blip test client CA", "basicConstraints=critical,CA:TRUE");
    self_signed("self-signed", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    issue("valid", "loopback", {"-days", "365"});
    issue("soon", "loopback", {"-days", "5"});
    issue("expired", "loopback", {"-startdate", "20250101000000Z", "-enddate", "20250201000000Z"});
    issue("wrong-host", "elsewhere", {"-days", "365"});
    request("client", "blip client");
    openssl({"x509", "-req", "-in", file("client.csr"), "-CA", file("client-ca.pem"), "-CAkey",
             file("client-ca.key"), "-CAcreateserial", "-days", "30", "-out", file("client.pem")});
  }
  std::string file(const std::string& name) const { return dir_.file(name); }
  test::TlsSite site(const std::string& name, bool client_certificate = false) const {
    return {file(name + ".pem"), file(name + ".key"),
            client_certificate ? file("client-ca.pem") : ""};
  }

 private:
  void key(const std::string& name) {
    openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
             file(name + ".key")});
  }
  void self_signed(const std::string& name, const std::string& common_name,
                   const std::string& extension) {
    key(name);
    openssl({"req", "-x509", "-new", "-key", file(name + ".key"), "-subj", "/CN=" + common_name,
             "-days", "365", "-addext", extension, "-out", file(name + ".pem")});
  }
  void request(const std::string& name, const std::string& common_name) {
    key(name);
    openssl({"req", "-new", "-key", file(name + ".key"), "-subj", "/CN=" + common_name, "-out",
             file(name + ".csr")});
  }
  void issue(const std::string& name, const std::string& extensions,
             const std::vector<std::string>& dates) {
    request(name, name + ".blip.test");
    std::vector<std::string> arguments{
        "ca",       "-batch", "-notext",           "-config", file("ca.cnf"),     "-extensions",
        extensions, "-in",    file(name + ".csr"), "-out",    file(name + ".pem")};
    arguments.insert(arguments.end(), dates.begin(), dates.end());
    openssl(arguments);
  }
  test::TempDir dir_;
};

enum Site : size_t { valid, soon, expired, self_signed, wrong_host, mutual };

class TlsProbeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certificates_ = new Certificates();
    nginx_ = new test::TlsNginxServer(
        {certificates_->site("valid"), certificates_->site("soon"), certificates_->site("expired"),
         certificates_->site("self-signed"), certificates_->site("wrong-host"),
         certificates_->site("valid", true)});
  }
  static void TearDownTestSuite() {
    delete nginx_;
    nginx_ = nullptr;
    delete certificates_;
    certificates_ = nullptr;
  }
  static ProbeConfig probe(Site site, bool private_ca = true) {
    ProbeConfig config = http_probe(nginx_->url(site, "/health"));
    if (private_ca) std::get<HttpSettings>(config.settings).ca_file = certificates_->file("ca.pem");
    return config;
  }
  static Certificates* certificates_;
  static test::TlsNginxServer* nginx_;
};
Certificates* TlsProbeTest::certificates_ = nullptr;
test::TlsNginxServer* TlsProbeTest::nginx_ = nullptr;

struct TlsCase {
  std::string name;
  Site site;
  bool private_ca;
  bool client_certificate;
  int64_t min_cert_days;
  Status status;
  ErrorClass error;
  std::string detail_part;  // the detail holds this
};

TEST_F(TlsProbeTest, TrustExpiryAndMutualTlsCases) {
  const std::vector<TlsCase> cases{
      {"valid, private CA", valid, true, false, 14, Status::up, ErrorClass::none, "HTTP 200"},
      {"valid, system store only", valid, false, false, 14, Status::down, ErrorClass::tls,
       "certificate"},
      {"expired", expired, true, false, 14, Status::down, ErrorClass::tls, "expired"},
      {"soon to expire", soon, true, false, 14, Status::degraded, ErrorClass::none,
       "below min_cert_days 14"},
      {"soon to expire, above min_cert_days", soon, true, false, 3, Status::up, ErrorClass::none,
       "HTTP 200"},
      {"soon to expire, min_cert_days 0", soon, true, false, 0, Status::up, ErrorClass::none,
       "HTTP 200"},
      {"self-signed", self_signed, true, false, 14, Status::down, ErrorClass::tls, "certificate"},
      {"wrong host", wrong_host, true, false, 14, Status::down, ErrorClass::tls, "127.0.0.1"},
      {"mutual TLS without a client certificate", mutual, true, false, 14, Status::down,
       ErrorClass::http_status, "HTTP 400"},
      {"mutual TLS with a client certificate", mutual, true, true, 14, Status::up, ErrorClass::none,
       "HTTP 200"},
  };
  for (const TlsCase& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = probe(c.site, c.private_ca);
    auto& http = std::get<HttpSettings>(config.settings);
    http.min_cert_days = c.min_cert_days;
    if (c.client_certificate) {
      http.client_cert = certificates_->file("client.pem");
      http.client_key = certificates_->file("client.key");
    }
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, c.status) << sample.detail;
    EXPECT_EQ(sample.error, c.error) << sample.detail;
    EXPECT_NE(sample.detail.find(c.detail_part), std::string::npos) << sample.detail;
    if (c.status != Status::down) {
      EXPECT_GT(sample.phases.tls_us, 0);
    }
  }
}

TEST_F(TlsProbeTest, SoonExpiringCertificateIsDegradedWithTheDaysLeft) {
  const int64_t expiry_ms = not_after_ms(certificates_->file("soon.pem"));
  Sample sample = probe_once(probe(soon));
  ASSERT_EQ(sample.status, Status::degraded) << sample.detail;
  ASSERT_EQ(sample.cert_expiry_ms, std::optional<int64_t>(expiry_ms));
  const int64_t days_left = (expiry_ms - sample.completed_ms()) / kDayMs;
  EXPECT_TRUE(days_left == 4 || days_left == 5) << days_left;  // made with -days 5 a moment ago
  EXPECT_EQ(sample.detail,
            fmt::format("certificate expires in {} days ({}), below min_cert_days 14", days_left,
                        format_iso8601_ms(expiry_ms)));
}

TEST_F(TlsProbeTest, ExpiredCertificateIsATlsDownSampleSayingSo) {
  Sample sample = probe_once(probe(expired));
  ASSERT_EQ(sample.status, Status::down);
  EXPECT_EQ(sample.error, ErrorClass::tls);
  EXPECT_NE(sample.detail.find("certificate has expired"), std::string::npos) << sample.detail;
}

TEST_F(TlsProbeTest, ExpiryReachesMetricsAsTheCertificatesNotAfter) {
  const int64_t expiry_ms = not_after_ms(certificates_->file("valid.pem"));
  ProbeConfig config = probe(valid);
  config.name = "private-web";
  Sample sample = probe_once(config);
  ASSERT_EQ(sample.status, Status::up) << sample.detail;
  ASSERT_EQ(sample.cert_expiry_ms, std::optional<int64_t>(expiry_ms));

  LiveSnapshot live;
  live.probes.resize(2);
  live.probes[0].observe(sample);
  Sample plain;  // a probe that never spoke TLS has no expiry line
  plain.detail = "HTTP 200";
  live.probes[1].observe(plain);
  ProbeConfig other = http_probe("http://127.0.0.1:1/health");
  other.name = "plain-web";
  std::vector<double> floor;
  FeedRefusals refusals;
  const std::string metrics = prometheus_metrics({config, other}, live, refusals, floor);
  EXPECT_NE(metrics.find(fmt::format(
                "blip_probe_tls_cert_expiry_timestamp_seconds{{probe=\"private-web\",type="
                "\"http\"}} {}\n",
                expiry_ms / 1000)),
            std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("blip_probe_tls_cert_expiry_timestamp_seconds{probe=\"plain-web\""),
            std::string::npos);
  EXPECT_NE(metrics.find("# TYPE blip_probe_tls_cert_expiry_timestamp_seconds gauge\n"),
            std::string::npos);

  test::TempDir dir;
  dir.write("metrics.txt", metrics);
  std::string lint;
  EXPECT_EQ(
      test::run_command({"sh", "-c", "promtool check metrics < " + dir.file("metrics.txt")}, &lint),
      0)
      << lint;
  EXPECT_EQ(lint, "") << "promtool's lint found problems";

  // A failed attempt keeps the last known expiry.
  Sample failed;
  failed.status = Status::down;
  failed.error = ErrorClass::timeout;
  live.probes[0].observe(failed);
  EXPECT_EQ(live.probes[0].cert_expiry_ms, std::optional<int64_t>(expiry_ms));
}

TEST_F(TlsProbeTest, KeptConnectionReportsTheExpiryOfItsOneHandshake) {
  ProbeConfig config = probe(soon);
  std::get<HttpSettings>(config.settings).reuse_connection = true;
  const int64_t expiry_ms = not_after_ms(certificates_->file("soon.pem"));
  auto samples = test::run_probes_for({config}, std::chrono::milliseconds(1200));
  ASSERT_GE(samples[0].size(), 3u);
  int handshakes = 0;
  for (const Sample& sample : samples[0]) {
    EXPECT_EQ(sample.status, Status::degraded) << sample.detail;
    EXPECT_EQ(sample.cert_expiry_ms, std::optional<int64_t>(expiry_ms));
    if (sample.phases.tls_us > 0) ++handshakes;
  }
  EXPECT_EQ(handshakes, 1);  // the rest reused the connection, and still knew the expiry
}

// What the probe's own origin (https, home) is trusted with goes to no other:
// not to plain http on another port (a downgrade), not to another https origin;
// home asks for a client certificate and the others would take one.
TEST_F(TlsProbeTest, RedirectsCarryHeadersCredentialsAndClientCertificateOnlyToTheOwnOrigin) {
  const int home = test::free_port();
  int plain = test::free_port();
  while (plain == home) plain = test::free_port();
  int other = test::free_port();
  while (other == home || other == plain) other = test::free_port();
  const std::string valid_cert = certificates_->file("valid.pem");
  const std::string valid_key = certificates_->file("valid.key");
  const std::string client_ca = certificates_->file("client-ca.pem");
  test::CustomNginxServer server({home, plain, other}, [&](const std::string& dir) {
    const std::string tls = fmt::format(
        "ssl_certificate {}; ssl_certificate_key {}; ssl_client_certificate {}; ssl_verify_client "
        "optional;",
        valid_cert, valid_key, client_ca);
    const std::string log = fmt::format("access_log {}/logs/seen.log seen;", dir);
    return fmt::format(
        R"(  log_format seen '$server_port $uri key=$http_x_api_key auth=$http_authorization '
                   'cert=$ssl_client_verify';
  server {{
    listen 127.0.0.1:{1} ssl; {4} {0}
    location = /to-plain {{ return 302 http://127.0.0.1:{2}/final; }}
    location = /to-other {{ return 302 https://127.0.0.1:{3}/final; }}
    location = /to-same {{ return 302 /final; }}
    location = /final {{ default_type text/plain; return 200 "OK"; }}
  }}
  server {{
    listen 127.0.0.1:{2}; {0}
    location = /final {{ default_type text/plain; return 200 "OK"; }}
  }}
  server {{
    listen 127.0.0.1:{3} ssl; {4} {0}
    location = /final {{ default_type text/plain; return 200 "OK"; }}
  }}
)",
        log, home, plain, other, tls);
  });
  auto read_log = [&] {
    std::vector<std::string> lines;
    std::istringstream log(test::read_file(server.file("logs/seen.log")));
    for (std::string line; std::getline(log, line);) {
      const std::string port = line.substr(0, line.find(' '));
      const std::string origin = port == std::to_string(home)    ? "https home"
                                 : port == std::to_string(plain) ? "http plain"
                                 : port == std::to_string(other) ? "https other"
                                                                 : port;
      lines.push_back(origin + line.substr(port.size()));
    }
    return lines;
  };
  const std::string home_sees =
      "key=key-for-home-only auth=Basic cHJvYmU6aHVudGVyMg== cert=SUCCESS";
  struct Case {
    std::string name;
    std::string path;
    std::vector<std::string> requests;
  };
  const std::vector<Case> cases{
      {"https to http is a downgrade",
       "/to-plain",
       {"https home /to-plain " + home_sees, "http plain /final key=- auth=- cert=-"}},
      {"another https origin",
       "/to-other",
       {"https home /to-other " + home_sees, "https other /final key=- auth=- cert=NONE"}},
      {"the same origin",
       "/to-same",
       {"https home /to-same " + home_sees, "https home /final " + home_sees}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ProbeConfig config = http_probe(fmt::format("https://127.0.0.1:{}{}", home, c.path));
    auto& http = std::get<HttpSettings>(config.settings);
    http.ca_file = certificates_->file("ca.pem");
    http.client_cert = certificates_->file("client.pem");
    http.client_key = certificates_->file("client.key");
    http.follow_redirects = true;
    http.headers = {{"X-Api-Key", "key-for-home-only"}};
    http.username = "probe";  // "cHJvYmU6aHVudGVyMg==" in basic credentials
    http.password = "hunter2";
    const size_t logged_before = read_log().size();
    Sample sample = probe_once(config);
    EXPECT_EQ(sample.status, Status::up) << sample.detail;
    std::vector<std::string> requests;
    test::wait_until(  // nginx logs a request just after answering it
        [&] {
          const std::vector<std::string> all = read_log();
          requests.assign(
              all.begin() + static_cast<std::ptrdiff_t>(std::min(logged_before, all.size())),
              all.end());
          return requests.size() >= c.requests.size();
        },
        std::chrono::seconds(2), std::chrono::milliseconds(10));
    EXPECT_EQ(requests, c.requests);
  }
}

}  // namespace
}  // namespace blip
