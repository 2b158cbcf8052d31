// HTTP(S) probe: one curl easy handle per attempt on the shared multi handle.
// With follow_redirects blip follows each Location itself (curl's own following
// would send custom headers and client certificates to any host it is sent to):
// every hop's host is looked up by blip's resolver, and the probe's headers,
// credentials and client certificate go only to hops of the URL's own origin.
#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "blip/adapters/curl_easy.hpp"
#include "blip/adapters/curl_uv.hpp"
#include "blip/adapters/resolver.hpp"
#include "blip/core/clock.hpp"
#include "blip/probes/probe.hpp"

namespace blip {
namespace {

ErrorClass classify(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorClass::timeout;
    case CURLE_COULDNT_CONNECT:
      return ErrorClass::refused;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return ErrorClass::dns;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ISSUER_ERROR:
      return ErrorClass::tls;
    case CURLE_TOO_MANY_REDIRECTS:
      return ErrorClass::redirects;
    case CURLE_WRITE_ERROR:
      return ErrorClass::body_too_large;  // only our write callback refuses
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return ErrorClass::reset;
    default:
      return ErrorClass::protocol;
  }
}

constexpr int64_t kDayMs = 86'400'000;

// The parsed CA store stays on the multi handle this long (curl's cache,
// keyed by the CA file's path), so a fresh connection does not parse the
// system's ~290 certificates again; a replaced CA file shows within the hour.
constexpr long kCaCacheSeconds = 3600;

// As many redirects as curl's CURLOPT_MAXREDIRS allowed before blip followed them itself.
constexpr int kMaxRedirects = 10;

std::string lowercase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// One request of an attempt: the URL (without user info: credentials go in
// options, and only to the probe's own origin), its origin and its host.
struct Hop {
  std::string url;
  std::string scheme;  // lower case
  std::string host;    // as the URL spells it (curl's CURLOPT_RESOLVE entry), without an IPv6
                       // address's brackets
  std::string port;    // the scheme's default when the URL names none
  bool same_origin(const Hop& other) const {
    return scheme == other.scheme && lowercase(host) == lowercase(other.host) && port == other.port;
  }
};

// Parses a URL into a Hop; `user` and `password` receive its user info (decoded), if asked.
std::optional<Hop> parse_hop(const std::string& url, std::string* user = nullptr,
                             std::string* password = nullptr) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return std::nullopt;
  auto part = [&](CURLUPart which, unsigned flags, std::string* into) {
    char* text = nullptr;
    const bool found = curl_url_get(handle.get(), which, &text, flags) == CURLUE_OK;
    if (found && into) *into = text;
    curl_free(text);
    return found;
  };
  if (user) part(CURLUPART_USER, CURLU_URLDECODE, user);
  if (password) part(CURLUPART_PASSWORD, CURLU_URLDECODE, password);
  curl_url_set(handle.get(), CURLUPART_USER, nullptr, 0);
  curl_url_set(handle.get(), CURLUPART_PASSWORD, nullptr, 0);
  Hop hop;
  if (!part(CURLUPART_SCHEME, 0, &hop.scheme) || !part(CURLUPART_HOST, 0, &hop.host) ||
      !part(CURLUPART_PORT, CURLU_DEFAULT_PORT, &hop.port) || !part(CURLUPART_URL, 0, &hop.url)) {
    return std::nullopt;
  }
  hop.scheme = lowercase(hop.scheme);
  if (hop.host.size() > 2 && hop.host.front() == '[')
    hop.host = hop.host.substr(1, hop.host.size() - 2);
  return hop;
}

Phases& operator+=(Phases& sum, const Phases& hop) {
  sum.dns_us += hop.dns_us;
  sum.connect_us += hop.connect_us;
  sum.tls_us += hop.tls_us;
  sum.first_byte_us += hop.first_byte_us;
  return sum;
}

std::optional<int64_t> not_after_ms(const X509* certificate) {
  const ASN1_TIME* not_after = certificate ? X509_get0_notAfter(certificate) : nullptr;
  std::tm when{};
  if (!not_after || ASN1_TIME_to_tm(not_after, &when) != 1) return std::nullopt;
  return static_cast<int64_t>(timegm(&when)) * 1000;
}

