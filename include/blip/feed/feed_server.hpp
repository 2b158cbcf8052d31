#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blip/feed/client_limits.hpp"
#include "blip/feed/operator_desk.hpp"
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

// What one client, and all of them, may hold: set once where the daemon
// starts. Each face has its own table, so nothing on the public face can
// take a place on the private one.
struct FeedLimits {
  unsigned max_connections = 1024;
  unsigned max_connections_per_client = 16;  // a client: an IPv4 address or an IPv6 /64
  unsigned idle_timeout_seconds = 5;  // a connection quiet this long is closed, mid-request or not
  int64_t request_time_ms = 10'000;   // a request's headers, body and answer, from its first byte
  size_t request_memory_bytes =
      16384;  // request line and headers; beyond it the request is refused
};

// Who may reach a face, beyond the limits.
struct FeedAccess {
  // Connections from these count against the X-Forwarded-For client's limits, not their own.
  std::vector<AddressRange> trusted_proxies;
  // The private face answers only these Host names, besides IP literals and
  // localhost (a guard against DNS rebinding).
  std::vector<std::string> allowed_hosts;
};

// One face of the feed's HTTP server: libmicrohttpd on its own threads,
// serving what StatusFeed builds, read-only (GET, HEAD and OPTIONS). The
// private face (Audience::operator_view, `--listen`) also takes the jobs'
// check-ins, `/ping/<token>[/start|/fail|/<exit status>]` (also POST, with the
// job's output as the body), which it hands to `pings`, and the operator's
// notes and notices (POST below /api/operator/, operator_desk.hpp), which it
// hands to `desk`; the public face
// (`--public-listen`) serves the page, the documents and the badges in their public view,
// to any origin. No request waits on a thread for a document: it is put aside
// (libmicrohttpd's suspend) until the document is built.
class FeedServer {
 public:
  // Throws std::runtime_error naming the address when it cannot listen.
  // `pings` and `desk` are null on the public face.
  FeedServer(StatusFeed& feed, PingInbox* pings, OperatorDesk* desk, Audience audience,
             const ListenAddress& address, const FeedLimits& limits, FeedAccess access);
  FeedServer(const FeedServer&) = delete;
  FeedServer& operator=(const FeedServer&) = delete;
  ~FeedServer();

  struct State;

 private:
  std::unique_ptr<State> state_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace blip
