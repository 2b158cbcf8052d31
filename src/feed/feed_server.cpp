#include "blip/feed/feed_server.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <stdexcept>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {

// What the server's callbacks reach.
struct FeedRoutes {
  StatusFeed& feed;
  PingInbox& pings;
};

namespace {

constexpr unsigned kThreads = 2;  // one may build a document while the other answers /metrics or /healthz

void add_common_headers(MHD_Response* response) {
  MHD_add_response_header(response, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
}

MHD_Result queue_text(MHD_Connection* connection, unsigned status, std::string_view text,
                      std::initializer_list<std::pair<const char*, const char*>> headers = {}) {
  MHD_Response* response =
      MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  if (!response) return MHD_NO;
  add_common_headers(response);
  MHD_add_response_header(response, "Content-Type", "text/plain; charset=utf-8");
  MHD_add_response_header(response, "Cache-Control", "no-store");
  for (const auto& [name, value] : headers) MHD_add_response_header(response, name, value);
  const MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

// A CORS preflight's answer: what a page on another origin may send here.
MHD_Result queue_preflight(MHD_Connection* connection, const char* methods, const char* headers) {
  return queue_text(connection, MHD_HTTP_NO_CONTENT, "",
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

MHD_Result queue_document(MHD_Connection* connection, std::shared_ptr<const FeedResponse> document) {
  const bool cacheable = !document->etag.empty();
  if (cacheable && matches_etag(MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "If-None-Match"),
                                document->etag)) {
    MHD_Response* response = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
    if (!response) return MHD_NO;
    add_common_headers(response);
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
  add_common_headers(response);
  MHD_add_response_header(response, "Content-Type", document->content_type.c_str());
  MHD_add_response_header(response, "Cache-Control", cacheable ? "max-age=1" : "no-store");
  if (cacheable) MHD_add_response_header(response, "ETag", document->etag.c_str());
  if (document->content_type.starts_with("text/html")) {
    // The page is self-contained: its own inline script and style, and JSON from this origin.
    MHD_add_response_header(response, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'self'");
  }
  const MHD_Result result = MHD_queue_response(connection, document->status, response);
  MHD_destroy_response(response);
  return result;
}

// A check-in in progress: its body arrives in pieces; only the tail is kept.
struct PingRequest {
  std::string body;
  size_t received = 0;
};
int headers_seen;  // the request state of every other request: nothing to keep

MHD_Result answer_ping(MHD_Connection* connection, PingInbox& pings, std::string_view path, PingRequest& request) {
  std::string_view token;
  JobPing ping;
  if (!parse_ping_path(path, token, ping)) return queue_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
  if (request.received > kMaxPingBodyBytes) {
    return queue_text(connection, MHD_HTTP_CONTENT_TOO_LARGE,
                      fmt::format("body over {} bytes; send the last lines of the output\n", kMaxPingBodyBytes));
  }
  if (const char* rid = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "rid")) {
    ping.rid = sanitize_target_text(rid, 64);
  }
  if (const char* duration = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "duration_ms")) {
    ping.duration_ms = parse_ping_duration_ms(duration);
  }
  ping.output = clean_run_output(request.body);
  ping.received_ms = wall_now_ms();
  switch (pings.submit(token, std::move(ping), mono_now_us())) {
    case PingInbox::Verdict::accepted:
      return queue_text(connection, MHD_HTTP_OK, "OK\n");
    case PingInbox::Verdict::unknown_token:
      return queue_text(connection, MHD_HTTP_NOT_FOUND, "unknown token\n");
    case PingInbox::Verdict::rate_limited:
      return queue_text(connection, MHD_HTTP_TOO_MANY_REQUESTS, "too many pings for this job\n", {{"Retry-After", "1"}});
    case PingInbox::Verdict::queue_full:
      break;
  }
  return queue_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "busy\n", {{"Retry-After", "1"}});
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                      void** request_state) noexcept {
  FeedRoutes& routes = *static_cast<FeedRoutes*>(cls);
  const std::string_view path(url);
  const bool ping_path = path.starts_with("/ping/");
  try {
    if (ping_path) {
      const std::string_view verb(method);
      if (verb == "OPTIONS") return queue_preflight(connection, "GET, HEAD, POST, OPTIONS", "Content-Type");
      if (verb != "GET" && verb != "HEAD" && verb != "POST") {
        return queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET, HEAD, POST and OPTIONS\n",
                          {{"Allow", "GET, HEAD, POST, OPTIONS"}});
      }
      if (*request_state == nullptr) {
        *request_state = new PingRequest();
        return MHD_YES;
      }
      auto& request = *static_cast<PingRequest*>(*request_state);
      if (*upload_data_size != 0) {
        request.received += *upload_data_size;
        if (request.received <= kMaxPingBodyBytes) keep_output_tail(request.body, {upload_data, *upload_data_size});
        *upload_data_size = 0;
        return MHD_YES;
      }
      return answer_ping(connection, routes.pings, path, request);
    }
    const std::string_view verb(method);
    const bool readable = verb == "GET" || verb == "HEAD";
    if (!readable && verb != "OPTIONS") {
      return queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET, HEAD and OPTIONS\n",
                        {{"Allow", "GET, HEAD, OPTIONS"}});
    }
    // The first call has only the headers; a body, if any, comes next and is dropped.
    if (*request_state == nullptr) {
      *request_state = &headers_seen;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (verb == "OPTIONS") {
      return queue_preflight(connection, "GET, HEAD, OPTIONS", "If-None-Match, Cache-Control, Content-Type");
    }
    auto document = routes.feed.respond(url);
    if (!document) return queue_text(connection, MHD_HTTP_NOT_FOUND, "not found\n");
    return queue_document(connection, std::move(document));
  } catch (const std::exception& error) {
    // A ping's path holds its job's token: never logged.
    log_error("feed: request failed url={} err={}", ping_path ? "/ping/***" : url, error.what());
  } catch (...) {
    log_error("feed: request failed url={}", ping_path ? "/ping/***" : url);
  }
  return queue_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
}

void log_from_library(void*, const char* format, va_list arguments) {
  char message[512];
  std::vsnprintf(message, sizeof message, format, arguments);
  std::string_view text(message);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  log_debug("feed: microhttpd said={}", text);
}

int listen_on(const ListenAddress& address) {
  const int fd = socket(address.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("--listen {}: {}", address.text, std::strerror(errno)));
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (address.address.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.address), address.length) != 0 || listen(fd, 128) != 0) {
    const int error = errno;
    close(fd);
    throw std::runtime_error(fmt::format("--listen {}: {}", address.text, std::strerror(error)));
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
    return fail(fmt::format("expected ADDRESS:PORT like 127.0.0.1:9185 or [::1]:9185, or off; got \"{}\"", text));
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (*end != '\0' || port > 65535 || port_text.empty() || !std::isdigit(static_cast<unsigned char>(port_text[0]))) {
    return fail(fmt::format("\"{}\" is not a port number", port_text));
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&parsed.address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) != 1) {
      return fail(fmt::format("\"{}\" is not a numeric IPv6 address (no names: nothing is looked up)", host));
    }
    parsed.length = sizeof(sockaddr_in6);
    parsed.loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    return parsed;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&parsed.address);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
    return fail(fmt::format("\"{}\" is not a numeric IPv4 address (no names: nothing is looked up)", host));
  }
  parsed.length = sizeof(sockaddr_in);
  parsed.loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  return parsed;
}

