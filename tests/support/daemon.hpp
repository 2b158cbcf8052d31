#pragma once
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// The real blip binary running `blip run` on a configuration written into
// `dir`, with its feed on a free loopback port, logging to dir/blip.log.
class Daemon {
 public:
  // `db` defaults to dir/blip.db; `wrapper` is a command that execs its arguments (unshare …).
  Daemon(const TempDir& dir, const std::string& config, const std::vector<std::string>& extra_args = {},
         const std::string& db = "", const std::vector<std::string>& wrapper = {});
  ChildProcess& process() { return *process_; }
  const std::string& db() const { return db_; }
  int feed_port() const { return feed_port_; }
  std::string feed_url(const std::string& path) const;
  std::string log() const;
  // SIGTERM; the exit status (-1 if it did not exit in time).
  int stop();

 private:
  std::string db_;
  std::string log_;
  int feed_port_;
  std::unique_ptr<ChildProcess> process_;
};

std::string http_config(const std::string& name, const std::string& url, const std::string& interval,
                        const std::string& timeout);

}  // namespace blip::test
