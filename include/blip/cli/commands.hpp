#pragma once
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

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
  std::string listen = "127.0.0.1:9185";  // the private face: everything; "off" for none
  std::string public_listen =
      "off";  // the public face: the page and documents in their public view
  std::string
      allowed_hosts;  // Host names the private face answers besides IP literals and localhost
  std::string trusted_proxies;           // addresses or networks whose X-Forwarded-For is believed
  unsigned feed_max_connections = 1024;  // per face
  unsigned feed_max_connections_per_client = 16;
  std::string feed_idle_timeout = "5s";
  std::string feed_request_timeout = "10s";
  std::string vantage;  // empty: the host name
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
  // The fleet report: every vantage point's series from a Prometheus-API server instead of --db.
  std::string prometheus;  // its base URL; empty: the database
  std::string vantages;    // comma-separated: only these count; empty: all that shipped
  int quorum = 0;          // vantages down at once that make an outage; 0: a majority
};
int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err);

struct ExportOptions {
  std::string db_path = "./blip.db";
  std::string since = "24h";
  std::string from;
  std::string to;
  std::string probe;             // empty: every probe and job
  std::string format = "jsonl";  // or csv, openmetrics
};
// Writes the stored raw samples of a range to `out`: one JSON object a line, CSV, or the
// series the remote-write sender ships as OpenMetrics text.
int run_export(const ExportOptions& options, std::ostream& out, std::ostream& err);

struct HealthOptions {
  std::string listen = "127.0.0.1:9185";
};
// Asks a running blip's /healthz: 0 healthy, 1 not (or unreachable).
int run_health(const HealthOptions& options, std::ostream& out, std::ostream& err);

struct ExecOptions {
  std::string job;
  std::string config_dir = "./probes.d";  // where the job's token is found
  std::string token_file;                 // or here (BLIP_PING_TOKEN wins over both)
  std::string listen = "127.0.0.1:9185";  // blip's listener, or
  std::string url;                        // its base URL from elsewhere, e.g. http://blip:9185
  std::vector<std::string> command;
};
// Runs the command, reporting its run to blip; returns the command's exit
// status (128 + the signal when a signal ended it, 127 when it cannot run).
int run_exec(const ExecOptions& options, std::ostream& err);

// Where `blip incident note` and `blip notice` find the private face and the operator's token.
struct OperatorClientOptions {
  std::string config_dir = "./probes.d";  // [page] operator_token(_file) is read from here, or
  std::string token_file;                 // from this file (BLIP_OPERATOR_TOKEN wins over both)
  std::string listen = "127.0.0.1:9185";  // blip's private face, or
  std::string url;                        // its base URL from elsewhere, e.g. http://blip:9185
};
struct IncidentNoteOptions {
  OperatorClientOptions client;
  std::string incident;  // its number: blip report's #N, summary.json's "number"
  std::string status;    // identified, monitoring or resolved
  std::vector<std::string> words;
};
struct NoticeOptions {
  OperatorClientOptions client;
  std::vector<std::string> words;
  std::vector<std::string> components;  // probe or job names
  std::string until;                    // a duration from now (2h) or ISO-8601 UTC; empty: no end
};
// 0 stored; 1 refused (wrong token, unknown incident, blip unreachable or not storing); 2 bad
// usage (a bad status, an empty or unfit text, an unknown component).
int run_incident_note(const IncidentNoteOptions& options, std::ostream& out, std::ostream& err);
int run_notice(const NoticeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace blip
