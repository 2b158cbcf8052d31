#include "support/servers.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace blip::test {

namespace {

// The part every private nginx's configuration shares: one process in the
// foreground, its files under `dir`, and the opening of the http block.
std::string nginx_preamble(const std::string& dir) {
  return fmt::format(R"(
daemon off;
master_process off;
worker_processes 1;
pid {0}/nginx.pid;
error_log {0}/logs/error.log;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {0}/tmp;
  proxy_temp_path {0}/tmp;
  fastcgi_temp_path {0}/tmp;
  uwsgi_temp_path {0}/tmp;
  scgi_temp_path {0}/tmp;
)",
                     dir);
}

}  // namespace

NginxServer::NginxServer() : port_(free_port()) {
  std::filesystem::create_directories(dir_.file("logs"));
  std::filesystem::create_directories(dir_.file("tmp"));
  {
    // Sparse: 100 MB of body without 100 MB of disk.
    std::ofstream big(dir_.file("big.bin"));
    big.seekp(100 * 1024 * 1024 - 1);
    big.put('\0');
  }
  dir_.write("nginx.conf", "\nload_module /usr/lib/nginx/modules/ngx_http_echo_module.so;\n" +
                               nginx_preamble(dir_.path()) +
                               fmt::format(R"(  server {{
    listen 127.0.0.1:{1} backlog=4096;
    location = /health {{ default_type text/plain; return 200 "OK"; }}
    location = /missing {{ return 404; }}
    location = /wrong-body {{ default_type text/plain; return 200 "NOPE"; }}
    location = /loop {{ return 302 /loop; }}
    location = /big {{ default_type application/octet-stream; alias {0}/big.bin; }}
    location = /slow {{ default_type text/plain; echo_sleep 3; echo "OK"; }}
  }}
}}
)",
                                           dir_.path(), port_));
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"nginx", "-e", dir_.file("logs/error.log"), "-c",
                               dir_.file("nginx.conf"), "-p", dir_.path()},
      dir_.file("logs/stdout"), dir_.file("logs/stderr"));
  if (!wait_for_port(port_)) {
    throw std::runtime_error("nginx did not start: " + read_file(dir_.file("logs/stderr")) +
                             read_file(dir_.file("logs/error.log")));
  }
}

NginxServer::~NginxServer() {
  thaw();
  process_->signal(SIGTERM);
  process_->wait(5000);
}

std::string NginxServer::url(const std::string& path) const {
  return fmt::format("http://127.0.0.1:{}{}", port_, path);
}
void NginxServer::freeze() const { process_->signal(SIGSTOP); }
void NginxServer::thaw() const { process_->signal(SIGCONT); }

TlsNginxServer::TlsNginxServer(const std::vector<TlsSite>& sites) {
  std::filesystem::create_directories(dir_.file("logs"));
  std::filesystem::create_directories(dir_.file("tmp"));
  std::string servers;
  for (const TlsSite& site : sites) {
    ports_.push_back(free_port());
    std::string client =
        site.client_ca_file.empty()
            ? ""
            : fmt::format("    ssl_client_certificate {};\n    ssl_verify_client on;\n",
                          site.client_ca_file);
    servers += fmt::format(R"(  server {{
    listen 127.0.0.1:{} ssl;
    ssl_certificate {};
    ssl_certificate_key {};
{}    location = /health {{ default_type text/plain; return 200 "OK"; }}
  }}
)",
                           ports_.back(), site.certificate_file, site.key_file, client);
  }
  dir_.write("nginx.conf", nginx_preamble(dir_.path()) + servers + "}\n");
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"nginx", "-e", dir_.file("logs/error.log"), "-c",
                               dir_.file("nginx.conf"), "-p", dir_.path()},
      dir_.file("logs/stdout"), dir_.file("logs/stderr"));
  for (int port : ports_) {
    if (!wait_for_port(port)) {
      throw std::runtime_error("nginx (TLS) did not start: " + read_file(dir_.file("logs/stderr")) +
                               read_file(dir_.file("logs/error.log")));
    }
  }
}

TlsNginxServer::~TlsNginxServer() {
  process_->signal(SIGTERM);
  process_->wait(5000);
}

std::string TlsNginxServer::url(size_t site, const std::string& path,
                                const std::string& host) const {
  return fmt::format("https://{}:{}{}", host, ports_.at(site), path);
}

