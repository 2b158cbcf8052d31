// tcp_proxy LISTEN_PORT TARGET_PORT: forwards every TCP connection to 127.0.0.1:LISTEN_PORT to
// 127.0.0.1:TARGET_PORT, both ways, until either side closes. One process and one thread (poll),
// so a test freezes the whole path with one SIGSTOP and thaws it with SIGCONT: connections queue
// in the kernel meanwhile, as they do for a frozen server. Test helper only.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <string>
#include <vector>

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

void non_blocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// One direction of a connection: what was read from `from` and not yet written to `to`.
struct Pipe {
  int from;
  int to;
  std::string pending;
  bool eof = false;  // `from` is done; shut `to` down for writing once `pending` is out
};

struct Connection {
  int client;
  int server;
  bool connected = false;  // the connect to the target has completed
  Pipe up;                 // client -> server
  Pipe down;               // server -> client
  bool dead = false;
};

constexpr size_t kBuffer = 1 << 16;

// Reads what `pipe.from` has (when its buffer has room) and writes what it can to `pipe.to`;
// false on an error.
bool pump(Pipe& pipe, short from_events) {
  if ((from_events & (POLLIN | POLLHUP | POLLERR)) && !pipe.eof && pipe.pending.size() < kBuffer) {
    char buffer[kBuffer];
    const ssize_t got = read(pipe.from, buffer, sizeof buffer);
    if (got > 0) {
      pipe.pending.append(buffer, static_cast<size_t>(got));
    } else if (got == 0) {
      pipe.eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (!pipe.pending.empty()) {  // non-blocking: EAGAIN when the peer is full
    const ssize_t put = send(pipe.to, pipe.pending.data(), pipe.pending.size(), MSG_NOSIGNAL);
    if (put > 0) {
      pipe.pending.erase(0, static_cast<size_t>(put));
    } else if (put < 0 && errno != EAGAIN && errno != EINTR) {
      return false;
    }
  }
  if (pipe.eof && pipe.pending.empty()) shutdown(pipe.to, SHUT_WR);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tcp_proxy LISTEN_PORT TARGET_PORT\n");
    return 2;
  }
  const int listen_port = std::atoi(argv[1]);
  const int target_port = std::atoi(argv[2]);
  signal(SIGPIPE, SIG_IGN);
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  const sockaddr_in bound = loopback(listen_port);
  if (bind(listener, reinterpret_cast<const sockaddr*>(&bound), sizeof bound) != 0 ||
      listen(listener, 128) != 0) {
    std::perror("tcp_proxy: bind/listen");
    return 1;
  }
  non_blocking(listener);
  std::list<Connection> connections;
  for (;;) {
    std::vector<pollfd> fds{{listener, POLLIN, 0}};
    for (Connection& c : connections) {
      short client_events = 0;
      short server_events = 0;
      if (!c.connected) {
        server_events = POLLOUT;
      } else {
        if (!c.up.eof && c.up.pending.size() < kBuffer) client_events |= POLLIN;
        if (!c.down.eof && c.down.pending.size() < kBuffer) server_events |= POLLIN;
        if (!c.up.pending.empty()) server_events |= POLLOUT;
        if (!c.down.pending.empty()) client_events |= POLLOUT;
      }
      fds.push_back({c.client, client_events, 0});
      fds.push_back({c.server, server_events, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("tcp_proxy: poll");
      return 1;
    }
    size_t at = 1;
    for (Connection& c : connections) {
      const short client = fds[at++].revents;
      const short server = fds[at++].revents;
      if (!c.connected) {
        if (!(server & (POLLOUT | POLLERR | POLLHUP))) continue;
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(c.server, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) {
          c.dead = true;
          continue;
        }
        c.connected = true;
        continue;
      }
      if (!pump(c.up, client) || !pump(c.down, server)) c.dead = true;
      if (c.up.eof && c.down.eof && c.up.pending.empty() && c.down.pending.empty()) c.dead = true;
    }
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->dead) {
        close(it->client);
        close(it->server);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        const int client = accept(listener, nullptr, nullptr);
        if (client < 0) break;
        non_blocking(client);
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        const int server = socket(AF_INET, SOCK_STREAM, 0);
        non_blocking(server);
        setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
        const sockaddr_in target = loopback(target_port);
        const int result =
            connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof target);
        if (result != 0 && errno != EINPROGRESS) {
          close(client);
          close(server);
          continue;
        }
        connections.push_back(Connection{client, server, result == 0, Pipe{client, server, {}},
                                         Pipe{server, client, {}}});
      }
    }
  }
}
