#include "support/engines.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "blip/remote/remote_write.hpp"
#include "support/http_client.hpp"

namespace blip::test {
namespace {

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string escaped(const std::string& text) {
  std::string out;
  char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  if (escaped) out = escaped;
  curl_free(escaped);
  return out;
}

}  // namespace

EngineCommand victoria_metrics() {
  return {"victoria-metrics",
          {"-httpListenAddr=127.0.0.1:{port}", "-storageDataPath={dir}/data",
           "-search.latencyOffset=1s", "-dedup.minScrapeInterval=1ms", "-search.disableCache"},
          "/health",
          {}};
}

EngineCommand vmagent(const std::vector<std::string>& remote_write_urls) {
  EngineCommand command{
      "vmagent",
      {"-httpListenAddr=127.0.0.1:{port}", "-remoteWrite.tmpDataPath={dir}/queue"},
      "/health",
      {}};
  for (const std::string& url : remote_write_urls)
    command.args.push_back("-remoteWrite.url=" + url);
  return command;
}

EngineCommand prometheus_receiver(const std::string& yaml) {
  const std::string config = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" + yaml;
  return {"prometheus",
          {"--config.file={dir}/prometheus.yml", "--storage.tsdb.path={dir}/data",
           "--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver"},
          "/-/ready",
          {{"prometheus.yml", config}}};
}

EngineCommand alertmanager(const std::string& webhook_url) {
  const std::string config = fmt::format(
      "route:\n"
      "  receiver: webhook\n"
      "  group_wait: 1s\n"
      "  group_interval: 1s\n"
      "  repeat_interval: 1h\n"
      "receivers:\n"
      "  - name: webhook\n"
      "    webhook_configs:\n"
      "      - url: '{}'\n"
      "        send_resolved: true\n",
      webhook_url);
  return {"prometheus-alertmanager",
          {"--config.file={dir}/alertmanager.yml", "--storage.path={dir}/data",
           "--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="},
          "/-/ready",
          {{"alertmanager.yml", config}}};
}

bool installed(const std::string& binary) {
  const char* path = std::getenv("PATH");
  std::stringstream folders(path ? path : "/usr/bin:/bin");
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    if (!folder.empty() && access((folder + "/" + binary).c_str(), X_OK) == 0) return true;
  }
  return false;
}

Engine::Engine(EngineCommand command) : command_(std::move(command)), port_(free_port()) {
  for (const auto& [name, content] : command_.files)
    dir_.write(name,
               replaced(replaced(content, "{port}", std::to_string(port_)), "{dir}", dir_.path()));
  start();
}

Engine::~Engine() {
  if (process_ && process_->running()) kill();
}

std::string Engine::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void Engine::start() {
  std::vector<std::string> argv{command_.binary};
  for (const std::string& arg : command_.args) {
    argv.push_back(replaced(replaced(arg, "{port}", std::to_string(port_)), "{dir}", dir_.path()));
  }
  // Each start logs to a file of its own: what an earlier run said stays readable.
  const std::string log = dir_.file("engine-" + std::to_string(++starts_) + ".log");
  process_ = std::make_unique<ChildProcess>(argv, log, log);
  const bool ready = wait_until(
      [&] {
        return !process_->running() ||
               http_request(url(command_.ready_path), "GET", {}, 1000).status == 200;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(100));
  if (!ready || !process_->running()) {
    throw std::runtime_error(fmt::format("{} did not become ready on port {}:\n{}", command_.binary,
                                         port_, read_file(log)));
  }
}

int Engine::stop() {
  if (process_->running()) process_->signal(SIGTERM);
  return process_->wait(60'000);
}

void Engine::kill() {
  if (process_->running()) process_->signal(SIGKILL);
  process_->wait(10'000);
}

bool Engine::running() const { return process_ && process_->running(); }

std::string Engine::log() const {
  std::string text;
  for (int start = 1; start <= starts_; ++start)
    text += read_file(dir_.file("engine-" + std::to_string(start) + ".log"));
  return text;
}

std::vector<QueriedSeries> query_points(const std::string& base_url, const std::string& selector,
                                        const std::string& range, int64_t at_ms) {
  const std::string query = selector + "[" + range + "]";
  const HttpResponse response =
      http_request(fmt::format("{}/api/v1/query?query={}&time={}.{:03}", base_url, escaped(query),
                               at_ms / 1000, at_ms % 1000),
                   "GET", {}, 10'000);
  if (response.status != 200) {
    throw std::runtime_error(fmt::format("query {} at {}: status {} {} {}", query, at_ms,
                                         response.status, response.error, response.body));
  }
  const auto answer = nlohmann::json::parse(response.body);
  std::vector<QueriedSeries> out;
  for (const auto& result : answer.at("data").at("result")) {
    QueriedSeries& series = out.emplace_back();
    for (const auto& [name, value] : result.at("metric").items())
      series.labels[name] = value.get<std::string>();
    for (const auto& point : result.at("values")) {
      series.points.emplace_back(std::llround(point.at(0).get<double>() * 1000),
                                 std::stod(point.at(1).get<std::string>()));
    }
  }
  return out;
}

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
