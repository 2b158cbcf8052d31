// HTTP(S) probe: one curl easy handle per attempt on the shared multi handle.
#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <unordered_map>

#include "blip/adapters/curl_uv.hpp"
#include "blip/adapters/resolver.hpp"
#include "blip/core/clock.hpp"
#include "blip/probes/probe.hpp"

namespace blip {
namespace {

ErrorClass classify(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return ErrorClass::timeout;
    case CURLE_COULDNT_CONNECT: return ErrorClass::refused;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return ErrorClass::dns;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ISSUER_ERROR: return ErrorClass::tls;
    case CURLE_TOO_MANY_REDIRECTS: return ErrorClass::redirects;
    case CURLE_WRITE_ERROR: return ErrorClass::body_too_large;  // only our write callback refuses
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: return ErrorClass::reset;
    default: return ErrorClass::protocol;
  }
}

constexpr int64_t kDayMs = 86'400'000;

// The parsed CA store stays on the multi handle this long (curl's cache,
// keyed by the CA file's path), so a fresh connection does not parse the
// system's ~290 certificates again; a replaced CA file shows within the hour.
constexpr long kCaCacheSeconds = 3600;

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
      headers_ = curl_slist_append(headers_, fmt::format("{}: {}", name, value).c_str());
    }
    if (CURLU* url = curl_url()) {
      char* host = nullptr;
      char* port = nullptr;
      if (curl_url_set(url, CURLUPART_URL, settings_.url.c_str(), 0) == CURLUE_OK &&
          curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
          curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        host_ = host;
        port_ = port;
      }
      curl_free(host);
      curl_free(port);
      curl_url_cleanup(url);
    }
    if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    needs_lookup_ = !host_.empty() && !Resolver::is_numeric(host_);
  }
  ~HttpProbe() override {
    for (auto& [id, attempt] : attempts_) forget(*attempt);
    curl_slist_free_all(headers_);
  }

  // A host name is looked up by blip's Resolver first and handed to curl as a
  // CURLOPT_RESOLVE entry, so curl never starts its own lookup thread for it.
  void start(AttemptId id, ProbeDone done) override {
    auto attempt = std::make_unique<Attempt>(settings_.max_body_bytes, !settings_.expect_body.empty());
    attempt->done = std::move(done);
    attempt->started_us = mono_now_us();
    Attempt& started = *attempts_.emplace(id, std::move(attempt)).first->second;
    if (!needs_lookup_) return transfer(id, started);
    started.lookup = resolver_.resolve(host_, lookup_limit_ms_, [this, id](const std::string& address,
                                                                           const std::string& error) {
      Attempt& resolved = *attempts_.at(id);
      resolved.lookup = 0;
      resolved.lookup_us = mono_now_us() - resolved.started_us;
      if (address.empty()) return finish(id, ProbeResult::failure(ErrorClass::dns, error, Phases{resolved.lookup_us}));
      const bool v6 = address.find(':') != std::string::npos;
      resolved.resolve = curl_slist_append(
          nullptr, fmt::format("{}:{}:{}", host_, port_, v6 ? "[" + address + "]" : address).c_str());
      transfer(id, resolved);
    });
  }

  void cancel(AttemptId id) noexcept override {
    auto node = attempts_.extract(id);
    if (!node.empty()) forget(*node.mapped());
  }

 private:
  struct Attempt {
    Attempt(int64_t max_body, bool keep) : easy(curl_easy_init()), body_limit(max_body), keep_body(keep) {}
    ~Attempt() {
      curl_easy_cleanup(easy);
      curl_slist_free_all(resolve);
    }
    Attempt(const Attempt&) = delete;
    Attempt& operator=(const Attempt&) = delete;
    CURL* easy;
    ProbeDone done;
    int64_t started_us = 0;
    Resolver::Ticket lookup = 0;  // while resolving
    int64_t lookup_us = 0;
    curl_slist* resolve = nullptr;  // host:port:address for curl
    bool transferring = false;
    int64_t body_limit;
    bool keep_body;
    int64_t body_bytes = 0;
    std::string body;  // kept only while expect_body needs it, up to body_limit
    bool read_chain = true;                 // false: a reused connection whose chain is known already
    std::optional<int64_t> cert_expiry_ms;  // from this attempt's handshakes
    bool headers_ended = false;             // the last response's blank line came
    int socket_errno = 0;                   // why socket() failed, if it did
    char error[CURL_ERROR_SIZE] = {};
  };

  // Keeps at most body_limit bytes; returning less than offered makes curl
  // abort with CURLE_WRITE_ERROR, so a huge body never grows memory.
  static size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto* attempt = static_cast<Attempt*>(user);
    size_t bytes = size * count;
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
    if (line.rfind("HTTP/", 0) == 0) attempt->headers_ended = false;  // a next response (a redirect, 100 Continue)
    if (line == "\r\n" || line == "\n") attempt->headers_ended = true;
    return size * count;
  }

  static curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* address) {
    auto* attempt = static_cast<Attempt*>(user);
    const curl_socket_t socket_fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    attempt->socket_errno = socket_fd == CURL_SOCKET_BAD ? errno : 0;
    return socket_fd;
  }

  // Runs once the connection is up (the TLS handshake done), before the
  // request is sent: the only moment the connection's SSL handle is certainly there.
  static int on_connected(void* user, char*, char*, int, int) {
    auto* attempt = static_cast<Attempt*>(user);
    long new_connections = 0;
    curl_easy_getinfo(attempt->easy, CURLINFO_NUM_CONNECTS, &new_connections);
    if (new_connections > 0 || attempt->read_chain) {
      if (auto expiry = peer_chain_expiry_ms(attempt->easy)) {
        attempt->cert_expiry_ms = attempt->cert_expiry_ms ? std::min(*attempt->cert_expiry_ms, *expiry) : *expiry;
      }
    }
    return CURL_PREREQFUNC_OK;
  }

  void transfer(AttemptId id, Attempt& attempt) {
    attempt.read_chain = !settings_.reuse_connection || !last_cert_expiry_ms_;
    configure(attempt.easy, attempt);
    attempt.transferring = true;
    curl_.add(attempt.easy, [this, id](CURLcode code) {
      auto found = attempts_.find(id);
      if (found == attempts_.end()) return;
      found->second->transferring = false;
      finish(id, evaluate(code, *found->second));
    });
  }

  void forget(Attempt& attempt) noexcept {
    if (attempt.lookup) resolver_.cancel(attempt.lookup);
    if (attempt.transferring) curl_.remove(attempt.easy);
  }

  void finish(AttemptId id, ProbeResult result) {
    auto node = attempts_.extract(id);
    if (node.empty()) return;
    auto done = std::move(node.mapped()->done);
    done(std::move(result));
  }

  void configure(CURL* easy, Attempt& attempt) const {
    curl_easy_setopt(easy, CURLOPT_URL, settings_.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (attempt.resolve) curl_easy_setopt(easy, CURLOPT_RESOLVE, attempt.resolve);
    // A redirect to another host, or a proxy, is still resolved by curl's thread:
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
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (settings_.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (settings_.method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, settings_.method.c_str());
    }
    if (headers_) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_);
    if (settings_.follow_redirects) {
      curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    }
    if (!settings_.tls_verify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      if (!settings_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, settings_.ca_file.c_str());
      // Debian's libcurl also names a CA directory by default, and curl caches
      // a store only when it comes from a CA file alone. The default bundle
      // holds the same certificates as that directory.
      curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
      curl_easy_setopt(easy, CURLOPT_CA_CACHE_TIMEOUT, kCaCacheSeconds);
    }
    if (!settings_.client_cert.empty()) curl_easy_setopt(easy, CURLOPT_SSLCERT, settings_.client_cert.c_str());
    if (!settings_.client_key.empty()) curl_easy_setopt(easy, CURLOPT_SSLKEY, settings_.client_key.c_str());
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &HttpProbe::on_connected);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, &attempt);
    if (!settings_.reuse_connection) {
      // A fresh connection each time is what sees accept-queue and TLS stalls.
      curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
      curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT, 0L);  // and a fresh lookup: DNS failures show at once
    }
    if (!settings_.username.empty() || !settings_.password.empty()) {
      curl_easy_setopt(easy, CURLOPT_USERNAME, settings_.username.c_str());
      curl_easy_setopt(easy, CURLOPT_PASSWORD, settings_.password.c_str());
    }
  }

  static Phases phases_of(CURL* easy) {
    curl_off_t resolved = 0, connected = 0, handshaken = 0, pretransfer = 0, first_byte = 0;
    curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &resolved);
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &handshaken);
    curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte);
    // curl reports times since the start; store each phase's own duration.
    Phases phases;
    phases.dns_us = resolved;
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
      curl_easy_getinfo(attempt.easy, CURLINFO_NUM_CONNECTS, &new_connections);
      if (new_connections == 0) attempt.cert_expiry_ms = last_cert_expiry_ms_;  // the same handshake as before
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
      result = ProbeResult::failure(ErrorClass::tls,
                                    fmt::format("certificate expired at {}", format_iso8601_ms(expiry_ms)),
                                    result.phases);
      result.cert_expiry_ms = expiry_ms;
      return;
    }
    if (settings_.min_cert_days == 0 || left_ms >= settings_.min_cert_days * kDayMs) return;
    result.degraded = true;
    result.detail = left_ms > 0 ? fmt::format("certificate expires in {} ({}), below min_cert_days {}",
                                              days_text(left_ms), format_iso8601_ms(expiry_ms),
                                              settings_.min_cert_days)
                                : fmt::format("certificate expired at {} (tls_verify is off)",
                                              format_iso8601_ms(expiry_ms));
  }

  ProbeResult evaluate_answer(CURLcode code, Attempt& attempt) const {
    Phases phases = phases_of(attempt.easy);
    phases.dns_us += attempt.lookup_us;
    if (code != CURLE_OK) {
      ErrorClass error = classify(code);
      std::string detail = error == ErrorClass::body_too_large
                               ? fmt::format("body larger than {} bytes", settings_.max_body_bytes)
                               : (attempt.error[0] ? attempt.error : curl_easy_strerror(code));
      // curl says "Couldn't connect to server" when socket() itself failed: name the cause, so that
      // the scheduler can tell blip's own want of descriptors from a target that refuses.
      if (attempt.socket_errno != 0) detail += fmt::format(" (socket: {})", std::strerror(attempt.socket_errno));
      return ProbeResult::failure(error, std::move(detail), phases);
    }
    if (!attempt.headers_ended) {
      return ProbeResult::failure(ErrorClass::reset, "connection closed in the middle of the response headers", phases);
    }
    long status = 0;
    curl_easy_getinfo(attempt.easy, CURLINFO_RESPONSE_CODE, &status);
    bool expected = false;
    for (const StatusRange& range : settings_.expect_status) {
      expected = expected || (status >= range.first && status <= range.last);
    }
    if (!expected) return ProbeResult::failure(ErrorClass::http_status, fmt::format("HTTP {}", status), phases);
    if (!settings_.expect_body.empty() && attempt.body.find(settings_.expect_body) == std::string::npos) {
      return ProbeResult::failure(ErrorClass::body_mismatch,
                                  fmt::format("HTTP {}, body lacks the expected text", status), phases);
    }
    return ProbeResult::success(phases, fmt::format("HTTP {}", status));
  }

  const HttpSettings& settings_;
  int64_t lookup_limit_ms_;
  CurlMultiUv& curl_;
  Resolver& resolver_;
  std::string host_;  // from the URL; looked up by blip unless numeric
  std::string port_;
  bool needs_lookup_ = false;
  curl_slist* headers_ = nullptr;
  std::optional<int64_t> last_cert_expiry_ms_;  // of the last handshake seen, for a reused connection
  std::unordered_map<AttemptId, std::unique_ptr<Attempt>> attempts_;
};

}  // namespace

std::unique_ptr<Probe> make_http_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<HttpProbe>(config, context);
}

}  // namespace blip
