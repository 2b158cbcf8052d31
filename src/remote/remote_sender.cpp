#include "blip/remote/remote_sender.hpp"

#include <curl/curl.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <optional>

#include "blip/adapters/curl_easy.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"
#include "blip/remote/remote_write.hpp"
#include "blip/remote/series.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

constexpr int64_t kNewEndpointBackMs = 3'600'000;
// A refusing or failing endpoint is logged once a minute, with what happened since.
constexpr int64_t kLogEveryUs = 60'000'000;

size_t point_count(const std::vector<Series>& series) {
  size_t points = 0;
  for (const Series& one : series) points += one.points.size();
  return points;
}

// What one round read: the series, the cursors they move on to, what they hold.
struct Round {
  std::vector<Series> series;
  std::vector<ShipCursor> cursors;
  size_t samples = 0;
  int64_t oldest_ms = INT64_MAX;  // the oldest sample in it
  bool full = false;              // stopped at the size bound: more is waiting
};

}  // namespace

RemoteSender::RemoteSender(RemoteWriteConfig config, RemoteSenderOptions options, SaveCursors save)
    : config_(std::move(config)),
      options_(std::move(options)),
      save_(std::move(save)),
      endpoint_(endpoint_label(config_.url)) {
  stats_.endpoint = endpoint_;
  thread_ = std::thread([this] { run(); });
}

RemoteSender::~RemoteSender() { stop(); }

void RemoteSender::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void RemoteSender::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

namespace {
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}
}  // namespace

RemoteWriteStats RemoteSender::stats() const {
  std::lock_guard lock(mutex_);
  RemoteWriteStats stats = stats_;
  if (retrying_oldest_ms_ != INT64_MAX)
    stats.lag_seconds = static_cast<double>(wall_now_ms() - retrying_oldest_ms_) / 1e3;
  return stats;
}

bool RemoteSender::pause(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  stats_.cpu_seconds = thread_cpu_seconds();
  return !wake_.wait_for(lock, wait, [&] { return stopping_; });
}

// One curl handle for all of a sender's requests: its connection to the endpoint is kept and
// reused (a new one is made only when the endpoint or a failure closed it).
struct RemoteSender::Connection {
  std::optional<CurlEasy> easy;  // made again before a request while curl could not make one
  CurlList headers;
};

void RemoteSender::set_up(Connection& connection) {
  connection.easy.emplace();
  connection.headers.clear();
  connection.headers.append("Content-Encoding: snappy");
  connection.headers.append("Content-Type: application/x-protobuf");
  connection.headers.append("X-Prometheus-Remote-Write-Version: 0.1.0");
  connection.headers.append("User-Agent: blip");
  for (const auto& [name, value] : config_.headers) connection.headers.append(name + ": " + value);
  CURL* handle = connection.easy->get();
  curl_easy_setopt(handle, CURLOPT_URL, config_.url.c_str());
  curl_easy_setopt(handle, CURLOPT_POST, 1L);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, connection.headers.get());
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout_ms));
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, discard_body);
  if (!config_.username.empty()) {
    curl_easy_setopt(handle, CURLOPT_USERNAME, config_.username.c_str());
    curl_easy_setopt(handle, CURLOPT_PASSWORD, config_.password.c_str());
  }
  // A stop does not wait out a hanging endpoint's timeout.
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, this);
  curl_easy_setopt(
      handle, CURLOPT_XFERINFOFUNCTION,
      +[](void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
        auto* sender = static_cast<RemoteSender*>(self);
        std::lock_guard lock(sender->mutex_);
        return sender->stopping_ ? 1 : 0;
      });
}

