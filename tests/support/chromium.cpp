#include "support/chromium.hpp"

#include <vector>

namespace blip::test {

int run_chromium(const TempDir& dir, const std::string& url, const std::string& action,
                 const std::string& net_log, std::string* output) {
  std::vector<std::string> argv{"chromium",
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--hide-scrollbars",
                                "--user-data-dir=" + dir.file("chromium"),
                                "--virtual-time-budget=5000",
                                "--window-size=1000,1500"};
  if (!net_log.empty()) argv.push_back("--log-net-log=" + net_log);
  argv.push_back(action);
  argv.push_back(url);
  return run_command(argv, output, 60'000);
}

}  // namespace blip::test