CustomNginxServer::CustomNginxServer(
    const std::vector<int>& ports,
    const std::function<std::string(const std::string& dir)>& http_block) {
  std::filesystem::create_directories(dir_.file("logs"));
  std::filesystem::create_directories(dir_.file("tmp"));
  dir_.write("nginx.conf", "\nload_module /usr/lib/nginx/modules/ngx_http_echo_module.so;\n" +
                               nginx_preamble(dir_.path()) + http_block(dir_.path()) + "}\n");
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"nginx", "-e", dir_.file("logs/error.log"), "-c",
                               dir_.file("nginx.conf"), "-p", dir_.path()},
      dir_.file("logs/stdout"), dir_.file("logs/stderr"));
  for (int port : ports) {
    if (!wait_for_port(port)) {
      throw std::runtime_error("nginx did not start: " + read_file(dir_.file("logs/stderr")) +
                               read_file(dir_.file("logs/error.log")));
    }
  }
}

CustomNginxServer::~CustomNginxServer() {
  process_->signal(SIGTERM);
  process_->wait(5000);
}

}  // namespace blip::test

#include "blip/probes/probe_runtime.hpp"
#include "blip/scheduler/scheduler.hpp"

namespace blip::test {

Sample probe_once(const ProbeConfig& config) { return run_each_probe_once({config}).at(0); }

ProbeConfig http_probe(const std::string& url, int64_t timeout_ms) {
  ProbeConfig config;
  config.name = "http-under-test";
  config.type = "http";
  config.timeout_ms = timeout_ms;
  config.interval_ms = 250;
  HttpSettings http;
  http.url = url;
  config.target_display = redact_url(url);
  config.settings = http;
  return config;
}

ProbeConfig tcp_probe(const std::string& host, int port, int64_t timeout_ms) {
  ProbeConfig config;
  config.name = "tcp-under-test";
  config.type = "tcp";
  config.timeout_ms = timeout_ms;
  config.interval_ms = 250;
  config.settings = TcpSettings{host, std::to_string(port)};
  config.target_display = fmt::format("{}:{}", host, port);
  return config;
}

ProbeConfig postgres_probe(const std::string& name, const std::string& dsn,
                           PostgresSettings::Mode mode, int64_t timeout_ms) {
  ProbeConfig config;
  config.name = name;
  config.type = "postgres";
  config.interval_ms = 100;
  config.timeout_ms = timeout_ms;
  PostgresSettings pg;
  pg.dsn = dsn;
  pg.mode = mode;
  config.target_display = redact_postgres_dsn(dsn);
  config.settings = pg;
  return config;
}

ProbeConfig redis_probe(int port, RedisSettings::Mode mode, int64_t timeout_ms) {
  ProbeConfig config;
  config.name = "redis-under-test";
  config.type = "redis";
  config.interval_ms = 100;
  config.timeout_ms = timeout_ms;
  RedisSettings redis;
  redis.host = "127.0.0.1";
  redis.port = std::to_string(port);
  redis.mode = mode;
  config.target_display = fmt::format("127.0.0.1:{}", port);
  config.settings = redis;
  return config;
}

}  // namespace blip::test

#include <thread>

namespace blip::test {

std::vector<std::vector<Sample>> run_probes_for(const std::vector<ProbeConfig>& configs,
                                                std::chrono::milliseconds duration,
                                                const std::function<void()>& meanwhile) {
  std::vector<std::vector<Sample>> samples(configs.size());
  ProbeRuntime runtime(configs);
  Scheduler scheduler(
      runtime.loop.get(), configs, runtime.probes,
      [&](size_t index, const Sample& sample) { samples[index].push_back(sample); });
  Timer stop(runtime.loop.get(), [&] { scheduler.stop([&] { runtime.loop.stop(); }); });
  stop.start(static_cast<uint64_t>(duration.count()));
  std::thread background;
  if (meanwhile) background = std::thread(meanwhile);
  scheduler.start();
  runtime.loop.run();
  if (background.joinable()) background.join();
  return samples;
}

int64_t largest_gap_ms(const std::vector<Sample>& samples) {
  int64_t largest = 0;
  for (size_t i = 1; i < samples.size(); ++i)
    largest = std::max(largest, samples[i].sent_ms - samples[i - 1].sent_ms);
  return largest;
}

}  // namespace blip::test
