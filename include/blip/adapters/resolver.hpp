#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "blip/core/loop.hpp"

struct ares_channeldata;
struct ares_addrinfo;

namespace blip {

// Name lookups for every probe type, on the loop and without threads: c-ares
// driven by libuv (curl_uv's pattern: c-ares says which sockets to watch and
// when to wake it). A lookup never blocks the loop, a removal or another
// probe, so a resolver that never answers costs only the probes that use it.
//
// Contracts:
// - `done` runs once, from the loop, never from inside resolve(); never after
//   cancel() or destruction.
// - A numeric address completes on the next loop iteration without a lookup.
// - A lookup that has no answer within its limit fails with a message naming
//   the host.
class Resolver {
 public:
  // `address` is numeric (IPv4 preferred); empty on failure, with `error` set.
  using Done = std::function<void(const std::string& address, const std::string& error)>;
  using Ticket = uint64_t;

  explicit Resolver(uv_loop_t* loop);
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  ~Resolver();

  Ticket resolve(const std::string& host, int64_t limit_ms, Done done);
  void cancel(Ticket ticket) noexcept;

  static bool is_numeric(const std::string& host);
  // How long a probe with this timeout waits for a lookup: three quarters of it, so a
  // resolver that does not answer is a `dns` failure naming the host, not a timeout.
  static int64_t limit_for(int64_t timeout_ms) { return timeout_ms * 3 / 4; }

 private:
  struct Lookup;
  struct SocketWatch;
  struct Query;
  static void on_socket_state(void* self, int socket, int readable, int writable);
  static void on_answer(void* query, int status, int timeouts, ares_addrinfo* result);
  void process(int read_socket, int write_socket);
  void rearm();
  void deliver(Ticket ticket);

  uv_loop_t* loop_;
  ares_channeldata* channel_ = nullptr;
  Timer wake_;
  Ticket next_ticket_ = 0;
  std::unordered_map<Ticket, std::unique_ptr<Lookup>> lookups_;
  std::unordered_map<int, SocketWatch*> watches_;
};

}  // namespace blip
