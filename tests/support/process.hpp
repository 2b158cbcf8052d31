#pragma once
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace blip::test {

// A child process started with execvp; killed (SIGKILL) if still running when destroyed.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path = "/dev/null",
               const std::string& stderr_path = "/dev/null");
  // The same with stderr on a descriptor the caller holds (a pipe it never reads).
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path, int stderr_fd);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();
  pid_t pid() const { return pid_; }
  void signal(int signal_number) const;
  void freeze() const;  // SIGSTOP
  void thaw() const;    // SIGCONT
  // Waits for the exit status (-1 on timeout; then the process is still running).
  int wait(int timeout_ms = 30'000);
  bool running();

 private:
  void start(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path, int stderr_fd);
  pid_t pid_ = -1;
  // blip's output files, kept as a transcript when the process is done with.
  std::vector<std::string> blip_output_;
  bool reaped_ = false;
  int status_ = 0;
};

// Polls `condition` every `step` until it holds or `timeout` passes; its last answer.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(50));

// Runs a command to completion and returns its exit status; output captured into `output`.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr,
                int timeout_ms = 60'000);

// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, int timeout_ms = 10'000);

}  // namespace blip::test
