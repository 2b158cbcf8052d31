#include "blip/feed/feed_server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {

// Per request: what its first call found, and a check-in's body as it arrives.
struct FeedRequest {
  bool ping = false;
  bool operator_words = false;  // a note or notice, its token already checked
  std::string body;  // a check-in's output: only its tail is kept; an operator's body whole
  size_t received = 0;
  std::optional<ClientKey>
      forwarded;  // counted against this X-Forwarded-For client until it completes
  int64_t waiting_since_us =
      INT64_MAX;                 // put aside for a document since then: any built later will do
  bool waited_too_long = false;  // and that took too long
};

// Everything the server's callbacks reach.
struct FeedServer::State {
  State(StatusFeed& feed_, PingInbox* pings_, OperatorDesk* desk_, Audience audience_,
        const FeedLimits& limits_, FeedAccess access_)
      : feed(feed_),
        pings(pings_),
        desk(desk_),
        audience(audience_),
        limits(limits_),
        access(std::move(access_)) {}
  StatusFeed& feed;
  PingInbox* pings;
  OperatorDesk* desk;
  Audience audience;
  FeedLimits limits;
  FeedAccess access;

  std::mutex mutex;  // guards what follows
  struct Connection {
    int fd = -1;
    ClientKey client;
    bool counted = false;  // in per_client (not a trusted proxy's)
    int64_t request_began_us = 0;
    bool cut = false;  // shut down for taking too long
  };
  std::unordered_map<MHD_Connection*, Connection> connections;
  std::map<ClientKey, unsigned> per_client;
  std::map<ClientKey, unsigned> forwarded_in_flight;
  // Unknown-token check-ins and wrong operator tokens per client: 10 at once, then one every 10 s.
  PerClientRate guesses{0.1, 10.0, 10'000};
  std::unordered_map<MHD_Connection*, std::pair<int64_t, FeedRequest*>>
      waiting;  // suspended: since when, for what
  bool stopping = false;
  std::condition_variable janitor_wake;
  std::thread janitor;

  bool is_public() const { return audience == Audience::public_view; }
  void refuse(FeedRefusals::Reason reason) { feed.refusals().count(audience, reason); }
  bool trusted_proxy(const sockaddr* address) const {
    return std::any_of(access.trusted_proxies.begin(), access.trusted_proxies.end(),
                       [&](const AddressRange& range) { return range.contains(address); });
  }
  // Wakes every request put aside for a document; called with `mutex` held.
  void resume_waiting() {
    for (auto& [connection, waiting_for] : waiting) MHD_resume_connection(connection);
    waiting.clear();
  }
  void cut_slow_requests_until_stopped();
};

namespace {

constexpr unsigned kThreads = 2;
constexpr auto kJanitorEvery = std::chrono::milliseconds(200);

void add_common_headers(const FeedServer::State& state, MHD_Response* response) {
  // Any page may read the public face's documents; nothing but a page of its own reads the private
  // face.
  if (state.is_public()) MHD_add_response_header(response, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
}

MHD_Result queue_text(const FeedServer::State& state, MHD_Connection* connection, unsigned status,
                      std::string_view text,
                      std::initializer_list<std::pair<const char*, const char*>> headers = {}) {
  MHD_Response* response = MHD_create_response_from_buffer(
      text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  if (!response) return MHD_NO;
  add_common_headers(state, response);
  MHD_add_response_header(response, "Content-Type", "text/plain; charset=utf-8");
  MHD_add_response_header(response, "Cache-Control", "no-store");
  for (const auto& [name, value] : headers) MHD_add_response_header(response, name, value);
  const MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

// A CORS preflight's answer: what a page on another origin may send here (the public face only).
MHD_Result queue_preflight(const FeedServer::State& state, MHD_Connection* connection,
                           const char* methods, const char* headers) {
  if (!state.is_public())
    return queue_text(state, connection, MHD_HTTP_NO_CONTENT, "", {{"Allow", methods}});
  return queue_text(state, connection, MHD_HTTP_NO_CONTENT, "",
                    {{"Access-Control-Allow-Methods", methods},
                     {"Access-Control-Allow-Headers", headers},
                     {"Access-Control-Max-Age", "86400"},
                     {"Allow", methods}});
}

// Whether an If-None-Match header names this ETag: in a list, weakly (W/"x"), or as "*".
bool matches_etag(const char* if_none_match, const std::string& etag) {
  if (!if_none_match) return false;
  const std::string_view header(if_none_match);
  return header == "*" || header.find(etag) != std::string_view::npos;
}

MHD_Result queue_document(const FeedServer::State& state, MHD_Connection* connection,
                          std::shared_ptr<const FeedResponse> document) {
  const bool cacheable = !document->etag.empty();
  if (cacheable &&
      matches_etag(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "If-None-Match"),
                   document->etag)) {
    MHD_Response* response = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
    if (!response) return MHD_NO;
    add_common_headers(state, response);
    MHD_add_response_header(response, "ETag", document->etag.c_str());
    MHD_add_response_header(response, "Cache-Control", "max-age=1");
    const MHD_Result result = MHD_queue_response(connection, MHD_HTTP_NOT_MODIFIED, response);
    MHD_destroy_response(response);
    return result;
  }
  // The body is served from the cached document itself, which the response keeps alive.
  auto* keep = new std::shared_ptr<const FeedResponse>(document);
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      document->body.size(), const_cast<char*>(document->body.data()),
      [](void* cls) { delete static_cast<std::shared_ptr<const FeedResponse>*>(cls); }, keep);
  if (!response) {
    delete keep;
    return MHD_NO;
  }
  add_common_headers(state, response);
  MHD_add_response_header(response, "Content-Type", document->content_type.c_str());
  MHD_add_response_header(response, "Cache-Control", cacheable ? "max-age=1" : "no-store");
  if (cacheable) MHD_add_response_header(response, "ETag", document->etag.c_str());
  if (document->content_type.starts_with("text/html")) {
    // The page is self-contained: its own inline script and style, and JSON from this origin.
    MHD_add_response_header(
        response, "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'self'");
  } else if (document->content_type.starts_with("image/svg+xml")) {
    // A badge opened on its own is a document too: it may fetch and run nothing.
    MHD_add_response_header(response, "Content-Security-Policy", "default-src 'none'");
  }
  const MHD_Result result = MHD_queue_response(connection, document->status, response);
  MHD_destroy_response(response);
  return result;
}

// The client a request counts against: the connection's, or behind a trusted proxy the one it
// forwards for.
ClientKey requesting_client(const FeedServer::State& state, MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const sockaddr* address = info ? info->client_addr : nullptr;
  if (address && state.trusted_proxy(address)) {
    const char* forwarded =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Forwarded-For");
    if (auto client =
            forwarded ? forwarded_client(forwarded, state.access.trusted_proxies) : std::nullopt) {
      return *client;
    }
  }
  return client_key(address);
}

// A token that opens nothing: a guess, as far as blip can tell. Each client has a budget of
// them; beyond it, every one is refused as a guess (and counted) whatever it is.
MHD_Result refuse_token(FeedServer::State& state, MHD_Connection* connection, unsigned status,
                        std::string_view text) {
  bool guess_allowed;
  {
    std::lock_guard lock(state.mutex);
    guess_allowed = state.guesses.take(requesting_client(state, connection), mono_now_us());
  }
  if (!guess_allowed) {
    state.refuse(FeedRefusals::token_guesses);
    return queue_text(state, connection, MHD_HTTP_TOO_MANY_REQUESTS,
                      "too many unknown tokens from this client\n", {{"Retry-After", "10"}});
  }
  return queue_text(state, connection, status, text);
}

// Whether the request's Content-Length says more than `limit` bytes.
bool declared_length_over(MHD_Connection* connection, size_t limit) {
  const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
  if (!length) return false;
  char* end = nullptr;
  const unsigned long long declared = std::strtoull(length, &end, 10);
  return end != length && declared > limit;
}

// A check-in's first call, with its headers only: the token is checked before any body is read.
MHD_Result screen_ping(FeedServer::State& state, MHD_Connection* connection,
                       std::string_view path) {
  std::string_view token;
  JobPing ping;
  if (!parse_ping_path(path, token, ping))
    return queue_text(state, connection, MHD_HTTP_NOT_FOUND, "not found\n");
  if (!state.pings->knows(token))
    return refuse_token(state, connection, MHD_HTTP_NOT_FOUND, "unknown token\n");
  if (declared_length_over(connection, kMaxPingBodyBytes)) {
    return queue_text(
        state, connection, MHD_HTTP_CONTENT_TOO_LARGE,
        fmt::format("body over {} bytes; send the last lines of the output\n", kMaxPingBodyBytes));
  }
  return MHD_YES;
}

// A note's or notice's first call: the operator's token is checked before any body is read.
MHD_Result screen_operator_words(FeedServer::State& state, MHD_Connection* connection) {
  if (!state.desk->authorized(
          MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization"))) {
    return refuse_token(state, connection, MHD_HTTP_FORBIDDEN,
                        "refused: this needs Authorization: Bearer <[page] operator_token>\n");
  }
  if (declared_length_over(connection, kMaxOperatorBodyBytes)) {
    return queue_text(state, connection, MHD_HTTP_CONTENT_TOO_LARGE,
                      fmt::format("body over {} bytes\n", kMaxOperatorBodyBytes));
  }
  return MHD_YES;
}

MHD_Result answer_ping(FeedServer::State& state, MHD_Connection* connection, std::string_view path,
                       FeedRequest& request) {
  std::string_view token;
  JobPing ping;
  if (!parse_ping_path(path, token, ping))
    return queue_text(state, connection, MHD_HTTP_NOT_FOUND, "not found\n");
  if (request.received > kMaxPingBodyBytes) {
    return queue_text(
        state, connection, MHD_HTTP_CONTENT_TOO_LARGE,
        fmt::format("body over {} bytes; send the last lines of the output\n", kMaxPingBodyBytes));
  }
  if (const char* rid = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "rid")) {
    ping.rid = sanitize_target_text(rid, 64);
  }
  if (const char* duration =
          MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "duration_ms")) {
    ping.duration_ms = parse_ping_duration_ms(duration);
  }
  ping.output = clean_run_output(request.body);
  ping.received_ms = wall_now_ms();
  switch (state.pings->submit(token, std::move(ping), mono_now_us())) {
    case PingInbox::Verdict::accepted:
      return queue_text(state, connection, MHD_HTTP_OK, "OK\n");
    case PingInbox::Verdict::unknown_token:
      return queue_text(state, connection, MHD_HTTP_NOT_FOUND, "unknown token\n");
    case PingInbox::Verdict::rate_limited:
      return queue_text(state, connection, MHD_HTTP_TOO_MANY_REQUESTS,
                        "too many pings for this job\n", {{"Retry-After", "1"}});
    case PingInbox::Verdict::queue_full:
      break;
  }
  return queue_text(state, connection, MHD_HTTP_SERVICE_UNAVAILABLE, "busy\n",
                    {{"Retry-After", "1"}});
}

MHD_Result answer_operator_words(FeedServer::State& state, MHD_Connection* connection,
                                 std::string_view path, const FeedRequest& request) {
  if (request.received > kMaxOperatorBodyBytes) {
    return queue_text(state, connection, MHD_HTTP_CONTENT_TOO_LARGE,
                      fmt::format("body over {} bytes\n", kMaxOperatorBodyBytes));
  }
  const OperatorDesk::Answer answer = state.desk->handle(path, request.body, wall_now_ms());
  return queue_text(state, connection, answer.status, answer.body);
}

// A request's first call, with its headers: who may ask what, before anything is read or built.
MHD_Result screen(FeedServer::State& state, MHD_Connection* connection, std::string_view path,
                  std::string_view verb, FeedRequest& request) {
  if (!state.is_public() &&
      !host_allowed(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host"),
                    state.access.allowed_hosts)) {
    state.refuse(FeedRefusals::host);
    return queue_text(state, connection, 421,
                      "this Host is not served here (blip run --allowed-hosts)\n");
  }
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info && state.trusted_proxy(info->client_addr)) {
    // Behind a proxy every client shares its connections: the limit is on each one's requests in
    // flight.
    const ClientKey client = requesting_client(state, connection);
    std::lock_guard lock(state.mutex);
    if (state.forwarded_in_flight[client] >= state.limits.max_connections_per_client) {
      state.refuse(FeedRefusals::per_client);
      return queue_text(state, connection, MHD_HTTP_TOO_MANY_REQUESTS,
                        "too many requests from this client\n",
                        {{"Retry-After", "1"}, {"Connection", "close"}});
    }
    ++state.forwarded_in_flight[client];
    request.forwarded = client;
  }
  request.operator_words =
      !state.is_public() && state.desk && path.starts_with(kOperatorPathPrefix);
  if (request.operator_words) {
    if (verb == "OPTIONS") return queue_preflight(state, connection, "POST, OPTIONS", "");
    if (verb != "POST") {
      return queue_text(state, connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only POST and OPTIONS\n",
                        {{"Allow", "POST, OPTIONS"}});
    }
    return screen_operator_words(state, connection);
  }
  request.ping = !state.is_public() && path.starts_with("/ping/");
  if (request.ping) {
    if (verb == "OPTIONS")
      return queue_preflight(state, connection, "GET, HEAD, POST, OPTIONS", "Content-Type");
    if (verb != "GET" && verb != "HEAD" && verb != "POST") {
      return queue_text(state, connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                        "only GET, HEAD, POST and OPTIONS\n",
                        {{"Allow", "GET, HEAD, POST, OPTIONS"}});
    }
    return screen_ping(state, connection, path);
  }
  if (verb == "OPTIONS") {
    return queue_preflight(state, connection, "GET, HEAD, OPTIONS",
                           "If-None-Match, Cache-Control, Content-Type");
  }
  if (verb != "GET" && verb != "HEAD") {
    return queue_text(state, connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                      "only GET, HEAD and OPTIONS\n", {{"Allow", "GET, HEAD, OPTIONS"}});
  }
  return MHD_YES;
}

// A document's answer, or the request put aside until the document is built.
MHD_Result answer_document(FeedServer::State& state, MHD_Connection* connection, const char* url,
                           FeedRequest& request) {
  using Kind = StatusFeed::Answer::Kind;
  StatusFeed::Answer answer = state.feed.respond(url, state.audience, request.waiting_since_us);
  if (answer.kind == Kind::building) {
    // Asked again under the lock the built-listener takes: a document built in between is not
    // missed.
    std::lock_guard lock(state.mutex);
    const int64_t now_us = mono_now_us();
    answer = state.feed.respond(url, state.audience, std::min(request.waiting_since_us, now_us));
    if (answer.kind == Kind::building && !state.stopping && !request.waited_too_long) {
      MHD_suspend_connection(connection);
      request.waiting_since_us = std::min(request.waiting_since_us, now_us);
      state.waiting[connection] = {now_us, &request};
      return MHD_YES;
    }
  }
  if (answer.kind == Kind::not_found)
    return queue_text(state, connection, MHD_HTTP_NOT_FOUND, "not found\n");
  if (answer.kind == Kind::building) {
    return queue_text(state, connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                      "the document is still being built; retry\n", {{"Retry-After", "1"}});
  }
  return queue_document(state, connection, std::move(answer.response));
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                      void** request_state) noexcept {
  auto& state = *static_cast<FeedServer::State*>(cls);
  const std::string_view path(url);
  const bool ping_path = path.starts_with("/ping/");
  try {
    if (*request_state == nullptr) {
      auto* request = new FeedRequest();
      *request_state = request;
      return screen(state, connection, path, method, *request);
    }
    auto& request = *static_cast<FeedRequest*>(*request_state);
    if (*upload_data_size != 0) {
      // A check-in's output is kept (its tail); any other request's body is dropped.
      if (request.ping) {
        request.received += *upload_data_size;
        if (request.received <= kMaxPingBodyBytes)
          keep_output_tail(request.body, {upload_data, *upload_data_size});
      } else if (request.operator_words) {
        request.received += *upload_data_size;
        if (request.received <= kMaxOperatorBodyBytes)
          request.body.append(upload_data, *upload_data_size);
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (request.ping) return answer_ping(state, connection, path, request);
    if (request.operator_words) return answer_operator_words(state, connection, path, request);
    return answer_document(state, connection, url, request);
  } catch (const std::exception& error) {
    // A ping's path holds its job's token: never logged.
    log_error("feed: request failed url={} err={}", ping_path ? "/ping/***" : url, error.what());
  } catch (...) {
    log_error("feed: request failed url={}", ping_path ? "/ping/***" : url);
  }
  return queue_text(state, connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
}

void request_completed(void* cls, MHD_Connection* connection, void** request_state,
                       MHD_RequestTerminationCode) noexcept {
  auto& state = *static_cast<FeedServer::State*>(cls);
  auto* request = static_cast<FeedRequest*>(*request_state);
  *request_state = nullptr;
  std::lock_guard lock(state.mutex);
  // The next request on this connection has its own time.
  if (auto found = state.connections.find(connection); found != state.connections.end()) {
    found->second.request_began_us = mono_now_us();
  }
  if (request && request->forwarded) {
    auto in_flight = state.forwarded_in_flight.find(*request->forwarded);
    if (in_flight != state.forwarded_in_flight.end() && --in_flight->second == 0)
      state.forwarded_in_flight.erase(in_flight);
  }
  state.waiting.erase(connection);
  delete request;
}

// libmicrohttpd's per-address limit counts exact addresses and cannot tell a
// proxy: blip counts clients itself, an IPv6 /64 as one.
MHD_Result accept_client(void* cls, const sockaddr* address, socklen_t) noexcept {
  auto& state = *static_cast<FeedServer::State*>(cls);
  if (state.trusted_proxy(address)) return MHD_YES;
  std::lock_guard lock(state.mutex);
  auto found = state.per_client.find(client_key(address));
  if (found != state.per_client.end() && found->second >= state.limits.max_connections_per_client) {
    state.refuse(FeedRefusals::per_client);
    return MHD_NO;
  }
  return MHD_YES;
}

void connection_changed(void* cls, MHD_Connection* connection, void**,
                        MHD_ConnectionNotificationCode code) noexcept {
  auto& state = *static_cast<FeedServer::State*>(cls);
  std::lock_guard lock(state.mutex);
  if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    // Called before libmicrohttpd closes the socket, so the janitor never shuts down a reused
    // descriptor.
    auto found = state.connections.find(connection);
    if (found == state.connections.end()) return;
    if (found->second.counted) {
      auto count = state.per_client.find(found->second.client);
      if (count != state.per_client.end() && --count->second == 0) state.per_client.erase(count);
    }
    state.connections.erase(found);
    return;
  }
  const MHD_ConnectionInfo* fd =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
  const MHD_ConnectionInfo* address =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  FeedServer::State::Connection record;
  record.fd = fd ? fd->connect_fd : -1;
  record.client = client_key(address ? address->client_addr : nullptr);
  record.request_began_us = mono_now_us();
  record.counted = !(address && state.trusted_proxy(address->client_addr));
  if (record.counted &&
      ++state.per_client[record.client] > state.limits.max_connections_per_client) {
    // Two accepted at once past the policy's check: the later one goes.
    state.refuse(FeedRefusals::per_client);
    if (record.fd >= 0) shutdown(record.fd, SHUT_RDWR);
    record.cut = true;
  }
  state.connections[connection] = std::move(record);
}

void log_from_library(void*, const char* format, va_list arguments) {
  char message[512];
  std::vsnprintf(message, sizeof message, format, arguments);
  std::string_view text(message);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  log_debug("feed: microhttpd said={}", text);
}

int listen_on(const ListenAddress& address, std::string_view flag) {
  const int fd = socket(address.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    throw std::runtime_error(fmt::format("{} {}: {}", flag, address.text, std::strerror(errno)));
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (address.address.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
  // The kernel's whole accept queue: a crowd refused and reconnecting by the hundred must not fill
  // it, or a legitimate client's SYN is dropped and retried a second later (feed_limits_test saw
  // 1,031 ms with a queue of 128).
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.address), address.length) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    throw std::runtime_error(fmt::format("{} {}: {}", flag, address.text, std::strerror(error)));
  }
  return fd;
}

}  // namespace

std::optional<ListenAddress> parse_listen_address(const std::string& text, std::string* error) {
  ListenAddress parsed;
  parsed.text = text;
  const size_t colon = text.rfind(':');
  auto fail = [&](const std::string& why) -> std::optional<ListenAddress> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return fail(fmt::format(
        "expected ADDRESS:PORT like 127.0.0.1:9185 or [::1]:9185, or off; got \"{}\"", text));
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (*end != '\0' || port > 65535 || port_text.empty() ||
      !std::isdigit(static_cast<unsigned char>(port_text[0]))) {
    return fail(fmt::format("\"{}\" is not a port number", port_text));
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&parsed.address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) != 1) {
      return fail(fmt::format(
          "\"{}\" is not a numeric IPv6 address (no names: nothing is looked up)", host));
    }
    parsed.length = sizeof(sockaddr_in6);
    parsed.loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    return parsed;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&parsed.address);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
    return fail(
        fmt::format("\"{}\" is not a numeric IPv4 address (no names: nothing is looked up)", host));
  }
  parsed.length = sizeof(sockaddr_in);
  parsed.loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  return parsed;
}

