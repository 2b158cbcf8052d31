#include "support/tsdb_servers.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <signal.h>

#include <stdexcept>

#include "blip/remote/remote_write.hpp"
#include "support/http_client.hpp"

namespace blip::test {
namespace {

// Polls `url` until it answers 200.
bool wait_until_ready(const std::string& url) {
  return wait_until([&] { return http_request(url, "GET", {}, 1000).status == 200; },
                    std::chrono::seconds(30), std::chrono::milliseconds(100));
}

}  // namespace

PrometheusServer::PrometheusServer() : port_(free_port()) {
  dir_.write("prometheus.yml", "global:\n  scrape_interval: 1h\n");
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"prometheus", "--config.file=" + dir_.file("prometheus.yml"),
                               "--storage.tsdb.path=" + dir_.file("data"),
                               fmt::format("--web.listen-address=127.0.0.1:{}", port_),
                               "--web.enable-remote-write-receiver"},
      dir_.file("stdout"), dir_.file("stderr"));
  if (!wait_until_ready(url() + "/-/ready"))
    throw std::runtime_error("prometheus did not start: " + read_file(dir_.file("stderr")));
}

PrometheusServer::~PrometheusServer() {
  process_->signal(SIGTERM);
  process_->wait(10'000);
}

std::string PrometheusServer::url() const { return fmt::format("http://127.0.0.1:{}", port_); }

VictoriaMetricsServer::VictoriaMetricsServer() : port_(free_port()) {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"victoria-metrics", "-storageDataPath=" + dir_.file("data"),
                               fmt::format("-httpListenAddr=127.0.0.1:{}", port_),
                               "-search.latencyOffset=1s"},
      dir_.file("stdout"), dir_.file("stderr"));
  if (!wait_until_ready(url() + "/health"))
    throw std::runtime_error("victoria-metrics did not start: " + read_file(dir_.file("stderr")));
}

VictoriaMetricsServer::~VictoriaMetricsServer() {
  process_->signal(SIGTERM);
  process_->wait(10'000);
}

std::string VictoriaMetricsServer::url() const { return fmt::format("http://127.0.0.1:{}", port_); }

long remote_write(const std::string& write_url, const std::vector<Series>& series) {
  const std::string body = encode_write_request(series);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  curl_slist* headers = nullptr;
  for (const char* line : {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
                           "X-Prometheus-Remote-Write-Version: 0.1.0"})
    headers = curl_slist_append(headers, line);
  std::string answer;
  curl_easy_setopt(easy.get(), CURLOPT_URL, write_url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 10'000L);
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(
      easy.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
        static_cast<std::string*>(sink)->append(data, size * count);
        return size * count;
      });
  const CURLcode result = curl_easy_perform(easy.get());
  curl_slist_free_all(headers);
  long status = 0;
  if (result == CURLE_OK) curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status / 100 != 2)
    fmt::print(stderr, "remote_write to {}: {} {}\n", write_url, status, answer);
  return status;
}

}  // namespace blip::test
