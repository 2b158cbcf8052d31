#pragma once
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/alerts/alert_event.hpp"
#include "blip/alerts/alert_payload.hpp"
#include "blip/alerts/alert_sender.hpp"
#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"

namespace blip {

// Decides, for each AlertEvent the loop sees, which `[[alert]]`s get a message,
// and hands those to one AlertSender. Loop thread only; never blocks.
//
// Rules, per alert and per probe:
// - Selector: an alert gets the events of probes its selector matches (name
//   or any tag).
// - Maintenance: `held(event)` true means hold: nothing is sent, the message
//   is logged and counted as `held`. An outage whose opened message was held
//   has its reminders and its closed message held too (nobody was told it
//   began). Alertmanager re-sends of an outage already announced go on in a
//   window (they refresh state, they tell nobody anything new).
// - send_resolved = false: no closed messages (Alertmanager still gets its
//   resolve: without it the alert would stay active until resolve_timeout).
// - repeat: a reminder every `repeat_ms` while an announced outage stays open
//   (webhook, slack, ntfy; Alertmanager has its own repeat_interval).
// - Alertmanager: every open announced outage is re-sent every
//   `alertmanager_resend_ms` (60 s), since Alertmanager resolves alerts not
//   re-sent within its resolve_timeout (5 m by default); the closed message
//   carries endsAt and the labels the outage opened with.
// - Flapping (`flapping = {outages = N, within = W}`): the opened outages of a
//   probe whose start lies within the last W are counted (held ones are not).
//   When an opened outage makes that count reach N, the alert gets ONE
//   summary ("3 outages of web-health in the last 1h, 31–58 s each", the
//   range over those that have closed) instead of that outage's opened
//   message, and the probe is flapping: its further opened messages, and the
//   closed and reminder messages of outages whose opened was not sent, are
//   suppressed (logged, counted `suppressed`). A closed message is sent
//   exactly when its opened was, so an outage announced before the summary
//   still gets its "back". The probe stops flapping once fewer than N
//   outages started within the last W (checked each tick and on each
//   opened); its next outage is announced as usual, and N more within W make
//   a new summary.
// - pattern_found, job_forecast and blip_trouble events: one message each (held aside).
class AlertDispatcher {
 public:
  // True: the event falls in a maintenance window of its probe: hold it.
  using HoldCheck = std::function<bool(const AlertEvent&)>;
  struct Options {
    AlertSender::Options sender;
    int64_t tick_ms = 1000;  // reminders, re-sends and flapping ends
    int64_t alertmanager_resend_ms = 60'000;
  };

  AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl, std::vector<AlertConfig> alerts,
                  HoldCheck held, Options options);
  AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl, std::vector<AlertConfig> alerts,
                  HoldCheck held)
      : AlertDispatcher(loop, curl, std::move(alerts), std::move(held), Options{}) {}
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;
  ~AlertDispatcher();

  // Called by the loop for each event, in the order they happen.
  void notify(const AlertEvent& event);
  // Shutdown: no more messages; sends in flight get up to `grace_ms`, then are
  // abandoned; `done` runs on the loop then (see AlertSender::stop).
  void stop(int64_t grace_ms = 2000, std::function<void()> done = {});

  // blip_alerts_total{kind,result}: every (kind, result) pair, zeros included.
  std::vector<AlertCount> counts() const { return sender_.counts(); }
  const AlertSender& sender() const { return sender_; }

 private:
  struct OpenOutage {
    AlertEvent opened;
    bool announced = false;  // its opened message was sent (not held, not suppressed)
    bool held = false;
    int64_t next_reminder_ms = 0;  // wall clock
    int64_t next_resend_ms = 0;
  };
  struct RecentOutage {
    int64_t outage_id;
    int64_t start_ms;
    int64_t end_ms;  // 0 while open
  };
  struct ProbeState {
    std::map<int64_t, OpenOutage> open;  // by outage id
    std::deque<RecentOutage> recent;  // opened (not held) within the flapping window, oldest first
    bool flapping = false;
  };
  struct AlertState {
    AlertConfig config;
    std::map<std::string, ProbeState> probes;
  };

  void on_opened(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void on_closed(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void on_finding(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void tick();
  void send(AlertState& alert, const AlertMessage& message);
  void skip(AlertState& alert, const AlertMessage& message, AlertResult why);
  static void forget_old(ProbeState& probe, const FlappingRule& rule, int64_t now);

  HoldCheck held_;
  Options options_;
  AlertSender sender_;
  std::vector<AlertState> alerts_;
  Timer tick_timer_;
  bool stopped_ = false;
};

}  // namespace blip
