#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace blip {

// Exit statuses shared by every subcommand (see DESIGN.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitDown = 1;
inline constexpr int kExitUsage = 2;

struct CheckOptions {
  std::string config_dir = "./probes.d";
};
int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err);

struct OnceOptions {
  std::string config_dir = "./probes.d";
  std::string probe;  // empty: all
};
int run_once(const OnceOptions& options, std::ostream& out, std::ostream& err);

struct RunOptions {
  std::string config_dir = "./probes.d";
  std::string db_path = "./blip.db";
  std::string retain = "14d";
  std::string retain_rollups = "400d";
  std::string store_queue = "10m";  // samples held in memory while the database cannot be written
  std::string listen = "127.0.0.1:9185";  // the feed; "off" for none
  unsigned feed_max_connections = 256;
  unsigned feed_max_connections_per_client = 32;
  std::string feed_idle_timeout = "5s";
};
int run_daemon(const RunOptions& options);

struct ReportOptions {
  std::string db_path = "./blip.db";
  std::string since = "24h";
  std::string from;
  std::string to;
  std::string probe;
  std::string format = "table";
  std::string period = "auto";  // or a duration that forces the pattern's period
  std::string tz;               // also show times in this zone (table only)
};
int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err);

struct HealthOptions {
  std::string listen = "127.0.0.1:9185";
};
// Asks a running blip's /healthz: 0 healthy, 1 not (or unreachable).
int run_health(const HealthOptions& options, std::ostream& out, std::ostream& err);

}  // namespace blip
