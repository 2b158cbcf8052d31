// `blip exec JOB -- COMMAND ARGS…`: a wrapper for cron. Reports the start,
// runs the command with its output passed through, reports the end with the
// exit status, the duration and the output's last lines, and exits with the
// command's own status. A blip that cannot be reached never fails the job.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <random>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/cli/local_http.hpp"
#include "blip/config/config.hpp"
#include "blip/core/clock.hpp"
#include "blip/jobs/job_monitor.hpp"

extern char** environ;

namespace blip {
namespace {

constexpr long kPingTimeoutMs = 3000;

volatile sig_atomic_t child_pid = 0;

// SIGTERM or SIGINT for the wrapper is meant for the job.
void forward_signal(int signal_number) {
  if (child_pid > 0) kill(static_cast<pid_t>(child_pid), signal_number);
}

std::string random_run_id() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

// The job's token: BLIP_PING_TOKEN, --token-file, or the job's own table in the configuration.
std::optional<std::string> find_token(const ExecOptions& options, std::ostream& err) {
  if (auto token = token_outside_config("BLIP_PING_TOKEN", options.token_file, "blip exec", err)) {
    if (token->empty()) return std::nullopt;
    return token;
  }
  LoadedConfig loaded = load_config_directory(options.config_dir);
  for (const JobConfig& job : loaded.jobs) {
    if (job.name == options.job && !job.settings.token.empty()) return job.settings.token;
  }
  for (const ConfigError& error : loaded.errors) err << error.to_string() << '\n';
  err << fmt::format(
      "blip exec: no [[job]] named \"{}\" in {} (or set BLIP_PING_TOKEN, or --token-file)\n",
      options.job, options.config_dir);
  return std::nullopt;
}

// Says on stderr when blip did not take a ping; the job goes on either way.
void report(const std::string& base, const std::string& path, const std::string& body,
            std::ostream& err) {
  const HttpAnswer answer = http_request(base + path, kPingTimeoutMs, body);
  // The path holds the token: only the base URL is ever shown.
  if (answer.result != CURLE_OK) {
    err << fmt::format("blip exec: blip at {} not reached ({}); the job is not affected\n", base,
                       curl_easy_strerror(answer.result));
  } else if (answer.status != 200) {
    err << fmt::format("blip exec: blip at {} answered {}: {}", base, answer.status, answer.body);
  }
}

}  // namespace

int run_exec(const ExecOptions& options, std::ostream& err) {
  if (options.command.empty()) {
    err << "blip exec: no command after --\n";
    return kExitUsage;
  }
  const auto face = private_face_base(options.url, options.listen, err);
  if (!face) return kExitUsage;
  const std::string& base = *face;
  const auto token = find_token(options, err);
  if (!token) return kExitUsage;
  const std::string rid = random_run_id();
  const std::string ping = "/ping/" + *token;
  report(base, ping + "/start?rid=" + rid, {}, err);

  // The command's output goes where ours goes, and its tail into the end ping.
  std::array<int, 2> out_pipe{-1, -1};
  std::array<int, 2> err_pipe{-1, -1};
  if (pipe2(out_pipe.data(), O_CLOEXEC) != 0 || pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    err << fmt::format("blip exec: pipe: {}\n", std::strerror(errno));
    return 127;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& arg : options.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int64_t started_us = mono_now_us();
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  std::string tail;
  int exit_status = 127;
  if (spawned != 0) {
    tail =
        fmt::format("blip exec: cannot run {}: {}\n", options.command[0], std::strerror(spawned));
    err << tail;
  } else {
    child_pid = pid;
    std::signal(SIGTERM, forward_signal);
    std::signal(SIGINT, forward_signal);
    std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
    const std::array<int, 2> targets{STDOUT_FILENO, STDERR_FILENO};
    int open = 2;
    std::array<char, 65536> buffer{};
    while (open > 0) {
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        const ssize_t got = read(fds[i].fd, buffer.data(), buffer.size());
        if (got <= 0) {
          if (got < 0 && errno == EINTR) continue;
          close(fds[i].fd);
          fds[i].fd = -1;
          --open;
          continue;
        }
        for (ssize_t written = 0; written < got;) {
          const ssize_t n =
              write(targets[i], buffer.data() + written, static_cast<size_t>(got - written));
          if (n <= 0 && errno != EINTR) break;
          if (n > 0) written += n;
        }
        keep_output_tail(tail, {buffer.data(), static_cast<size_t>(got)});
      }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    exit_status = WIFEXITED(status)     ? WEXITSTATUS(status)
                  : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                        : 1;
  }
  for (int fd : {out_pipe[0], err_pipe[0]}) close(fd);
  const int64_t duration_ms = (mono_now_us() - started_us) / 1000;
  if (tail.size() > kMaxRunOutputBytes) tail.erase(0, tail.size() - kMaxRunOutputBytes);
  report(base, fmt::format("{}/{}?rid={}&duration_ms={}", ping, exit_status, rid, duration_ms),
         tail, err);
  return exit_status;
}

}  // namespace blip
