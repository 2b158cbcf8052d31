// Alert delivery on the loop: curl's multi API through CurlMultiUv, a bounded
// queue, retries with backoff, one log line and one count per outcome.
#include "blip/alerts/alert_sender.hpp"

#include <curl/curl.h>

#include <algorithm>

#include "blip/adapters/curl_easy.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {
namespace {

int64_t mono_now_ms() { return mono_now_us() / 1000; }

size_t kind_index(AlertConfig::Kind kind) { return static_cast<size_t>(kind); }

constexpr std::array<AlertConfig::Kind, kAlertKindCount> kKinds{
    AlertConfig::Kind::webhook, AlertConfig::Kind::slack, AlertConfig::Kind::ntfy,
    AlertConfig::Kind::alertmanager, AlertConfig::Kind::email};
constexpr std::array<AlertResult, kAlertResultCount> kResults{
    AlertResult::sent,    AlertResult::failed, AlertResult::retried,
    AlertResult::dropped, AlertResult::held,   AlertResult::suppressed};

// A request that can never succeed however often it is tried.
bool permanent(CURLcode code) {
  return code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL ||
         code == CURLE_BAD_FUNCTION_ARGUMENT || code == CURLE_NOT_BUILT_IN;
}

bool retryable_status(long status) { return status == 408 || status == 429 || status >= 500; }

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

// An SMTP send that can never succeed however often it is tried: the login
// refused, STARTTLS required and not offered, or a 5xx reply (RFC 5321: a
// permanent failure; 4xx is transient and retried).
bool permanent_for_mail(CURLcode code, long reply) {
  return permanent(code) || code == CURLE_LOGIN_DENIED || code == CURLE_USE_SSL_FAILED ||
         (reply >= 500 && reply < 600);
}

// The message a mail send uploads, from the start on each attempt.
struct Upload {
  std::string_view text;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* data) {
  auto* upload = static_cast<Upload*>(data);
  const size_t chunk = std::min(size * count, upload->text.size() - upload->offset);
  std::copy_n(upload->text.data() + upload->offset, chunk, buffer);
  upload->offset += chunk;
  return chunk;
}

long starttls_option(MailSettings::StartTls starttls, bool smtps) {
  if (smtps) return CURLUSESSL_ALL;
  switch (starttls) {
    case MailSettings::StartTls::try_upgrade:
      return CURLUSESSL_TRY;
    case MailSettings::StartTls::require:
      return CURLUSESSL_ALL;
    case MailSettings::StartTls::off:
      return CURLUSESSL_NONE;
  }
  return CURLUSESSL_TRY;
}

}  // namespace

std::string_view to_string(AlertResult result) {
  switch (result) {
    case AlertResult::sent:
      return "sent";
    case AlertResult::failed:
      return "failed";
    case AlertResult::retried:
      return "retried";
    case AlertResult::dropped:
      return "dropped";
    case AlertResult::held:
      return "held";
    case AlertResult::suppressed:
      return "suppressed";
  }
  return "unknown";
}

bool curl_resolves_names_off_loop() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  return info && (info->features & CURL_VERSION_ASYNCHDNS) != 0;
}

struct AlertSender::Target {
  int in_flight = 0;
};

struct AlertSender::Message {
  CurlList headers;     // the handle's CURLOPT_HTTPHEADER
  CurlList recipients;  // email: its CURLOPT_MAIL_RCPT
  Upload upload;        // email: its CURLOPT_READDATA
  CurlEasy easy;
  AlertRequest request;
  Label label;
  Settled settled;
  std::string alert_name;
  AlertConfig::Kind kind = AlertConfig::Kind::webhook;
  std::string url_for_logs;
  int64_t timeout_ms = 5000;
  int64_t retry_for_ms = 0;
  Target* target = nullptr;
  uint64_t sequence = 0;      // queue order: the first time it was queued
  int64_t queued_ms = 0;      // monotonic
  int64_t not_before_ms = 0;  // monotonic: its next attempt's earliest start
  int attempts = 0;
};

AlertSender::AlertSender(uv_loop_t* loop, CurlMultiUv& curl, Options options)
    : curl_(curl),
      options_(options),
      wake_(loop, [this] { pump(); }),
      grace_(loop, [this] { finish_stop(); }) {
  options_.max_pending = std::max<size_t>(options_.max_pending, 1);
  options_.max_in_flight_per_alert = std::max(options_.max_in_flight_per_alert, 1);
  if (!curl_resolves_names_off_loop()) {
    log_warn(
        "alerts: this libcurl resolves names on the calling thread; use IP addresses in alert "
        "URLs");
  }
}

AlertSender::~AlertSender() { abandon_all(); }

AlertSender::Target& AlertSender::target_for(const AlertConfig& alert) {
  auto& slot = targets_[alert.name];
  if (!slot) slot = std::make_unique<Target>();
  return *slot;
}

