#include "blip/alerts/heartbeat.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "blip/adapters/curl_easy.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"
#include "blip/core/loop.hpp"

namespace blip {
namespace {

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

// A trouble is logged when it starts and then once a minute at most, not once a beat.
constexpr int64_t kLogEveryMs = 60'000;

}  // namespace

struct Heartbeats::Beat {
  HeartbeatConfig config;
  std::string shown;  // the URL as logs show it: its path is often the secret
  CurlEasy easy;
  CurlList headers;
  Timer timer;
  bool in_flight = false;
  int64_t logged_ms = 0;  // when its last trouble was logged (0: it is well)

  // `outcome`: failed or withheld.
  void log_trouble(std::string_view outcome, const std::string& why) {
    const int64_t now = mono_now_us() / 1000;
    if (logged_ms != 0 && now - logged_ms < kLogEveryMs) return;
    logged_ms = now;
    log_warn("heartbeat: not sent outcome={} why={} url={}", outcome, why, shown);
  }
};

Heartbeats::Heartbeats(uv_loop_t* loop, CurlMultiUv& curl,
                       const std::vector<HeartbeatConfig>& configs, Unwell unwell)
    : curl_(curl), unwell_(std::move(unwell)) {
  for (const HeartbeatConfig& config : configs) {
    auto beat = std::make_unique<Beat>();
    beat->config = config;
    beat->shown = url_origin(config.url) + "/***";
    for (const auto& [name, value] : config.headers) beat->headers.append(name + ": " + value);
    Beat* raw = beat.get();
    beat->timer = Timer(loop, [this, raw] { this->beat(*raw); });
    // The first beat once the loop has run a while: blip has started, not just begun to.
    const auto every = static_cast<uint64_t>(config.every_ms);
    beat->timer.start(std::min<uint64_t>(every, 5'000), every);
    beats_.push_back(std::move(beat));
  }
}

Heartbeats::~Heartbeats() { stop(); }

void Heartbeats::stop() {
  for (auto& beat : beats_) {
    beat->timer.stop();
    if (beat->in_flight) curl_.remove(beat->easy.get());
    beat->in_flight = false;
  }
}

void Heartbeats::beat(Beat& beat) {
  if (beat.in_flight) {
    ++counts_.failed;
    beat.log_trouble("failed", "the last beat is still unanswered");
    return;
  }
  if (std::optional<std::string> why = unwell_ ? unwell_() : std::nullopt) {
    ++counts_.withheld;
    beat.log_trouble("withheld", *why);
    return;
  }
  CURL* easy = beat.easy.get();
  curl_easy_reset(easy);
  curl_easy_setopt(easy, CURLOPT_URL, beat.config.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, beat.headers.get());
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(beat.config.timeout_ms));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);  // see AlertSender: never join a resolver
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "blip/0.1");
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard_body);
  beat.in_flight = true;
  curl_.add(easy, [this, &beat](CURLcode code) { finished(beat, code); });
}

void Heartbeats::finished(Beat& beat, CURLcode code) {
  beat.in_flight = false;
  long status = 0;
  if (code == CURLE_OK) curl_easy_getinfo(beat.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (code == CURLE_OK && status >= 200 && status < 300) {
    ++counts_.sent;
    if (beat.logged_ms != 0) log_info("heartbeat: sent again url={}", beat.shown);
    beat.logged_ms = 0;
    return;
  }
  ++counts_.failed;
  beat.log_trouble("failed", code == CURLE_OK ? fmt::format("HTTP status {}", status)
                                              : std::string(curl_easy_strerror(code)));
}

}  // namespace blip
