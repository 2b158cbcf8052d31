#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/transcript.hpp"

namespace blip::test {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                           const std::string& stderr_path) {
  start(argv, stdout_path, stderr_path, -1);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
                           int stderr_fd) {
  start(argv, stdout_path, "/dev/null", stderr_fd);
}

void ChildProcess::start(const std::vector<std::string>& argv, const std::string& stdout_path,
                         const std::string& stderr_path, int stderr_fd) {
  // Everything the child needs is built before fork: between fork and exec the child may
  // only make async-signal-safe calls, or it can hang on a lock (malloc's) that another
  // thread of the test held at the fork.
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const char* out_path = stdout_path.c_str();
  const char* err_path = stderr_path.c_str();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = stderr_fd >= 0 ? stderr_fd : open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    int null_in = open("/dev/null", O_RDONLY);
    if (null_in >= 0) dup2(null_in, 0);
    execvp(args[0], args.data());
    _exit(127);
  }
  // blip itself, or blip under a wrapper (unshare, setpriv): its output is a transcript.
  if (std::find(argv.begin(), argv.end(), BLIP_BINARY) != argv.end()) {
    for (const std::string& path : {stdout_path, stderr_path}) {
      if (path != "/dev/null" &&
          std::find(blip_output_.begin(), blip_output_.end(), path) == blip_output_.end()) {
        blip_output_.push_back(path);
      }
    }
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (const std::string& path : blip_output_)
    keep_transcript("blip output " + path, read_file(path));
}

void ChildProcess::signal(int signal_number) const { kill(pid_, signal_number); }
void ChildProcess::freeze() const { signal(SIGSTOP); }
void ChildProcess::thaw() const { signal(SIGCONT); }

int ChildProcess::wait(int timeout_ms) {
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

bool ChildProcess::running() {
  if (reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(step);
  }
  return condition();
}

int run_command(const std::vector<std::string>& argv, std::string* output, int timeout_ms) {
  TempDir dir;
  ChildProcess child(argv, dir.file("out"), dir.file("out"));
  int status = child.wait(timeout_ms);
  if (output) *output = read_file(dir.file("out"));
  return status;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/blip-test-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void TempDir::write(const std::string& name, const std::string& content) const {
  std::filesystem::create_directories(std::filesystem::path(file(name)).parent_path());
  std::ofstream(file(name)) << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

int free_port() {
  // The kernel may hand a port it just gave and saw closed to the next caller, before the first
  // caller's server has bound it (fleet_end_to_end_test's blips b and c once got one port): a
  // port handed out here is never handed out again by this process.
  static std::mutex mutex;
  static std::set<int> handed_out;
  const std::lock_guard lock(mutex);
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    const int port = ntohs(address.sin_port);
    if (handed_out.insert(port).second) return port;
  }
}

bool wait_for_port(int port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool connected = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(fd);
    if (connected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace blip::test