// The one thing libmicrohttpd 0.9.75 cannot do: end a request that is slow
// but never idle (a byte every few seconds resets its idle timeout). Shutting
// the socket down makes libmicrohttpd see the end of the stream and close it.
void FeedServer::State::cut_slow_requests_until_stopped() {
  const int64_t limit_us = limits.request_time_ms * 1000;
  std::unique_lock lock(mutex);
  while (!stopping) {
    janitor_wake.wait_for(lock, kJanitorEvery);
    const int64_t now_us = mono_now_us();
    for (auto& [connection, record] : connections) {
      if (record.cut || now_us - record.request_began_us <= limit_us) continue;
      if (record.fd >= 0) shutdown(record.fd, SHUT_RDWR);
      record.cut = true;
      refuse(FeedRefusals::request_time);
    }
    // A request put aside for a document that takes this long is answered "retry" instead.
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (now_us - it->second.first <= limit_us / 2) {
        ++it;
        continue;
      }
      it->second.second->waited_too_long = true;
      MHD_resume_connection(it->first);
      it = waiting.erase(it);
    }
  }
}

FeedServer::FeedServer(StatusFeed& feed, PingInbox* pings, OperatorDesk* desk, Audience audience,
                       const ListenAddress& address, const FeedLimits& limits, FeedAccess access)
    : state_(std::make_unique<State>(feed, pings, desk, audience, limits, std::move(access))) {
  const std::string_view flag = audience == Audience::public_view ? "--public-listen" : "--listen";
  const int fd = listen_on(address, flag);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (address.address.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  daemon_ = MHD_start_daemon(
      flags, 0, &accept_client, state_.get(), &on_request, state_.get(),
      MHD_OPTION_NOTIFY_COMPLETED, &request_completed, state_.get(), MHD_OPTION_NOTIFY_CONNECTION,
      &connection_changed, state_.get(), MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
      kThreads, MHD_OPTION_CONNECTION_LIMIT, limits.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      limits.idle_timeout_seconds, MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits.request_memory_bytes,
      MHD_OPTION_EXTERNAL_LOGGER, &log_from_library, nullptr, MHD_OPTION_END);
  if (!daemon_) {
    close(fd);
    throw std::runtime_error(
        fmt::format("{} {}: the HTTP server did not start", flag, address.text));
  }
  state_->janitor =
      std::thread([state = state_.get()] { state->cut_slow_requests_until_stopped(); });
  feed.add_built_listener(this, [state = state_.get()] {
    std::lock_guard lock(state->mutex);
    state->resume_waiting();
  });
}

FeedServer::~FeedServer() {
  state_->feed.remove_built_listener(this);
  {
    // No request is put aside from here on, and those that are get their answer before the server
    // stops.
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->resume_waiting();
  }
  state_->janitor_wake.notify_all();
  state_->janitor.join();
  MHD_stop_daemon(daemon_);
}

}  // namespace blip
