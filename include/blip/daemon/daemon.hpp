#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "blip/config/config.hpp"
#include "blip/feed/feed_server.hpp"
#include "blip/recorder/live_state.hpp"

namespace blip {

// What `blip run` was told, parsed and checked.
struct DaemonSettings {
  std::string config_dir;  // read again on each reload
  std::string db_path;
  std::string vantage;  // the `vantage` label on everything shipped; stored in the database
  int64_t retain_ms = 0;
  int64_t retain_rollups_ms = 0;
  int64_t store_queue_ms = 0;  // how long the writer's queue may hold samples the database refuses
  std::optional<ListenAddress> listen;         // the private face; none: no listener
  std::optional<ListenAddress> public_listen;  // the public face
  FeedLimits feed_limits;
  FeedAccess feed_access;
  int64_t open_files_limit = 0;  // 0: not known, not logged
  bool handle_signals =
      true;  // SIGTERM/SIGINT stop, SIGHUP reloads; off in tests sharing a process
};

// The daemon could not start (a port taken, a database that cannot be opened):
// what() is the whole message for the operator.
struct DaemonStartError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The running program: owns the loop and every part on it (scheduler, sample
// recorder, store writer, jobs, alerts, the snapshot board) and the feed's
// listeners, and orders their start, reload and shutdown. A sample goes
// probe -> scheduler -> recorder -> writer; the feed sees only the board.
class Daemon {
 public:
  // Listens, opens the store and builds every part; throws DaemonStartError.
  Daemon(LoadedConfig config, DaemonSettings settings);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  // Probes until a stop has stored what it could; returns the exit status
  // (0, or 1 when samples could not be stored). Once per Daemon.
  int run();
  // From any thread, any time after construction: as SIGTERM (a second call
  // abandons probes in flight) and as SIGHUP (the config directory again).
  void request_stop();
  void request_reload();
  // The last snapshot published (every second, after a transition, after a reload).
  std::shared_ptr<const LiveSnapshot> snapshot() const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace blip
