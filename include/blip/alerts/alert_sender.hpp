#pragma once
#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/alerts/alert_payload.hpp"
#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"

namespace blip {

// What became of one message, as `blip_alerts_total{kind,result}` counts it.
// `retried` counts attempts that failed and were tried again; `held` messages
// that maintenance kept back; `suppressed` those the flapping rule folded
// into its summary.
enum class AlertResult { sent, failed, retried, dropped, held, suppressed };
inline constexpr size_t kAlertResultCount = 6;
std::string_view to_string(AlertResult result);

struct AlertCount {
  AlertConfig::Kind kind;
  AlertResult result;
  uint64_t count;
};

// True when this libcurl resolves names off the calling thread (feature
// AsynchDNS: the threaded resolver or c-ares). Debian 12's libcurl4 7.88.1
// (OpenSSL flavour) has the threaded resolver, so an alert URL with a host
// name is looked up on curl's own thread and never on the loop.
bool curl_resolves_names_off_loop();

// POSTs alert requests through the loop's CurlMultiUv: never a blocking call.
// A 2xx answer is success. 408, 429, 5xx and transport errors (timeouts,
// refused, reset, DNS) are retried with exponential backoff (1 s, 2 s, 4 s …,
// at most 60 s apart) until `retry_for_ms` after the message was queued; any
// other answer (3xx, 4xx) fails it at once. An email request goes over SMTP
// instead: success is the relay taking the message; its 4xx replies and
// transport errors are retried, a 5xx reply, a refused login or a required
// STARTTLS the relay lacks fail it at once. At most `max_in_flight_per_alert`
// sends of one `[[alert]]` run at a time; the others wait in one queue of at
// most `max_pending` messages (waiting for a slot or for their next retry),
// and when it is full the oldest waiting message is dropped and counted.
// Every outcome is one log line that never shows a secret (no full URL, no
// header value) and a count. Loop thread only.
class AlertSender {
 public:
  struct Options {
    size_t max_pending = 1000;
    int max_in_flight_per_alert = 2;
    int64_t first_backoff_ms = 1000;
    int64_t max_backoff_ms = 60'000;
  };
  // What a log line says about a message besides the alert's name and kind.
  struct Label {
    std::string event;  // "outage_opened", …
    std::string probe;
  };

  AlertSender(uv_loop_t* loop, CurlMultiUv& curl, Options options);
  AlertSender(uv_loop_t* loop, CurlMultiUv& curl) : AlertSender(loop, curl, Options{}) {}
  AlertSender(const AlertSender&) = delete;
  AlertSender& operator=(const AlertSender&) = delete;
  // Abandons whatever is still queued or in flight (removed from curl, no
  // callback). `curl` must outlive the sender.
  ~AlertSender();

  // What became of a message in the end (sent, failed or dropped), on the loop. Not called
  // for a message still waiting or in flight when stop() is called: that one stays untold.
  using Settled = std::function<void(AlertResult)>;
  // Queues one message for `alert` (copied: the sender outlives a reload's configs).
  // Ignored, and counted as dropped, once stop() was called.
  void send(const AlertConfig& alert, AlertRequest request, Label label, Settled settled = {});
  // Counts an outcome decided before sending (held, suppressed).
  void count(AlertConfig::Kind kind, AlertResult result, uint64_t by = 1);

  // Every (kind, result) pair, zeros included, so /metrics has stable series.
  std::vector<AlertCount> counts() const;
  uint64_t count_of(AlertConfig::Kind kind, AlertResult result) const;
  size_t waiting() const { return waiting_.size(); }
  size_t in_flight() const { return in_flight_count_; }

  // Shutdown: waiting messages are dropped (counted) at once; sends in flight
  // get up to `grace_ms` to finish (no retries), then are abandoned. `done`
  // runs on the loop once nothing is in flight, at the latest after grace_ms.
  // Nothing waits on it: the loop goes on running meanwhile.
  void stop(int64_t grace_ms, std::function<void()> done = {});

 private:
  struct Target;
  struct Message;
  void pump();
  void pump_pass();
  void start(std::unique_ptr<Message> message);
  void finished(Message* message, CURLcode code);
  void settle(std::unique_ptr<Message> message, AlertResult result, long status,
              std::string_view why);
  void abandon_all();
  void finish_stop();
  Target& target_for(const AlertConfig& alert);
  void log_outcome(const Message& message, AlertResult result, long status,
                   std::string_view why) const;

  CurlMultiUv& curl_;
  Options options_;
  Timer wake_;                                              // the next waiting message's retry time
  Timer grace_;                                             // stop()'s bound
  std::map<std::string, std::unique_ptr<Target>> targets_;  // by alert name
  std::list<std::unique_ptr<Message>> waiting_;             // oldest first
  std::map<Message*, std::unique_ptr<Message>> in_flight_;
  size_t in_flight_count_ = 0;
  std::array<std::array<uint64_t, kAlertResultCount>, kAlertKindCount> counts_{};
  uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  bool pumping_ = false;  // pump() is running: a nested call only asks for another pass
  bool pump_again_ = false;
  std::function<void()> on_stopped_;
};

}  // namespace blip