// The earliest notAfter of the chain the server sent, read from curl's
// OpenSSL handle: the certificates are parsed already, so this costs a few
// field reads (CURLOPT_CERTINFO would render every certificate as text on
// every handshake). Only valid while the connection is open, so it is called
// from the pre-request callback, right after the handshake.
std::optional<int64_t> peer_chain_expiry_ms(CURL* easy) {
  curl_tlssessioninfo* session = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_TLS_SSL_PTR, &session) != CURLE_OK || !session ||
      session->backend != CURLSSLBACKEND_OPENSSL || !session->internals) {
    return std::nullopt;
  }
  auto* ssl = static_cast<SSL*>(session->internals);
  std::optional<int64_t> earliest;
  auto consider = [&](const X509* certificate) {
    if (auto ms = not_after_ms(certificate)) earliest = earliest ? std::min(*earliest, *ms) : *ms;
  };
  // A client's peer chain starts with the server's own certificate.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) consider(sk_X509_value(chain, i));
  }
  // A resumed session carries no chain, only the peer's certificate.
  if (!earliest) consider(SSL_get0_peer_certificate(ssl));
  return earliest;
}

std::string days_text(int64_t ms) {
  const int64_t days = ms / kDayMs;
  if (days >= 1) return fmt::format("{} day{}", days, days == 1 ? "" : "s");
  const int64_t hours = ms / 3'600'000;
  return fmt::format("{} hour{}", hours, hours == 1 ? "" : "s");
}

class HttpProbe final : public Probe {
 public:
  HttpProbe(const ProbeConfig& config, ProbeContext& context)
      : settings_(std::get<HttpSettings>(config.settings)),
        lookup_limit_ms_(Resolver::limit_for(config.timeout_ms)),
        curl_(*context.curl),
        resolver_(*context.resolver) {
    for (const auto& [name, value] : settings_.headers) {
      headers_.append(fmt::format("{}: {}", name, value));
    }
    // The URL's own user info becomes the credentials (unless the probe names
    // them), so that the URL of each hop carries none.
    std::string url_user;
    std::string url_password;
    if (auto hop = parse_hop(settings_.url, &url_user, &url_password)) {
      first_hop_ = std::move(*hop);
    } else {
      first_hop_.url = settings_.url;  // curl says what is wrong with it
    }
    if (!settings_.username.empty() || !settings_.password.empty()) {
      credentials_ = {settings_.username, settings_.password};
    } else if (!url_user.empty() || !url_password.empty()) {
      credentials_ = {url_user, url_password};
    }
  }
  ~HttpProbe() override {
    for (auto& [id, attempt] : attempts_) forget(*attempt);
  }

  void start(AttemptId id, ProbeDone done) override {
    auto attempt = std::make_unique<Attempt>(
        settings_.max_body_bytes, !settings_.expect_body.empty(), settings_.follow_redirects);
    attempt->done = std::move(done);
    attempt->started_us = mono_now_us();
    Attempt& started = *attempts_.emplace(id, std::move(attempt)).first->second;
    begin_hop(id, started, first_hop_);
  }

  void cancel(AttemptId id) noexcept override {
    auto node = attempts_.extract(id);
    if (!node.empty()) forget(*node.mapped());
  }

 private:
  struct Attempt {
    Attempt(int64_t max_body, bool keep, bool follow)
        : body_limit(max_body), keep_body(keep), follow_redirects(follow) {}
    CurlEasy easy;
    ProbeDone done;
    int64_t started_us = 0;
    Hop hop;                      // the request under way
    int redirects = 0;            // followed so far
    Phases finished_hops;         // summed over the hops before this one, lookups included
    Resolver::Ticket lookup = 0;  // while resolving
    int64_t lookup_us = 0;        // this hop's lookup
    CurlList resolve;             // host:port:address for curl
    bool transferring = false;
    int64_t body_limit;
    bool keep_body;
    bool follow_redirects;
    bool has_location = false;  // the response so far has a Location header
    bool redirecting = false;   // its headers ended: a 3xx with a Location
    int64_t body_bytes = 0;
    std::string body;        // kept only while expect_body needs it, up to body_limit
    bool read_chain = true;  // false: a reused connection whose chain is known already
    std::optional<int64_t> cert_expiry_ms;  // from this attempt's handshakes
    bool headers_ended = false;             // the last response's blank line came
    int socket_errno = 0;                   // why socket() failed, if it did
    char error[CURL_ERROR_SIZE] = {};
  };