void AlertSender::count(AlertConfig::Kind kind, AlertResult result, uint64_t by) {
  counts_[kind_index(kind)][static_cast<size_t>(result)] += by;
}

uint64_t AlertSender::count_of(AlertConfig::Kind kind, AlertResult result) const {
  return counts_[kind_index(kind)][static_cast<size_t>(result)];
}

std::vector<AlertCount> AlertSender::counts() const {
  std::vector<AlertCount> all;
  for (AlertConfig::Kind kind : kKinds) {
    for (AlertResult result : kResults) all.push_back({kind, result, count_of(kind, result)});
  }
  return all;
}

void AlertSender::send(const AlertConfig& alert, AlertRequest request, Label label,
                       Settled settled) {
  auto message = std::make_unique<Message>();
  message->request = std::move(request);
  message->label = std::move(label);
  message->settled = std::move(settled);
  message->alert_name = alert.name;
  message->kind = alert.kind;
  message->url_for_logs = alert_url_for_logs(alert);
  message->timeout_ms = std::max<int64_t>(alert.timeout_ms, 1);
  message->retry_for_ms = std::max<int64_t>(alert.retry_for_ms, 0);
  message->target = &target_for(alert);
  message->sequence = next_sequence_++;
  message->queued_ms = mono_now_ms();
  message->not_before_ms = message->queued_ms;
  if (stopping_ || !message->easy.get()) {
    settle(std::move(message), AlertResult::dropped, 0,
           stopping_ ? "stopping" : "curl_easy_init failed");
    return;
  }
  waiting_.push_back(std::move(message));
  if (waiting_.size() > options_.max_pending) {
    auto oldest = std::move(waiting_.front());
    waiting_.pop_front();
    settle(std::move(oldest), AlertResult::dropped, 0, "queue full");
  }
  pump();
}

// Starts every waiting message whose time has come and whose alert has a free
// slot, oldest first; then sets the wake timer for the earliest retry.
void AlertSender::pump() {
  if (pumping_) {
    pump_again_ = true;  // start() finished a send at once: the list changed under the outer pass
    return;
  }
  pumping_ = true;
  do {
    pump_again_ = false;
    pump_pass();
  } while (pump_again_ && !stopping_);
  pumping_ = false;
}

void AlertSender::pump_pass() {
  if (stopping_) return;
  const int64_t now = mono_now_ms();
  int64_t next_wake = -1;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    Message& message = **it;
    if (message.target->in_flight >= options_.max_in_flight_per_alert) {
      ++it;  // a finishing send of this alert pumps again
      continue;
    }
    if (message.not_before_ms > now) {
      next_wake =
          next_wake < 0 ? message.not_before_ms : std::min(next_wake, message.not_before_ms);
      ++it;
      continue;
    }
    auto owned = std::move(*it);
    waiting_.erase(it);
    start(std::move(owned));
    if (stopping_) return;
    if (pump_again_) return;  // the list may have changed: the caller runs another pass
    it = waiting_.begin();    // cheap enough for a thousand messages, and always valid
  }
  if (next_wake >= 0) {
    wake_.start(static_cast<uint64_t>(next_wake - now));
  } else {
    wake_.stop();
  }
}

void AlertSender::start(std::unique_ptr<Message> owned) {
  Message* message = owned.get();
  ++message->attempts;
  CURL* easy = message->easy.get();
  curl_easy_reset(easy);
  curl_easy_setopt(easy, CURLOPT_URL, message->request.url.c_str());
  if (const std::optional<MailEnvelope>& mail = message->request.mail) {
    // SMTP: MAIL FROM, one RCPT TO each, the message uploaded as DATA (curl
    // dot-stuffs it); AUTH and STARTTLS as configured.
    message->recipients.clear();
    for (const std::string& to : mail->recipients) message->recipients.append("<" + to + ">");
    message->upload = Upload{message->request.body, 0};
    const std::string from = "<" + mail->from + ">";
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, from.c_str());  // curl copies option strings
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, message->recipients.get());
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, &read_upload);
    curl_easy_setopt(easy, CURLOPT_READDATA, &message->upload);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(message->request.body.size()));
    if (!mail->username.empty()) {
      curl_easy_setopt(easy, CURLOPT_USERNAME, mail->username.c_str());
      curl_easy_setopt(easy, CURLOPT_PASSWORD, mail->password.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_USE_SSL,
                     starttls_option(mail->starttls, message->request.url.starts_with("smtps://")));
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  } else {
    message->headers.clear();
    for (const std::string& header : message->request.headers) message->headers.append(header);
    // "Expect: 100-continue" would cost a round trip (or a second) on bodies over 1 KiB.
    message->headers.append("Expect:");
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, message->request.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(message->request.body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, message->headers.get());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "blip/0.1");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard_body);
  }
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(message->timeout_ms));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // Names are resolved on curl's resolver thread (AsynchDNS, see
  // curl_resolves_names_off_loop); abandoning a transfer mid-lookup must not
  // join that thread on the loop.
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
  ++message->target->in_flight;
  ++in_flight_count_;
  in_flight_.emplace(message, std::move(owned));
  curl_.add(easy, [this, message](CURLcode code) { finished(message, code); });
}

