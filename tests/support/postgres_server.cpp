#include "support/postgres_server.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace blip::test {
namespace {

const std::string kBin = "/usr/lib/postgresql/15/bin/";

void give_to_postgres(const std::string& path) {
  if (geteuid() != 0) return;
  passwd* user = getpwnam("postgres");
  if (!user) throw std::runtime_error("no postgres user: install postgresql-15");
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
    (void)!chown(entry.path().c_str(), user->pw_uid, user->pw_gid);
  }
  (void)!chown(path.c_str(), user->pw_uid, user->pw_gid);
}

void run_or_throw(const std::vector<std::string>& argv) {
  std::string output;
  if (run_command(argv, &output, 120'000) != 0) {
    throw std::runtime_error(
        fmt::format("{} failed: {}", argv.size() > 3 ? argv[3] : argv[0], output));
  }
}

}  // namespace

std::vector<std::string> PostgresServer::as_postgres(std::vector<std::string> argv) const {
  // setpriv execs in place (runuser forks and stops itself when its child is SIGSTOPped).
  if (geteuid() == 0) {
    argv.insert(argv.begin(),
                {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"});
  }
  return argv;
}

PostgresServer::PostgresServer(const PostgresServer* standby_of) : port_(free_port()) {
  const std::string data = dir_.file("data");
  std::filesystem::create_directories(dir_.file("run"));
  give_to_postgres(dir_.path());
  if (standby_of) {
    run_or_throw(
        as_postgres({kBin + "pg_basebackup", "-D", data, "-R", "-X", "stream", "-h", "127.0.0.1",
                     "-p", std::to_string(standby_of->port()), "-U", "postgres"}));
  } else {
    run_or_throw(
        as_postgres({kBin + "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"}));
    std::ofstream(data + "/pg_hba.conf") << "local all all trust\n"
                                            "host all postgres 127.0.0.1/32 trust\n"
                                            "host replication postgres 127.0.0.1/32 trust\n"
                                            "host all all 127.0.0.1/32 scram-sha-256\n";
    std::ofstream(data + "/postgresql.conf", std::ios::app)
        << "listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = "
           "off\nfull_page_writes = off\n"
           "wal_level = replica\nmax_wal_senders = 5\nhot_standby = "
           "on\nwal_receiver_status_interval = 1s\n";
  }
  std::ofstream(data + "/postgresql.conf", std::ios::app)
      << fmt::format("port = {}\nunix_socket_directories = '{}'\n", port_, dir_.file("run"));
  give_to_postgres(dir_.path());
  start();
  if (!standby_of) {
    sql("CREATE ROLE blip LOGIN PASSWORD 'blip-secret'; GRANT pg_monitor TO blip; "
        "GRANT CREATE ON SCHEMA public TO blip");
  }
}

PostgresServer::~PostgresServer() {
  if (process_) {
    thaw();
    stop();
  }
}

void PostgresServer::start() {
  process_ =
      std::make_unique<ChildProcess>(as_postgres({kBin + "postgres", "-D", dir_.file("data")}),
                                     dir_.file("postgres.log"), dir_.file("postgres.log"));
  // Ready when it accepts SQL, not merely TCP.
  for (int i = 0; i < 300; ++i) {
    std::string output;
    if (run_command(as_postgres({kBin + "pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                 std::to_string(port_)}),
                    &output) == 0) {
      return;
    }
    if (!process_->running()) break;
    usleep(50'000);
  }
  throw std::runtime_error("postgres did not start: " + read_file(dir_.file("postgres.log")));
}

void PostgresServer::stop() {
  if (!process_) return;
  signal_all(SIGCONT);
  process_->signal(SIGINT);  // a fast shutdown
  process_->wait(30'000);
  process_.reset();
}

std::string PostgresServer::dsn(const std::string& user, const std::string& password) const {
  std::string dsn = fmt::format("host=127.0.0.1 port={} dbname=postgres user={}", port_, user);
  if (!password.empty()) dsn += " password=" + password;
  return dsn;
}

std::string PostgresServer::sql(const std::string& statement) const {
  std::string output;
  int status = run_command(as_postgres({"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                        "-h", dir_.file("run"), "-p", std::to_string(port_), "-U",
                                        "postgres", "-d", "postgres", "-c", statement}),
                           &output, 30'000);
  if (status != 0) {
    // The server log says why when psql itself says nothing (a hang or a signal).
    std::string log = read_file(dir_.file("postgres.log"));
    if (log.size() > 4000) log = log.substr(log.size() - 4000);
    throw std::runtime_error(
        fmt::format("psql on port {} failed (status {}) for \"{}\": {}\nserver log tail:\n{}",
                    port_, status, statement, output, log));
  }
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return output;
}

void PostgresServer::signal_all(int signal_number) const {
  std::string pid_text = read_file(dir_.file("data/postmaster.pid"));
  if (pid_text.empty()) return;
  const int postmaster = std::stoi(pid_text);
  std::istringstream children(
      read_file(fmt::format("/proc/{}/task/{}/children", postmaster, postmaster)));
  for (int child = 0; children >> child;) kill(child, signal_number);
  kill(postmaster, signal_number);
}

void PostgresServer::freeze() const { signal_all(SIGSTOP); }
void PostgresServer::thaw() const { signal_all(SIGCONT); }

}  // namespace blip::test
