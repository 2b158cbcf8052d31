#include "support/hostile_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <vector>

namespace blip::test {

namespace {

constexpr char kTrickled[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
constexpr char kHalfHeaders[] = "HTTP/1.1 200 OK\r\nContent-Type: text/pl";
constexpr char kGarbage[] = "\x16\x03\x01 this is no protocol at all \xff\xfe\r\n\r\n";

struct Client {
  bool answered = false;  // what the mode sends at once has been sent
  size_t trickled = 0;    // bytes of kTrickled sent so far
  std::chrono::steady_clock::time_point next_byte;
};

}  // namespace

HostileServer::HostileServer(Mode mode) : mode_(mode) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listen_fd_, 1024) != 0) {
    throw std::runtime_error("HostileServer: bind/listen failed");
  }
  socklen_t length = sizeof address;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  thread_ = std::thread([this] { serve(); });
}

HostileServer::~HostileServer() {
  (void)!write(stop_pipe_[1], "x", 1);
  thread_.join();
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
}

std::string HostileServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HostileServer::serve() {
  using Clock = std::chrono::steady_clock;
  std::map<int, Client> clients;
  for (;;) {
    std::vector<pollfd> fds{{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    int wait_ms = -1;
    const auto now = Clock::now();
    for (const auto& [fd, client] : clients) {
      fds.push_back({fd, POLLIN, 0});
      if (client.answered && mode_ == Mode::trickle && client.trickled < sizeof kTrickled - 1) {
        const auto due =
            std::chrono::duration_cast<std::chrono::milliseconds>(client.next_byte - now).count();
        wait_ms = wait_ms < 0 ? static_cast<int>(std::max<int64_t>(0, due))
                              : std::min(wait_ms, static_cast<int>(std::max<int64_t>(0, due)));
      }
    }
    if (poll(fds.data(), fds.size(), wait_ms) < 0) continue;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) clients.emplace(client, Client{});
    }
    std::vector<int> closing;
    for (size_t i = 2; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      Client& client = clients.at(fd);
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buffer[4096];
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got <= 0) {
          closing.push_back(fd);  // the peer gave up (or reset): so do we
          continue;
        }
        if (!client.answered) {
          client.answered = true;
          client.next_byte = Clock::now();
          switch (mode_) {
            case Mode::hang:
            case Mode::trickle:
              break;
            case Mode::close_mid_headers:
              (void)!write(fd, kHalfHeaders, sizeof kHalfHeaders - 1);
              closing.push_back(fd);
              continue;
            case Mode::garbage:
              (void)!write(fd, kGarbage, sizeof kGarbage - 1);
              closing.push_back(fd);
              continue;
            case Mode::reset: {
              linger hard{1, 0};  // close() now sends RST instead of FIN
              setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
              closing.push_back(fd);
              continue;
            }
          }
        }
      }
      if (mode_ == Mode::trickle && client.answered && client.trickled < sizeof kTrickled - 1 &&
          Clock::now() >= client.next_byte) {
        (void)!write(fd, kTrickled + client.trickled, 1);
        ++client.trickled;
        client.next_byte += std::chrono::seconds(1);
      }
    }
    for (int fd : closing) {
      close(fd);
      clients.erase(fd);
    }
  }
  for (const auto& [fd, client] : clients) close(fd);
}

}  // namespace blip::test