void AlertSender::finished(Message* raw, CURLcode code) {
  auto node = in_flight_.extract(raw);
  if (node.empty()) return;
  std::unique_ptr<Message> message = std::move(node.mapped());
  --message->target->in_flight;
  --in_flight_count_;
  const bool mail = message->request.mail.has_value();
  long status = 0;  // HTTP's status; SMTP's last reply code, also when the send failed
  if (code == CURLE_OK || mail)
    curl_easy_getinfo(message->easy.get(), CURLINFO_RESPONSE_CODE, &status);

  if (code == CURLE_OK && (mail || (status >= 200 && status < 300))) {
    settle(std::move(message), AlertResult::sent, status, "");
  } else if (mail ? permanent_for_mail(code, status)
                  : ((code == CURLE_OK && !retryable_status(status)) ||
                     (code != CURLE_OK && permanent(code)))) {
    settle(std::move(message), AlertResult::failed, status,
           code == CURLE_OK ? "not retried" : curl_easy_strerror(code));
  } else {
    const std::string why = code == CURLE_OK ? "retryable status" : curl_easy_strerror(code);
    const int shift = std::min(message->attempts - 1, 30);
    const int64_t backoff = std::min(options_.first_backoff_ms << shift, options_.max_backoff_ms);
    const int64_t now = mono_now_ms();
    if (stopping_) {
      settle(std::move(message), AlertResult::failed, status, "stopping: " + why);
    } else if (now + backoff > message->queued_ms + message->retry_for_ms) {
      settle(std::move(message), AlertResult::failed, status, "gave up: " + why);
    } else {
      count(message->kind, AlertResult::retried);
      log_outcome(*message, AlertResult::retried, status, why);
      message->not_before_ms = now + backoff;
      // Back in queue order, so "the oldest are dropped" means oldest first queued.
      auto place = std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& other) {
        return other->sequence > message->sequence;
      });
      waiting_.insert(place, std::move(message));
      if (waiting_.size() > options_.max_pending) {
        auto oldest = std::move(waiting_.front());
        waiting_.pop_front();
        settle(std::move(oldest), AlertResult::dropped, 0, "queue full");
      }
    }
  }
  if (stopping_) {
    if (in_flight_.empty()) finish_stop();
    return;
  }
  pump();
}

void AlertSender::settle(std::unique_ptr<Message> message, AlertResult result, long status,
                         std::string_view why) {
  count(message->kind, result);
  log_outcome(*message, result, status, why);
  // Failed or dropped because of stop(): untold, so its sender may tell it after a restart.
  if (message->settled && (result == AlertResult::sent || !stopping_)) message->settled(result);
}

void AlertSender::log_outcome(const Message& message, AlertResult result, long status,
                              std::string_view why) const {
  // Never the URL as configured, never a header value: both may carry secrets.
  const auto level = result == AlertResult::sent     ? spdlog::level::info
                     : result == AlertResult::failed ? spdlog::level::err
                                                     : spdlog::level::warn;
  log_at(
      level,
      "alerts: alert={} kind={} event={} probe={} result={} attempts={} status={} target={} why={}",
      message.alert_name, to_string(message.kind), message.label.event, message.label.probe,
      to_string(result), message.attempts, status, message.url_for_logs, why);
}

void AlertSender::stop(int64_t grace_ms, std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(done);
  wake_.stop();
  while (!waiting_.empty()) {
    auto message = std::move(waiting_.front());
    waiting_.pop_front();
    settle(std::move(message), AlertResult::dropped, 0, "stopping");
  }
  if (in_flight_.empty()) {
    finish_stop();
  } else {
    grace_.start(static_cast<uint64_t>(std::max<int64_t>(grace_ms, 0)));
  }
}

void AlertSender::abandon_all() {
  for (auto& [raw, message] : in_flight_) {
    curl_.remove(message->easy.get());
    --message->target->in_flight;
  }
  in_flight_count_ = 0;
  in_flight_.clear();
  waiting_.clear();
}

void AlertSender::finish_stop() {
  grace_.stop();
  for (auto& [raw, message] : in_flight_) {
    curl_.remove(message->easy.get());
    --message->target->in_flight;
    count(message->kind, AlertResult::dropped);
    log_outcome(*message, AlertResult::dropped, 0, "abandoned at shutdown");
  }
  in_flight_count_ = 0;
  in_flight_.clear();
  if (auto done = std::exchange(on_stopped_, nullptr)) done();
}

}  // namespace blip
