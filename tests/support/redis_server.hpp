#pragma once
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// A private redis-server on 127.0.0.1 (no persistence), optionally with a password.
class RedisServer {
 public:
  explicit RedisServer(std::string password = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  // Its Unix socket (`unixsocket`), beside the TCP port.
  std::string socket_path() const { return dir_.file("redis.sock"); }
  const std::string& password() const { return password_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  void freeze() const;  // SIGSTOP: connections queue in the kernel, nothing answers
  void thaw() const;    // SIGCONT
  void stop();          // SIGKILL and reap: the port refuses connections
  void start();         // starts again on the same port (the data is gone)

  // Runs one command on a fresh blocking connection (hiredis sync API, AUTH
  // first when there is a password) and returns the reply as text: strings,
  // status and errors as they are ("ERR ..." for errors), integers in decimal,
  // nil as "(nil)", arrays as their elements joined by '\n'. Throws when it
  // cannot connect.
  std::string command(const std::vector<std::string>& argv, int db = 0) const;
  // Removes every key of every database.
  void flush_all() const { command({"FLUSHALL"}); }

 private:
  TempDir dir_;
  int port_;
  std::string password_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace blip::test
