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

}  // namespace blip
