#pragma once
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/remote/remote_write_stats.hpp"
#include "blip/store/rows.hpp"

namespace blip {

struct RemoteSenderOptions {
  std::string db_path;
  std::string vantage;
  int64_t retain_ms = 14 * 86'400'000LL;
  size_t max_samples_per_request = 5'000;        // raw samples; each makes two or three points
  std::chrono::milliseconds poll{1000};          // how often the store is read when caught up
  std::chrono::milliseconds catch_up_pause{50};  // between requests while behind: a bounded rate
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds max_backoff{60'000};
};

// Ships every stored sample to one remote-write endpoint, from its own thread: it reads what
// the writer stored (its own read-only connection), in order, from a cursor per probe kept in
// the database, and moves the cursor on only once the endpoint has acknowledged. It never
// touches the probe loop and never holds the writer.
class RemoteSender {
 public:
  // Stores cursors (the StoreWriter): true once a write holds them.
  using SaveCursors = std::function<bool(std::vector<ShipCursor>)>;
  RemoteSender(RemoteWriteConfig config, RemoteSenderOptions options, SaveCursors save);
  RemoteSender(const RemoteSender&) = delete;
  RemoteSender& operator=(const RemoteSender&) = delete;
  ~RemoteSender();

  // Asks the thread to end after the request in flight (its cursor saved if acknowledged)
  // without waiting; stop() also waits for it. Both idempotent.
  void request_stop();
  void stop();
  RemoteWriteStats stats() const;
  const RemoteWriteConfig& config() const { return config_; }

 private:
  enum class Outcome { acknowledged, rejected, failed, stopped };
  struct Connection;
  void run();
  // Sets up the one curl handle the thread posts every request with.
  void set_up(Connection& connection);
  Outcome post(Connection& connection, const std::string& body, size_t points);
  // Waits up to `wait` unless stopping; false once stopping.
  bool pause(std::chrono::milliseconds wait);

  RemoteWriteConfig config_;
  RemoteSenderOptions options_;
  SaveCursors save_;
  std::string endpoint_;  // the cursor's key and the metrics' label

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  RemoteWriteStats stats_;
  int64_t last_problem_log_us_ = INT64_MIN / 2;  // monotonic
  // The oldest sample of a request that failed and is being retried (INT64_MAX: none): while the
  // endpoint is away the lag grows from it, read at stats(), not only when a round is read.
  int64_t retrying_oldest_ms_ = INT64_MAX;
  std::thread thread_;
};

}  // namespace blip
