#include "blip/adapters/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <fmt/format.h>

#include <array>
#include <mutex>
#include <stdexcept>

#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"

namespace blip {
namespace {

// c-ares's own per-try timeout; it doubles each retry. With two tries a silent
// server gives up after about 3 s, so abandoned queries do not pile up.
constexpr int kTryTimeoutMs = 1000;
constexpr int kTries = 2;

std::string numeric_text(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text.data(),
              text.size());
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text.data(),
              text.size());
  }
  return text.data();
}

}  // namespace

struct Resolver::Lookup {
  std::string host;
  int64_t limit_ms = 0;
  Done done;
  Timer timer;  // the limit, and the hand-over of an answer to a later loop iteration
  bool answered = false;
  std::string address;
  std::string error;
};

// One uv_poll_t per socket c-ares asks us to watch; freed in its close callback.
struct Resolver::SocketWatch {
  uv_poll_t poll{};
  int socket = -1;
  Resolver* owner = nullptr;
};

// What c-ares hands back to on_answer; outlives a cancelled lookup.
struct Resolver::Query {
  Resolver* owner;
  Ticket ticket;
};

Resolver::Resolver(uv_loop_t* loop)
    : loop_(loop), wake_(loop, [this] { process(ARES_SOCKET_BAD, ARES_SOCKET_BAD); }) {
  static std::once_flag initialised;
  std::call_once(initialised, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  ares_options options{};
  options.sock_state_cb = &Resolver::on_socket_state;
  options.sock_state_cb_data = this;
  options.timeout = kTryTimeoutMs;
  options.tries = kTries;
  const int rc = ares_init_options(&channel_, &options,
                                   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (rc != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares init failed: ") + ares_strerror(rc));
}

Resolver::~Resolver() {
  lookups_.clear();
  // Calls on_answer for every query still out (ARES_EDESTRUCTION) and closes its sockets.
  ares_destroy(channel_);
}

bool Resolver::is_numeric(const std::string& host) {
  std::array<unsigned char, sizeof(in6_addr)> buffer{};
  return inet_pton(AF_INET, host.c_str(), buffer.data()) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer.data()) == 1;
}

Resolver::Ticket Resolver::resolve(const std::string& host, int64_t limit_ms, Done done) {
  const Ticket ticket = ++next_ticket_;
  auto lookup = std::make_unique<Lookup>();
  lookup->host = host;
  lookup->limit_ms = limit_ms;
  lookup->done = std::move(done);
  lookup->timer = Timer(loop_, [this, ticket] { deliver(ticket); });
  Lookup& started = *lookups_.emplace(ticket, std::move(lookup)).first->second;
  // A numeric address, or a Unix socket's path: nothing to look up (answered from the loop all
  // the same).
  if (is_numeric(host) || host.starts_with('/')) {
    started.answered = true;
    started.address = host;
    started.timer.start(0);
    return ticket;
  }
  started.timer.start(static_cast<uint64_t>(std::max<int64_t>(limit_ms, 1)));
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  // May answer at once (/etc/hosts, a malformed name): on_answer only stores the answer.
  ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &Resolver::on_answer,
                   new Query{this, ticket});
  rearm();
  return ticket;
}

void Resolver::cancel(Ticket ticket) noexcept { lookups_.erase(ticket); }

void Resolver::on_answer(void* query_ptr, int status, int, ares_addrinfo* result) {
  std::unique_ptr<Query> query(static_cast<Query*>(query_ptr));
  std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(result, &ares_freeaddrinfo);
  if (status == ARES_EDESTRUCTION) return;
  auto found = query->owner->lookups_.find(query->ticket);
  if (found == query->owner->lookups_.end()) return;  // cancelled, or past its limit
  Lookup& lookup = *found->second;
  lookup.answered = true;
  if (status == ARES_SUCCESS && result && result->nodes) {
    // Prefer IPv4: "localhost" often lists ::1 first while servers listen on 127.0.0.1.
    const ares_addrinfo_node* chosen = result->nodes;
    for (const ares_addrinfo_node* node = result->nodes; node; node = node->ai_next) {
      if (node->ai_family == AF_INET) {
        chosen = node;
        break;
      }
    }
    lookup.address = numeric_text(chosen->ai_addr);
  } else {
    lookup.error = fmt::format("resolve {}: {}", lookup.host,
                               status == ARES_SUCCESS ? "no address" : ares_strerror(status));
  }
  lookup.timer.start(0);
}

void Resolver::deliver(Ticket ticket) {
  auto node = lookups_.extract(ticket);
  if (node.empty()) return;
  Lookup& lookup = *node.mapped();
  if (!lookup.answered) {
    lookup.error = fmt::format("resolve {}: no answer from the resolver within {}", lookup.host,
                               format_duration_brief(lookup.limit_ms));
  }
  // The Lookup (and the timer whose callback this is) dies after done: Timer allows that.
  lookup.done(lookup.address, lookup.error);
}

void Resolver::on_socket_state(void* self_ptr, int socket, int readable, int writable) {
  auto* self = static_cast<Resolver*>(self_ptr);
  auto found = self->watches_.find(socket);
  if (!readable && !writable) {
    if (found == self->watches_.end()) return;
    SocketWatch* watch = found->second;
    self->watches_.erase(found);
    uv_poll_stop(&watch->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll),
             [](uv_handle_t* handle) { delete static_cast<SocketWatch*>(handle->data); });
    return;
  }
  SocketWatch* watch = found == self->watches_.end() ? nullptr : found->second;
  if (!watch) {
    watch = new SocketWatch{{}, socket, self};
    if (uv_poll_init_socket(self->loop_, &watch->poll, socket) != 0) {
      log_error("dns: cannot watch socket {}", socket);
      delete watch;
      return;  // its queries then time out
    }
    watch->poll.data = watch;
    self->watches_.emplace(socket, watch);
  }
  uv_poll_start(&watch->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                [](uv_poll_t* poll, int status, int events) {
                  auto* w = static_cast<SocketWatch*>(poll->data);
                  const bool error = status < 0;
                  w->owner->process((events & UV_READABLE) || error ? w->socket : ARES_SOCKET_BAD,
                                    (events & UV_WRITABLE) || error ? w->socket : ARES_SOCKET_BAD);
                });
}

void Resolver::process(int read_socket, int write_socket) {
  ares_process_fd(channel_, read_socket, write_socket);
  rearm();
}

// c-ares's retries and timeouts run on one timer: the soonest it asks for.
void Resolver::rearm() {
  timeval next{};
  if (const timeval* soonest = ares_timeout(channel_, nullptr, &next)) {
    wake_.start(static_cast<uint64_t>(soonest->tv_sec) * 1000 +
                static_cast<uint64_t>(soonest->tv_usec) / 1000 + 1);
  } else {
    wake_.stop();
  }
}

}  // namespace blip