namespace {

void request_completed(void*, MHD_Connection*, void** request_state, MHD_RequestTerminationCode) noexcept {
  if (*request_state != nullptr && *request_state != &headers_seen) delete static_cast<PingRequest*>(*request_state);
  *request_state = nullptr;
}

}  // namespace

FeedServer::FeedServer(StatusFeed& feed, PingInbox& pings, const ListenAddress& address, const FeedLimits& limits)
    : routes_(std::make_unique<FeedRoutes>(FeedRoutes{feed, pings})) {
  const int fd = listen_on(address);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (address.address.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &on_request, routes_.get(), MHD_OPTION_NOTIFY_COMPLETED, &request_completed,
      nullptr, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
      kThreads, MHD_OPTION_CONNECTION_LIMIT, limits.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      limits.max_connections_per_client, MHD_OPTION_CONNECTION_TIMEOUT, limits.idle_timeout_seconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits.request_memory_bytes, MHD_OPTION_EXTERNAL_LOGGER,
      &log_from_library, nullptr, MHD_OPTION_END);
  if (!daemon_) {
    close(fd);
    throw std::runtime_error(fmt::format("--listen {}: the HTTP server did not start", address.text));
  }
}

FeedServer::~FeedServer() { MHD_stop_daemon(daemon_); }

}  // namespace blip
