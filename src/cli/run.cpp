// `blip run`: checks the options and the configuration, then runs the daemon.
#include <unistd.h>

#include <iostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/core/descriptors.hpp"
#include "blip/core/duration.hpp"
#include "blip/daemon/daemon.hpp"

namespace blip {
namespace {

// "a, b,c" -> {"a", "b", "c"}; empty items dropped.
std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) items.emplace_back(item);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return items;
}

// Each option's problem goes to stderr under its flag; the first one stops the command.
struct OptionReader {
  bool ok = true;

  std::optional<int64_t> duration(const std::string& text, const char* flag,
                                  int64_t at_least_seconds = 0) {
    std::string problem;
    auto ms = parse_duration_ms(text, &problem);
    if (ms && *ms < at_least_seconds * 1000)
      problem = "must be at least " + std::to_string(at_least_seconds) + "s";
    if (!ms || *ms < at_least_seconds * 1000) return fail(flag, problem), std::nullopt;
    return ms;
  }

  // "off" is no listener.
  std::optional<ListenAddress> listen(const std::string& text, const char* flag) {
    if (text == "off") return std::nullopt;
    std::string problem;
    auto address = parse_listen_address(text, &problem);
    if (!address) fail(flag, problem);
    return address;
  }

  void fail(const char* flag, const std::string& problem) {
    if (ok) std::cerr << flag << ": " << problem << '\n';
    ok = false;
  }
};

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("blip");
}

}  // namespace

int run_daemon(const RunOptions& options) {
  const int64_t open_files_limit = raise_open_files_limit();
  auto loaded = load_config_or_report(options.config_dir, std::cerr);
  if (!loaded) return kExitUsage;
  DaemonSettings settings;
  settings.config_dir = options.config_dir;
  settings.db_path = options.db_path;
  settings.vantage = options.vantage.empty() ? host_name() : options.vantage;
  if (settings.vantage.empty() || settings.vantage.size() > 128 ||
      settings.vantage.find_first_of("\"\\\n\r\t") != std::string::npos) {
    std::cerr << "--vantage: a name of 1 to 128 characters without quotes, backslashes or "
                 "line breaks\n";
    return kExitUsage;
  }
  settings.open_files_limit = open_files_limit;
  OptionReader read;
  settings.retain_ms = read.duration(options.retain, "--retain").value_or(0);
  settings.retain_rollups_ms =
      read.duration(options.retain_rollups, "--retain-rollups").value_or(0);
  settings.listen = read.listen(options.listen, "--listen");
  settings.public_listen = read.listen(options.public_listen, "--public-listen");
  std::string problem;
  if (auto proxies = parse_address_ranges(options.trusted_proxies, &problem)) {
    settings.feed_access.trusted_proxies = std::move(*proxies);
  } else {
    read.fail("--trusted-proxy", problem);
  }
  for (const std::string& name : split_list(options.allowed_hosts)) {
    if (name.find_first_of(" /:[]@") != std::string::npos) {
      read.fail("--allowed-hosts", "\"" + name + "\" is not a host name (no port, no scheme)");
    }
    settings.feed_access.allowed_hosts.push_back(name);
  }
  settings.store_queue_ms = read.duration(options.store_queue, "--store-queue", 1).value_or(0);
  FeedLimits& limits = settings.feed_limits;
  limits.max_connections = options.feed_max_connections;
  limits.max_connections_per_client = options.feed_max_connections_per_client;
  limits.idle_timeout_seconds = static_cast<unsigned>(
      read.duration(options.feed_idle_timeout, "--feed-idle-timeout", 1).value_or(0) / 1000);
  limits.request_time_ms =
      read.duration(options.feed_request_timeout, "--feed-request-timeout", 1).value_or(0);
  if (!read.ok) return kExitUsage;
  try {
    Daemon daemon(std::move(*loaded), std::move(settings));
    return daemon.run();
  } catch (const DaemonStartError& error) {
    std::cerr << error.what() << '\n';
    return kExitUsage;
  }
}

}  // namespace blip
