#pragma once
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// The real blip binary running `blip run` on a configuration written into
// `dir`, with its feed's private and public faces on free loopback ports,
// logging to dir/blip.log.
class Daemon {
 public:
  // `db` defaults to dir/blip.db; `wrapper` is a command that execs its arguments (unshare …);
  // both faces listen on `listen_host` (a numeric address).
  Daemon(const TempDir& dir, const std::string& config,
         const std::vector<std::string>& extra_args = {}, const std::string& db = "",
         const std::vector<std::string>& wrapper = {},
         const std::string& listen_host = "127.0.0.1");
  ChildProcess& process() { return *process_; }
  const std::string& db() const { return db_; }
  int feed_port() const { return feed_port_; }
  std::string feed_url(const std::string& path) const;
  int public_port() const { return public_port_; }
  std::string public_url(const std::string& path) const;
  std::string log() const;
  // The value on the first line of its /metrics that starts with `series` (a name, or a name and
  // its labels as blip writes them), or -1 when there is none.
  double metric(const std::string& series) const;
  // SIGTERM; the exit status (-1 if it did not exit in time).
  int stop();

 private:
  std::string db_;
  std::string log_;
  std::string host_;  // as a URL writes it
  int feed_port_;
  int public_port_;
  std::unique_ptr<ChildProcess> process_;
};

std::string http_config(const std::string& name, const std::string& url,
                        const std::string& interval, const std::string& timeout);

}  // namespace blip::test
