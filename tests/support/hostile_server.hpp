#pragma once
#include <string>
#include <thread>

namespace blip::test {

// A TCP server on 127.0.0.1 that misbehaves after it has read a request, to
// many clients at once (one poll loop), closing each connection when its peer
// does: it can take thousands of attempts without holding their sockets.
class HostileServer {
 public:
  enum class Mode {
    hang,               // accepts, reads, never answers
    trickle,            // a valid HTTP answer, one byte a second
    close_mid_headers,  // the status line and half a header, then FIN
    garbage,            // bytes that are no protocol at all, then FIN
    reset,              // RST instead of an answer
  };
  explicit HostileServer(Mode mode);
  ~HostileServer();
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;
  int port() const { return port_; }
  std::string url(const std::string& path = "/") const;

 private:
  void serve();
  Mode mode_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

}  // namespace blip::test
