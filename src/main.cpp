#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "blip/cli/commands.hpp"
#include "blip/core/logging.hpp"
#include "blip/core/version.hpp"

int main(int argc, char** argv) {
  // hiredis writes with write(2): a peer that reset the connection must be an
  // error on that connection, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"blip: high-frequency synthetic uptime prober"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level and --log-format may follow the subcommand
  app.set_version_flag("--version", blip::kBlipVersion);
  int exit_code = blip::kExitOk;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->envname("BLIP_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text, or json for one object per line")
      ->envname("BLIP_LOG_FORMAT")
      ->capture_default_str();

  blip::CheckOptions check;
  auto* check_command = app.add_subcommand("check", "validate the configuration (like nginx -t)");
  check_command->add_option("-c,--config", check.config_dir, "probe configuration directory")
      ->capture_default_str();

  blip::OnceOptions once;
  auto* once_command = app.add_subcommand("once", "run each probe once and print the results");
  once_command->add_option("-c,--config", once.config_dir, "probe configuration directory")
      ->capture_default_str();
  once_command->add_option("--probe", once.probe, "only this probe");

  blip::RunOptions run;
  auto* run_command = app.add_subcommand("run", "probe forever and store every sample");
  run_command->add_option("-c,--config", run.config_dir, "probe configuration directory")
      ->capture_default_str();
  run_command->add_option("--db", run.db_path, "SQLite database file")->capture_default_str();
  run_command->add_option("--retain", run.retain, "how long raw samples are kept")
      ->capture_default_str();
  run_command
      ->add_option("--retain-rollups", run.retain_rollups, "how long per-minute rollups are kept")
      ->capture_default_str();
  run_command
      ->add_option("--store-queue", run.store_queue,
                   "how much probing to hold in memory while the database cannot be written")
      ->capture_default_str();
  run_command
      ->add_option("--vantage", run.vantage,
                   "this blip's vantage point name: the label `vantage` on every sample shipped "
                   "(default: the host name)")
      ->envname("BLIP_VANTAGE");
  run_command->add_option("--listen", run.listen, "feed address ADDRESS:PORT (numeric), or off")
      ->envname("BLIP_LISTEN")
      ->capture_default_str();
  run_command
      ->add_option(
          "--public-listen", run.public_listen,
          "public status page address ADDRESS:PORT (numeric), or off: the page and the Statuspage "
          "documents only, with nothing private in them")
      ->envname("BLIP_PUBLIC_LISTEN")
      ->capture_default_str();
  run_command
      ->add_option("--allowed-hosts", run.allowed_hosts,
                   "Host names the private face answers, comma-separated (besides IP literals and "
                   "localhost)")
      ->envname("BLIP_ALLOWED_HOSTS");
  run_command
      ->add_option("--trusted-proxy", run.trusted_proxies,
                   "reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For "
                   "names the "
                   "client that limits apply to")
      ->envname("BLIP_TRUSTED_PROXY");
  run_command
      ->add_option("--feed-max-connections", run.feed_max_connections,
                   "connections in all, per face")
      ->capture_default_str()
      ->check(CLI::Range(1U, 100000U));
  run_command
      ->add_option("--feed-max-per-client", run.feed_max_connections_per_client,
                   "connections per client (an IPv4 address, an IPv6 /64; behind --trusted-proxy, "
                   "requests in "
                   "flight per forwarded client)")
      ->capture_default_str()
      ->check(CLI::Range(1U, 100000U));
  run_command
      ->add_option("--feed-idle-timeout", run.feed_idle_timeout,
                   "close a feed connection quiet this long")
      ->capture_default_str();
  run_command
      ->add_option(
          "--feed-request-timeout", run.feed_request_timeout,
          "close a feed connection whose request (headers, body, answer) takes longer than this")
      ->capture_default_str();

  blip::HealthOptions health;
  auto* health_command =
      app.add_subcommand("health", "ask a running blip's /healthz (for container health checks)");
  health_command->add_option("--listen", health.listen, "the feed address blip run listens on")
      ->envname("BLIP_LISTEN")
      ->capture_default_str();

  blip::ExecOptions exec;
  auto* exec_command = app.add_subcommand(
      "exec", "run a cron job, reporting its start, end, exit status and output to blip");
  exec_command->add_option("job", exec.job, "the [[job]]'s name")->required();
  exec_command->add_option("command", exec.command, "the command and its arguments, after --")
      ->required();
  // Where a client of the private face sends, and its token: the same flags for `exec`, a note
  // and a notice.
  auto add_private_face_client = [](CLI::App* command, auto& client, const std::string& token) {
    command
        ->add_option("-c,--config", client.config_dir, "configuration directory holding " + token)
        ->capture_default_str();
    command->add_option("--token-file", client.token_file, "a file holding " + token + " instead");
    auto* listen = command->add_option("--listen", client.listen, "blip's private face address")
                       ->envname("BLIP_LISTEN")
                       ->capture_default_str();
    command->add_option("--url", client.url, "blip's base URL instead, e.g. http://blip:9185")
        ->envname("BLIP_URL")
        ->excludes(listen);
  };
  add_private_face_client(exec_command, exec, "the job's token");
  blip::IncidentNoteOptions note;
  auto* incident_command = app.add_subcommand("incident", "the operator's words on an incident");
  incident_command->require_subcommand(1);
  auto* note_command = incident_command->add_subcommand(
      "note", "add a note to an incident: shown as one of its updates on both faces");
  note_command->add_option("id", note.incident, "the incident's number (blip report's #N)")
      ->required();
  note_command->add_option("--status", note.status, "identified, monitoring or resolved")
      ->required()
      ->check(CLI::IsMember({"identified", "monitoring", "resolved"}));
  note_command->add_option("text", note.words, "what to say (one paragraph)")->required();
  add_private_face_client(note_command, note.client, "[page] operator_token");

  blip::NoticeOptions notice;
  auto* notice_command = app.add_subcommand(
      "notice", "post a notice: an incident of its own (impact none) on both faces");
  notice_command->add_option("text", notice.words, "what to say (one paragraph)")->required();
  notice_command
      ->add_option("--components", notice.components, "the probes or jobs it is about, by name")
      ->delimiter(',');
  notice_command->add_option("--until", notice.until,
                             "shown until then: a duration from now (2h) or ISO-8601 UTC "
                             "(default: until removed)");
  add_private_face_client(notice_command, notice.client, "[page] operator_token");

  blip::ReportOptions report;
  auto* report_command =
      app.add_subcommand("report", "outage windows and their time-of-hour pattern");
  auto* report_db = report_command->add_option("--db", report.db_path, "SQLite database file")
                        ->capture_default_str();
  auto* since = report_command->add_option("--since", report.since, "how far back, e.g. 24h or 7d")
                    ->capture_default_str();
  auto* from = report_command->add_option("--from", report.from, "range start, ISO-8601 UTC");
  report_command->add_option("--to", report.to, "range end, ISO-8601 UTC (default now)")
      ->needs(from);
  since->excludes(from);
  report_command->add_option("--probe", report.probe, "only this probe");
  report_command->add_option("--format", report.format, "table, json or csv")
      ->capture_default_str();
  report_command->add_option("--tz", report.tz,
                             "also show start times in this time zone, e.g. Europe/Berlin");
  report_command
      ->add_option("--period", report.period, "auto, or force the pattern's period, e.g. 1h")
      ->capture_default_str();
  auto* prometheus = report_command->add_option(
      "--prometheus", report.prometheus,
      "a fleet report over every vantage point's series on this Prometheus-API server "
      "(Prometheus, VictoriaMetrics), e.g. http://127.0.0.1:9090, instead of --db");
  prometheus->excludes(report_db);
  report_command
      ->add_option("--vantages", report.vantages, "only these vantage points count, e.g. a,b,c")
      ->needs(prometheus);
  report_command
      ->add_option("--quorum", report.quorum,
                   "vantage points down at once that make an outage (default: a majority of those "
                   "observing)")
      ->check(CLI::PositiveNumber)
      ->needs(prometheus);

  blip::ExportOptions export_options;
  auto* export_command = app.add_subcommand(
      "export",
      "write the stored raw samples of a range: JSON lines or CSV (each probe's samples in send "
      "order, probes and jobs by name), or OpenMetrics for `promtool tsdb create-blocks-from "
      "openmetrics` (the series remote-write ships; the range is held in memory, so export a "
      "long history a day or a week at a time)");
  export_command->add_option("--db", export_options.db_path, "SQLite database file")
      ->capture_default_str();
  auto* export_since =
      export_command->add_option("--since", export_options.since, "how far back, e.g. 24h or 7d")
          ->capture_default_str();
  auto* export_from =
      export_command->add_option("--from", export_options.from, "range start, ISO-8601 UTC");
  export_command
      ->add_option("--to", export_options.to, "range end (excluded), ISO-8601 UTC (default now)")
      ->needs(export_from);
  export_since->excludes(export_from);
  export_command->add_option("--probe", export_options.probe, "only this probe or job");
  export_command
      ->add_option("--format", export_options.format,
                   "jsonl (one object a sample), csv (a header line, RFC 4180) or openmetrics")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return blip::kExitUsage;
  }

  // Logs go to stderr; stdout carries only command output (tables, JSON, CSV). The
  // daemon's through a queue, so that no stderr (a full pipe nobody reads) stalls
  // probing; the one-shot commands' directly, so that nothing they say is lost at exit.
  const auto delivery = *run_command ? blip::LogDelivery::queued : blip::LogDelivery::direct;
  if (auto problem = blip::configure_logging(log_level, log_format, delivery)) {
    std::cerr << *problem << '\n';
    return blip::kExitUsage;
  }
  // A report over the local database and an export read SQLite only: they skip libcurl's set-up
  // of its TLS library (about 0.7 ms of CPU, measured for issue 22).
  const bool uses_curl = !(*report_command && report.prometheus.empty()) && !*export_command;
  if (uses_curl) curl_global_init(CURL_GLOBAL_DEFAULT);
  try {
    if (*check_command) exit_code = blip::run_check(check, std::cout, std::cerr);
    if (*once_command) exit_code = blip::run_once(once, std::cout, std::cerr);
    if (*run_command) exit_code = blip::run_daemon(run);
    if (*report_command) exit_code = blip::run_report(report, std::cout, std::cerr);
    if (*export_command) exit_code = blip::run_export(export_options, std::cout, std::cerr);
    if (*health_command) exit_code = blip::run_health(health, std::cout, std::cerr);
    if (*exec_command) exit_code = blip::run_exec(exec, std::cerr);
    if (*note_command) exit_code = blip::run_incident_note(note, std::cout, std::cerr);
    if (*notice_command) exit_code = blip::run_notice(notice, std::cout, std::cerr);
  } catch (const std::exception& error) {
    std::cerr << "blip: " << error.what() << '\n';
    exit_code = blip::kExitUsage;
  }
  if (uses_curl) curl_global_cleanup();
  // Queued lines get a second to reach stderr, then are dropped: a stop never waits on a log
  // reader.
  blip::stop_logging(std::chrono::seconds(1));
  return exit_code;
}
