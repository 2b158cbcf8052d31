#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "blip/feed/status_feed.hpp"
#include "blip/jobs/ping_inbox.hpp"

struct MHD_Daemon;

namespace blip {

// A ping's body beyond this is refused; of what is accepted the last kMaxRunOutputBytes are kept.
inline constexpr size_t kMaxPingBodyBytes = 1 << 20;

// An address to listen on, "127.0.0.1:9185" or "[::1]:9185": numeric only, no lookup.
struct ListenAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;
  bool loopback = false;
};
// Nullopt with `error` set when the text is not a numeric address and port.
std::optional<ListenAddress> parse_listen_address(const std::string& text, std::string* error);

// What one client, and all of them, may hold: set once where the daemon starts.
struct FeedLimits {
  unsigned max_connections = 256;
  unsigned max_connections_per_client = 32;
  unsigned idle_timeout_seconds = 5;    // a connection quiet this long is closed, mid-request or not
  size_t request_memory_bytes = 16384;  // request line and headers; beyond it the request is refused
};

// The feed's HTTP server: libmicrohttpd on its own threads, serving what
// StatusFeed builds, read-only (GET, HEAD and OPTIONS), and the jobs'
// check-ins, `/ping/<token>[/start|/fail|/<exit status>]` (also POST, with
// the job's output as the body), which it hands to `pings`.
class FeedServer {
 public:
  // Throws std::runtime_error naming the address when it cannot listen.
  FeedServer(StatusFeed& feed, PingInbox& pings, const ListenAddress& address, const FeedLimits& limits);
  FeedServer(const FeedServer&) = delete;
  FeedServer& operator=(const FeedServer&) = delete;
  ~FeedServer();

 private:
  std::unique_ptr<struct FeedRoutes> routes_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace blip
