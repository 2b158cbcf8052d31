#pragma once
#include <memory>
#include <string>

#include "support/process.hpp"

namespace blip::test {

// A private PostgreSQL 15 cluster on 127.0.0.1, run as the `postgres` user (through setpriv)
// when the tests run as root (Postgres refuses to run as root). Superuser
// `postgres` connects without a password; role `blip` needs the password
// `blip-secret` (scram-sha-256). With `standby_of`, the cluster is a
// streaming standby made by pg_basebackup from that primary.
class PostgresServer {
 public:
  explicit PostgresServer(const PostgresServer* standby_of = nullptr);
  ~PostgresServer();
  int port() const { return port_; }
  // The directory of its Unix socket (`unix_socket_directories`): a DSN's host=.
  std::string socket_directory() const { return dir_.file("run"); }
  std::string dsn(const std::string& user = "postgres", const std::string& password = "") const;

  void freeze()
      const;  // SIGSTOP the postmaster and every backend: nothing answers, as in a disk lock
  void thaw() const;
  void stop();   // fast shutdown
  void start();  // again, on the same port and data
  // Runs SQL through psql as the superuser and returns its unaligned output.
  std::string sql(const std::string& statement) const;

 private:
  void signal_all(int signal_number) const;
  std::vector<std::string> as_postgres(std::vector<std::string> argv) const;
  TempDir dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace blip::test
