// HTTP(S) probe: one curl easy handle per attempt on the shared multi handle.
#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
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

  void transfer(AttemptId id, Attempt& attempt) {
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
    }
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

  ProbeResult evaluate(CURLcode code, Attempt& attempt) const {
    Phases phases = phases_of(attempt.easy);
    phases.dns_us += attempt.lookup_us;
    if (code != CURLE_OK) {
      ErrorClass error = classify(code);
      std::string detail = error == ErrorClass::body_too_large
                               ? fmt::format("body larger than {} bytes", settings_.max_body_bytes)
                               : (attempt.error[0] ? attempt.error : curl_easy_strerror(code));
      return ProbeResult::failure(error, std::move(detail), phases);
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
  std::unordered_map<AttemptId, std::unique_ptr<Attempt>> attempts_;
};

}  // namespace

std::unique_ptr<Probe> make_http_probe(const ProbeConfig& config, ProbeContext& context) {
  return std::make_unique<HttpProbe>(config, context);
}

}  // namespace blip
