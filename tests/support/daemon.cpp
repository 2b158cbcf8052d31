#include "support/daemon.hpp"

#include <signal.h>

#include "support/http_client.hpp"

namespace blip::test {

Daemon::Daemon(const TempDir& dir, const std::string& config,
               const std::vector<std::string>& extra_args, const std::string& db,
               const std::vector<std::string>& wrapper, const std::string& listen_host)
    : db_(db.empty() ? dir.file("blip.db") : db),
      log_(dir.file("blip.log")),
      host_(listen_host.find(':') != std::string::npos ? "[" + listen_host + "]" : listen_host),
      feed_port_(free_port()),
      public_port_(free_port()) {
  dir.write("probes.d/probes.toml", config);
  std::vector<std::string> argv = wrapper;
  argv.insert(argv.end(), {BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", db_, "--listen",
                           host_ + ":" + std::to_string(feed_port_), "--public-listen",
                           host_ + ":" + std::to_string(public_port_)});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<ChildProcess>(argv, log_, log_);
}

std::string Daemon::feed_url(const std::string& path) const {
  return "http://" + host_ + ":" + std::to_string(feed_port_) + path;
}

std::string Daemon::public_url(const std::string& path) const {
  return "http://" + host_ + ":" + std::to_string(public_port_) + path;
}

std::string Daemon::log() const { return read_file(log_); }

double Daemon::metric(const std::string& series) const {
  const std::string body = http_request(feed_url("/metrics")).body;
  for (size_t at = body.find("\n" + series); at != std::string::npos;
       at = body.find("\n" + series, at + 1)) {
    const size_t space = body.find(' ', at + 1 + series.size());
    if (space == std::string::npos) break;
    return std::stod(body.substr(space + 1, body.find('\n', space) - space - 1));
  }
  return -1;
}

int Daemon::stop() {
  process_->signal(SIGTERM);
  return process_->wait();
}

std::string http_config(const std::string& name, const std::string& url,
                        const std::string& interval, const std::string& timeout) {
  return "[[probe]]\nname = \"" + name + "\"\ntype = \"http\"\nurl = \"" + url +
         "\"\ninterval = \"" + interval + "\"\ntimeout = \"" + timeout + "\"\n";
}

}  // namespace blip::test
