#pragma once
#include <string>

#include "support/process.hpp"

namespace blip::test {

// Headless Chromium as the probe of this machine runs it, on a profile in `dir`;
// `action` is --dump-dom or --screenshot=FILE, `net_log` a file for --log-net-log
// (empty: none). The exit status; what it printed into `output`.
int run_chromium(const TempDir& dir, const std::string& url, const std::string& action,
                 const std::string& net_log, std::string* output);

}  // namespace blip::test