RemoteSender::Outcome RemoteSender::post(Connection& connection, const std::string& body,
                                         size_t points) {
  if (!connection.easy || !connection.easy->get()) set_up(connection);
  CURL* handle = connection.easy->get();
  curl_easy_setopt(handle, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  const CURLcode code = curl_easy_perform(handle);
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  std::lock_guard lock(mutex_);
  if (code == CURLE_ABORTED_BY_CALLBACK) return Outcome::stopped;
  if (code == CURLE_OK && status >= 200 && status < 300) return Outcome::acknowledged;
  const bool log_now = mono_now_us() - last_problem_log_us_ >= kLogEveryUs;
  if (log_now) last_problem_log_us_ = mono_now_us();
  if (code == CURLE_OK && status >= 400 && status < 500 && status != 429) {
    stats_.rejected += points;
    if (!log_now) return Outcome::rejected;
    log_error(
        "remote_write: rejected endpoint={} status={} points={} (dropped; Prometheus answers 400 "
        "to a whole request holding a sample older than its head block: set "
        "out_of_order_time_window to take a backlog) rejected_total={}",
        endpoint_, status, points, stats_.rejected);
    return Outcome::rejected;
  }
  stats_.retried += points;
  if (!log_now) return Outcome::failed;
  if (code != CURLE_OK) {
    log_warn("remote_write: failed endpoint={} error=\"{}\" points={} (retrying)", endpoint_,
             curl_easy_strerror(code), points);
  } else {
    log_warn("remote_write: failed endpoint={} status={} points={} (retrying)", endpoint_, status,
             points);
  }
  return Outcome::failed;
}

void RemoteSender::run() {
  std::unique_ptr<Store> store;
  Connection connection;  // set up by the first request
  WriteRequestEncoder encoder;
  std::map<std::string, int64_t> cursors;
  const int64_t started_ms = wall_now_ms();
  bool open_failure_logged = false;
  int64_t pending_checked_ms = 0;
  // Stored samples past the cursors, at most every 5 s (counted per minute, from the rollups).
  const auto refresh_pending = [&](int64_t now_ms, const std::vector<StoredComponent>& probes) {
    if (now_ms - pending_checked_ms < 5'000) return;
    int64_t pending = 0;
    for (const StoredComponent& probe : probes) {
      auto cursor = cursors.find(probe.name);
      pending +=
          store->rollup_totals(probe.name, cursor == cursors.end() ? 0 : cursor->second + 1, now_ms)
              .samples;
    }
    std::lock_guard lock(mutex_);
    stats_.pending_samples = pending;
    pending_checked_ms = now_ms;
  };
  while (true) {
    if (!store) {
      try {
        store = std::make_unique<Store>(options_.db_path, Store::Mode::read_only);
        cursors = store->ship_cursors(endpoint_);
        log_info("remote_write: started endpoint={} probes_with_cursor={}", endpoint_,
                 cursors.size());
      } catch (const StoreError& error) {
        if (!open_failure_logged) log_warn("remote_write: cannot read store: {}", error.what());
        open_failure_logged = true;
        if (!pause(options_.poll)) return;
        continue;
      }
    }
    const int64_t now_ms = wall_now_ms();
    Round round;
    try {
      // The round's reads share one snapshot (and each its kept statement).
      const Store::ReadTransaction snapshot(*store);
      const SpanReader reader(*store);
      const int64_t expired_before_ms = now_ms - options_.retain_ms;
      const std::vector<StoredComponent> probes = store->components();
      for (const StoredComponent& probe : probes) {
        if (round.samples >= options_.max_samples_per_request) {
          round.full = true;
          break;
        }
        auto cursor = cursors.find(probe.name);
        // A new endpoint (or probe) starts an hour back: what an engine's head block takes.
        // Older history is a backfill: `blip export --format openmetrics`.
        int64_t after_ms =
            cursor == cursors.end() ? started_ms - kNewEndpointBackMs : cursor->second;
        if (after_ms != INT64_MIN && after_ms < expired_before_ms) {
          // Pruned before it could be sent: counted from the rollups, which are kept longer.
          const RollupTotals lost =
              store->rollup_totals(probe.name, after_ms + 1, expired_before_ms);
          if (lost.samples > 0) {
            log_warn("remote_write: expired endpoint={} probe={} samples={} (older than --retain)",
                     endpoint_, probe.name, lost.samples);
            std::lock_guard lock(mutex_);
            stats_.expired += static_cast<uint64_t>(lost.samples);
          }
          after_ms = expired_before_ms;
        }
        const ProbeSpan span = reader.read(probe, after_ms, INT64_MAX,
                                           options_.max_samples_per_request - round.samples,
                                           settle_samples(probe), false);
        if (span.next_after_ms == span.after_ms) continue;
        append_probe_series(span, options_.vantage, round.series);
        round.samples += span.samples.size();
        if (!span.samples.empty())
          round.oldest_ms = std::min(round.oldest_ms, span.samples.front().sent_ms);
        round.cursors.push_back({endpoint_, probe.name, span.next_after_ms});
      }
      auto blind_cursor = cursors.find("");
      const int64_t blind_after_ms =
          blind_cursor == cursors.end() ? started_ms - kNewEndpointBackMs : blind_cursor->second;
      std::vector<BlindWindow> windows;
      for (BlindWindow& window : store->blind_windows(blind_after_ms, INT64_MAX)) {
        if (window.start_ms > blind_after_ms) windows.push_back(std::move(window));
      }
      if (!windows.empty()) {
        std::sort(windows.begin(), windows.end(),
                  [](const auto& a, const auto& b) { return a.start_ms < b.start_ms; });
        append_blind_series(windows, options_.vantage, round.series);
        round.cursors.push_back({endpoint_, "", windows.back().start_ms});
      }
      refresh_pending(now_ms, probes);
    } catch (const StoreError& error) {
      log_warn("remote_write: cannot read store: {}", error.what());
      store.reset();
      if (!pause(options_.poll)) return;
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      stats_.lag_seconds =
          round.oldest_ms == INT64_MAX ? 0.0 : static_cast<double>(now_ms - round.oldest_ms) / 1e3;
    }
    if (round.cursors.empty()) {
      if (!pause(options_.poll)) return;
      continue;
    }
    const size_t points = point_count(round.series);
    const std::string& body = encoder.encode(round.series);
    std::chrono::milliseconds backoff = options_.first_backoff;
    Outcome outcome = Outcome::failed;
    while ((outcome = post(connection, body, points)) == Outcome::failed) {
      {
        std::lock_guard lock(mutex_);
        retrying_oldest_ms_ = round.oldest_ms;
      }
      // The backlog grows while the endpoint is away: /metrics shows it (a failed read is
      // left to the next round).
      try {
        refresh_pending(wall_now_ms(), store->components());
      } catch (const StoreError&) {
      }
      if (!pause(backoff)) return;
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
    {
      std::lock_guard lock(mutex_);
      retrying_oldest_ms_ = INT64_MAX;
    }
    if (outcome == Outcome::stopped) return;
    // Acknowledged, or refused for good (dropped, counted, logged): either way on past it.
    if (!save_(round.cursors)) {
      log_warn("remote_write: cursor not stored endpoint={} (the store is not writing)", endpoint_);
    }
    for (const ShipCursor& cursor : round.cursors) cursors[cursor.probe] = cursor.sent_ms;
    {
      std::lock_guard lock(mutex_);
      if (outcome == Outcome::acknowledged) stats_.sent += points;
      stats_.pending_samples =
          std::max<int64_t>(0, stats_.pending_samples - static_cast<int64_t>(round.samples));
    }
    if (!pause(round.full ? options_.catch_up_pause : options_.poll)) return;
  }
}

}  // namespace blip
