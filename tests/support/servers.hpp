#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// A private nginx on 127.0.0.1 (one process, so SIGSTOP freezes all of it) with:
//   /health -> 200 "OK"     /missing -> 404        /wrong-body -> 200 "NOPE"
//   /loop -> 302 to itself  /big -> a 100 MB body  /slow -> "OK" after 3 s
class NginxServer {
 public:
  NginxServer();
  ~NginxServer();
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  void freeze() const;  // SIGSTOP: connections queue in the kernel, nothing answers
  void thaw() const;    // SIGCONT
  pid_t pid() const { return process_->pid(); }

 private:
  TempDir dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// One HTTPS server block of a TlsNginxServer: its certificate (chain) and key,
// and, for mutual TLS, the CA whose client certificates it requires.
struct TlsSite {
  std::string certificate_file;
  std::string key_file;
  std::string client_ca_file;  // empty: no client certificate asked for
};

// A private nginx on 127.0.0.1 serving each site over HTTPS on its own port,
// each with /health -> 200 "OK".
class TlsNginxServer {
 public:
  explicit TlsNginxServer(const std::vector<TlsSite>& sites);
  ~TlsNginxServer();
  int port(size_t site) const { return ports_.at(site); }
  std::string url(size_t site, const std::string& path,
                  const std::string& host = "127.0.0.1") const;

 private:
  TempDir dir_;
  std::vector<int> ports_;
  std::unique_ptr<ChildProcess> process_;
};

// A private nginx on 127.0.0.1 serving what a test writes into its http block
// (server blocks, log formats), for routes the servers above lack. The text
// comes from `http_block(dir)`, so access logs can go to file("logs/...");
// it waits until every port in `ports` accepts connections.
class CustomNginxServer {
 public:
  CustomNginxServer(const std::vector<int>& ports,
                    const std::function<std::string(const std::string& dir)>& http_block);
  ~CustomNginxServer();
  std::string file(const std::string& name) const { return dir_.file(name); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace blip::test

#include "blip/config/config.hpp"
#include "blip/core/sample.hpp"

namespace blip::test {

// One attempt through the real loop, probe and scheduler (run_each_probe_once).
Sample probe_once(const ProbeConfig& config);

ProbeConfig http_probe(const std::string& url, int64_t timeout_ms = 1000);
ProbeConfig tcp_probe(const std::string& host, int port, int64_t timeout_ms = 1000);
// Every 100 ms, as the Postgres and Redis tests probe.
ProbeConfig postgres_probe(const std::string& name, const std::string& dsn,
                           PostgresSettings::Mode mode = PostgresSettings::Mode::read,
                           int64_t timeout_ms = 1000);
ProbeConfig redis_probe(int port, RedisSettings::Mode mode = RedisSettings::Mode::ping,
                        int64_t timeout_ms = 1000);

}  // namespace blip::test

#include <chrono>
#include <functional>

namespace blip::test {

// Runs the probes on the real scheduler for `duration` (then drains), while
// `meanwhile` runs on another thread (to freeze or kill a server mid-run).
// Returns each probe's samples in send order.
std::vector<std::vector<Sample>> run_probes_for(const std::vector<ProbeConfig>& configs,
                                                std::chrono::milliseconds duration,
                                                const std::function<void()>& meanwhile = {});

// The largest gap between consecutive send times, in ms.
int64_t largest_gap_ms(const std::vector<Sample>& samples);

}  // namespace blip::test