  // Keeps at most body_limit bytes; returning less than offered makes curl
  // abort with CURLE_WRITE_ERROR, so a huge body never grows memory.
  // A redirect's body, when blip follows it, is read and dropped, as curl's
  // own following did: neither max_body_bytes nor expect_body sees it.
  static size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto* attempt = static_cast<Attempt*>(user);
    size_t bytes = size * count;
    if (attempt->follow_redirects && attempt->redirecting) return bytes;
    attempt->body_bytes += static_cast<int64_t>(bytes);
    if (attempt->body_bytes > attempt->body_limit) return 0;
    if (attempt->keep_body) attempt->body.append(data, bytes);
    return bytes;
  }

  // curl 7.88 takes a connection closed in the middle of the headers for a
  // complete answer (CURLE_OK, the status line's code): the blank line that
  // ends them is what says the answer came whole.
  static size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* attempt = static_cast<Attempt*>(user);
    const std::string_view line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0) {  // a next response (after 100 Continue)
      attempt->headers_ended = false;
      attempt->has_location = false;
    }
    if (line.size() > 9 && lowercase(line.substr(0, 9)) == "location:")
      attempt->has_location = true;
    if (line == "\r\n" || line == "\n") {
      attempt->headers_ended = true;
      // What curl's CURLINFO_REDIRECT_URL will say once the transfer is done: a 3xx with a
      // Location.
      long status = 0;
      curl_easy_getinfo(attempt->easy.get(), CURLINFO_RESPONSE_CODE, &status);
      attempt->redirecting = attempt->has_location && status >= 300 && status <= 399;
    }
    return size * count;
  }

  static curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* address) {
    auto* attempt = static_cast<Attempt*>(user);
    const curl_socket_t socket_fd =
        socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    attempt->socket_errno = socket_fd == CURL_SOCKET_BAD ? errno : 0;
    return socket_fd;
  }

  // Runs once the connection is up (the TLS handshake done), before the
  // request is sent: the only moment the connection's SSL handle is certainly there.
  static int on_connected(void* user, char*, char*, int, int) {
    auto* attempt = static_cast<Attempt*>(user);
    long new_connections = 0;
    curl_easy_getinfo(attempt->easy.get(), CURLINFO_NUM_CONNECTS, &new_connections);
    if (new_connections > 0 || attempt->read_chain) {
      if (auto expiry = peer_chain_expiry_ms(attempt->easy.get())) {
        attempt->cert_expiry_ms =
            attempt->cert_expiry_ms ? std::min(*attempt->cert_expiry_ms, *expiry) : *expiry;
      }
    }
    return CURL_PREREQFUNC_OK;
  }

  // A host name is looked up by blip's Resolver first and handed to curl as a
  // CURLOPT_RESOLVE entry, so curl never starts its own lookup thread for it.
  // Every hop's lookup ends by the same point of the attempt (limit_for its timeout).
  void begin_hop(AttemptId id, Attempt& attempt, Hop hop) {
    attempt.hop = std::move(hop);
    attempt.lookup_us = 0;
    attempt.resolve.clear();
    if (attempt.hop.host.empty() || Resolver::is_numeric(attempt.hop.host))
      return transfer(id, attempt);
    const int64_t hop_started_us = mono_now_us();
    const int64_t limit_ms =
        std::max<int64_t>(1, lookup_limit_ms_ - (hop_started_us - attempt.started_us) / 1000);
    attempt.lookup = resolver_.resolve(
        attempt.hop.host, limit_ms,
        [this, id, hop_started_us](const std::string& address, const std::string& error) {
          Attempt& resolved = *attempts_.at(id);
          resolved.lookup = 0;
          resolved.lookup_us = mono_now_us() - hop_started_us;
          if (address.empty()) {
            Phases phases = resolved.finished_hops;
            phases.dns_us += resolved.lookup_us;
            return finish(id, ProbeResult::failure(ErrorClass::dns, error, phases));
          }
          const bool v6 = address.find(':') != std::string::npos;
          resolved.resolve.append(fmt::format("{}:{}:{}", resolved.hop.host, resolved.hop.port,
                                              v6 ? "[" + address + "]" : address));
          transfer(id, resolved);
        });
  }

  void transfer(AttemptId id, Attempt& attempt) {
    attempt.read_chain = !settings_.reuse_connection || !last_cert_expiry_ms_;
    attempt.headers_ended = false;
    attempt.has_location = false;
    attempt.redirecting = false;
    attempt.body.clear();
    attempt.body_bytes = 0;
    attempt.socket_errno = 0;
    attempt.error[0] = '\0';
    curl_easy_reset(attempt.easy.get());  // keeps the multi handle's connections and caches
    configure(attempt.easy.get(), attempt);
    attempt.transferring = true;
    curl_.add(attempt.easy.get(), [this, id](CURLcode code) {
      auto found = attempts_.find(id);
      if (found == attempts_.end()) return;
      found->second->transferring = false;
      answered(id, code, *found->second);
    });
  }

  // A response came: follow its redirect, or judge it.
  void answered(AttemptId id, CURLcode code, Attempt& attempt) {
    char* location = nullptr;
    if (!settings_.follow_redirects || code != CURLE_OK || !attempt.headers_ended ||
        curl_easy_getinfo(attempt.easy.get(), CURLINFO_REDIRECT_URL, &location) != CURLE_OK ||
        !location) {
      return finish(id, evaluate(code, attempt));
    }
    if (attempt.redirects == kMaxRedirects) {
      std::snprintf(attempt.error, sizeof attempt.error, "Maximum (%d) redirects followed",
                    kMaxRedirects);
      return finish(id, evaluate(CURLE_TOO_MANY_REDIRECTS, attempt));
    }
    std::optional<Hop> next = parse_hop(location);
    if (!next || (next->scheme != "http" && next->scheme != "https")) {
      // The Location is the server's text: name at most its scheme, and only a short one.
      const std::string why =
          next && next->scheme.size() <= 16
              ? fmt::format("redirect to an unsupported scheme \"{}\"", next->scheme)
              : std::string("redirect to a URL blip cannot follow");
      std::snprintf(attempt.error, sizeof attempt.error, "%s", why.c_str());
      return finish(id, evaluate(CURLE_UNSUPPORTED_PROTOCOL, attempt));
    }
    attempt.finished_hops += hop_phases(attempt);
    ++attempt.redirects;
    begin_hop(id, attempt, std::move(*next));
  }

  void forget(Attempt& attempt) noexcept {
    if (attempt.lookup) resolver_.cancel(attempt.lookup);
    if (attempt.transferring) curl_.remove(attempt.easy.get());
  }

  void finish(AttemptId id, ProbeResult result) {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    auto done = std::move(node.mapped()->done);
    done(std::move(result));
  }

  void configure(CURL* easy, Attempt& attempt) const {
    curl_easy_setopt(easy, CURLOPT_URL, attempt.hop.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (attempt.resolve.get()) curl_easy_setopt(easy, CURLOPT_RESOLVE, attempt.resolve.get());
    // A proxy named by the environment is still resolved by curl's thread:
    // removing such a transfer must not wait for that lookup to end.
    curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "blip/0.1");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, attempt.error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &HttpProbe::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &attempt);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &HttpProbe::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &attempt);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &HttpProbe::on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, &attempt);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (settings_.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (settings_.method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, settings_.method.c_str());
    }
    // curl never follows (CURLOPT_FOLLOWLOCATION stays off): answered() does.
    // What the probe's own origin is trusted with goes nowhere else, not even
    // to the same host over plain http.
    const bool own_origin = attempt.hop.same_origin(first_hop_);
    if (own_origin && headers_.get()) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_.get());
    if (own_origin && credentials_) {
      curl_easy_setopt(easy, CURLOPT_USERNAME, credentials_->first.c_str());
      curl_easy_setopt(easy, CURLOPT_PASSWORD, credentials_->second.c_str());
    }
    if (own_origin && !settings_.client_cert.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSLCERT, settings_.client_cert.c_str());
    }
    if (own_origin && !settings_.client_key.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSLKEY, settings_.client_key.c_str());
    }
    if (!settings_.tls_verify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      if (!settings_.ca_file.empty())
        curl_easy_setopt(easy, CURLOPT_CAINFO, settings_.ca_file.c_str());
      // Debian's libcurl also names a CA directory by default, and curl caches
      // a store only when it comes from a CA file alone. The default bundle
      // holds the same certificates as that directory.
      curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
      curl_easy_setopt(easy, CURLOPT_CA_CACHE_TIMEOUT, kCaCacheSeconds);
    }
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &HttpProbe::on_connected);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, &attempt);
    if (!settings_.reuse_connection) {
      // A fresh connection each time is what sees accept-queue and TLS stalls.
      curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT,
                       0L);  // and a fresh lookup: DNS failures show at once
    }
  }

  // One hop's phases: curl's times since the hop's start, made each phase's own
  // duration, and blip's lookup before it. An attempt's phases are the sums over its hops.
  static Phases hop_phases(const Attempt& attempt) {
    curl_off_t resolved = 0, connected = 0, handshaken = 0, pretransfer = 0, first_byte = 0;
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_NAMELOOKUP_TIME_T, &resolved);
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_APPCONNECT_TIME_T, &handshaken);
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
    Phases phases;
    phases.dns_us = attempt.lookup_us + resolved;
    phases.connect_us = connected > resolved ? connected - resolved : 0;
    phases.tls_us = handshaken > connected ? handshaken - connected : 0;
    phases.first_byte_us = first_byte > pretransfer ? first_byte - pretransfer : 0;
    return phases;
  }

  ProbeResult evaluate(CURLcode code, Attempt& attempt) {
    ProbeResult result = evaluate_answer(code, attempt);
    if (attempt.cert_expiry_ms) {
      last_cert_expiry_ms_ = attempt.cert_expiry_ms;
    } else if (code == CURLE_OK && settings_.reuse_connection) {
      long new_connections = 0;
      curl_easy_getinfo(attempt.easy.get(), CURLINFO_NUM_CONNECTS, &new_connections);
      if (new_connections == 0)
        attempt.cert_expiry_ms = last_cert_expiry_ms_;  // the same handshake as before
    }
    result.cert_expiry_ms = attempt.cert_expiry_ms;
    if (result.ok && attempt.cert_expiry_ms) check_expiry(*attempt.cert_expiry_ms, result);
    return result;
  }

  // An answered attempt whose certificate expires within min_cert_days is
  // degraded; one that expired since its handshake (a kept connection) is down.
  void check_expiry(int64_t expiry_ms, ProbeResult& result) const {
    const int64_t left_ms = expiry_ms - wall_now_ms();
    if (left_ms <= 0 && settings_.tls_verify) {
      result = ProbeResult::failure(
          ErrorClass::tls, fmt::format("certificate expired at {}", format_iso8601_ms(expiry_ms)),
          result.phases);
      result.cert_expiry_ms = expiry_ms;
      return;
    }
    if (settings_.min_cert_days == 0 || left_ms >= settings_.min_cert_days * kDayMs) return;
    result.degraded = true;
    result.detail =
        left_ms > 0
            ? fmt::format("certificate expires in {} ({}), below min_cert_days {}",
                          days_text(left_ms), format_iso8601_ms(expiry_ms), settings_.min_cert_days)
            : fmt::format("certificate expired at {} (tls_verify is off)",
                          format_iso8601_ms(expiry_ms));
  }

  ProbeResult evaluate_answer(CURLcode code, Attempt& attempt) const {
    Phases phases = attempt.finished_hops;
    phases += hop_phases(attempt);
    if (code != CURLE_OK) {
      ErrorClass error = classify(code);
      std::string detail = error == ErrorClass::body_too_large
                               ? fmt::format("body larger than {} bytes", settings_.max_body_bytes)
                               : (attempt.error[0] ? attempt.error : curl_easy_strerror(code));
      // curl says "Couldn't connect to server" when socket() itself failed: name the cause, so that
      // the scheduler can tell blip's own want of descriptors from a target that refuses.
      if (attempt.socket_errno != 0)
        detail += fmt::format(" (socket: {})", std::strerror(attempt.socket_errno));
      ProbeResult failure = ProbeResult::failure(error, std::move(detail), phases);
      failure.no_socket = attempt.socket_errno == EMFILE || attempt.socket_errno == ENFILE;
      return failure;
    }
    if (!attempt.headers_ended) {
      return ProbeResult::failure(
          ErrorClass::reset, "connection closed in the middle of the response headers", phases);
    }
    long status = 0;
    curl_easy_getinfo(attempt.easy.get(), CURLINFO_RESPONSE_CODE, &status);
    bool expected = false;
    for (const StatusRange& range : settings_.expect_status) {
      expected = expected || (status >= range.first && status <= range.last);
    }
    if (!expected)
      return ProbeResult::failure(ErrorClass::http_status, fmt::format("HTTP {}", status), phases);
    if (!settings_.expect_body.empty() &&
        attempt.body.find(settings_.expect_body) == std::string::npos) {
      return ProbeResult::failure(ErrorClass::body_mismatch,
                                  fmt::format("HTTP {}, body lacks the expected text", status),
                                  phases);
    }
    return ProbeResult::success(phases, fmt::format("HTTP {}", status));
  }

  const HttpSettings& settings_;
  int64_t lookup_limit_ms_;
  CurlMultiUv& curl_;
  Resolver& resolver_;
  Hop first_hop_;  // the configured URL, without its user info; its origin is the probe's own
  // From username/password, or else the URL's user info: sent only to the probe's own origin.
  std::optional<std::pair<std::string, std::string>> credentials_;
  CurlList headers_;  // sent only to the probe's own origin
  std::optional<int64_t>
      last_cert_expiry_ms_;  // of the last handshake seen, for a reused connection
  std::unordered_map<AttemptId, std::unique_ptr<Attempt>> attempts_;
};

}  // namespace

std::unique_ptr<Probe> make_http_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<HttpProbe>(config, context);
}

}  // namespace blip
