// Which alert hears of which event: selectors, maintenance, send_resolved,
// repeat, Alertmanager re-sends and the flapping rule (see the header).
#include "blip/alerts/alert_dispatcher.hpp"

#include <algorithm>
#include <optional>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {

AlertDispatcher::AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl,
                                 std::vector<AlertConfig> alerts, HoldCheck held, Options options)
    : held_(std::move(held)),
      options_(options),
      sender_(loop, curl, options.sender),
      tick_timer_(loop, [this] { tick(); }) {
  alerts_.reserve(alerts.size());
  for (AlertConfig& config : alerts) alerts_.push_back(AlertState{std::move(config), {}});
  const auto tick = static_cast<uint64_t>(std::max<int64_t>(options_.tick_ms, 1));
  if (!alerts_.empty()) tick_timer_.start(tick, tick);
}

AlertDispatcher::~AlertDispatcher() = default;

void AlertDispatcher::notify(const AlertEvent& event) {
  if (stopped_) return;
  const int64_t now = event.at_ms > 0 ? event.at_ms : wall_now_ms();
  std::optional<bool> held;  // asked once per event, and only when some alert selects it
  for (AlertState& alert : alerts_) {
    if (!alert.config.selector.matches(event.probe, event.tags)) continue;
    if (!held) held = held_ && held_(event);
    switch (event.kind) {
      case AlertEvent::Kind::outage_opened:
        on_opened(alert, event, *held, now);
        break;
      case AlertEvent::Kind::outage_closed:
        on_closed(alert, event, *held, now);
        break;
      case AlertEvent::Kind::pattern_found:
      case AlertEvent::Kind::job_forecast:
      case AlertEvent::Kind::blip_trouble:
        on_finding(alert, event, *held, now);
        break;
    }
  }
}

void AlertDispatcher::forget_old(ProbeState& probe, const FlappingRule& rule, int64_t now) {
  while (!probe.recent.empty() && probe.recent.front().start_ms <= now - rule.within_ms)
    probe.recent.pop_front();
}

void AlertDispatcher::on_opened(AlertState& alert, const AlertEvent& event, bool held,
                                int64_t now) {
  ProbeState& probe = alert.probes[event.probe];
  OpenOutage& outage = probe.open[event.outage_id];
  outage.opened = event;
  outage.held = held;
  outage.announced = false;
  AlertMessage message{AlertMessage::Kind::opened, event, now};
  if (held) return skip(alert, message, AlertResult::held);

  if (const auto& rule = alert.config.flapping) {
    forget_old(probe, *rule, now);
    probe.recent.push_back({event.outage_id, event.start_ms, 0});
    if (probe.flapping) return skip(alert, message, AlertResult::suppressed);
    if (static_cast<int>(probe.recent.size()) >= rule->outages) {
      probe.flapping = true;
      AlertMessage summary{AlertMessage::Kind::flapping, event, now};
      summary.flapping_outages = static_cast<int>(probe.recent.size());
      summary.flapping_window_ms = rule->within_ms;
      for (const RecentOutage& recent : probe.recent) {
        if (recent.end_ms > 0)
          summary.flapping_closed_durations_ms.push_back(recent.end_ms - recent.start_ms);
      }
      log_warn("alerts: flapping alert={} probe={} outages={} within={}ms", alert.config.name,
               event.probe, summary.flapping_outages, rule->within_ms);
      send(alert, summary);
      return;
    }
  }
  outage.announced = true;
  outage.next_reminder_ms = alert.config.repeat_ms > 0 ? now + alert.config.repeat_ms : 0;
  outage.next_resend_ms = now + options_.alertmanager_resend_ms;
  send(alert, message);
}

void AlertDispatcher::on_closed(AlertState& alert, const AlertEvent& event, bool held,
                                int64_t now) {
  ProbeState& probe = alert.probes[event.probe];
  for (RecentOutage& recent : probe.recent) {
    if (recent.outage_id == event.outage_id) recent.end_ms = event.end_ms;
  }
  AlertMessage message{AlertMessage::Kind::closed, event, now};
  auto found = probe.open.find(event.outage_id);
  const bool known = found != probe.open.end();
  if (known) {
    // Resolve with what it opened with: Alertmanager identifies an alert by its labels.
    OpenOutage outage = found->second;
    probe.open.erase(found);
    message.event.error = outage.opened.error;
    if (message.event.start_ms == 0) message.event.start_ms = outage.opened.start_ms;
    if (outage.held) return skip(alert, message, AlertResult::held);
    if (!outage.announced) return skip(alert, message, AlertResult::suppressed);
  } else {
    // Opened before this dispatcher started (a restart, a reload): say it is back
    // unless the probe is flapping or the close falls in maintenance.
    if (held) return skip(alert, message, AlertResult::held);
    if (probe.flapping) return skip(alert, message, AlertResult::suppressed);
  }
  if (!alert.config.send_resolved && alert.config.kind != AlertConfig::Kind::alertmanager) return;
  send(alert, message);
}

void AlertDispatcher::on_finding(AlertState& alert, const AlertEvent& event, bool held,
                                 int64_t now) {
  const auto kind =
      event.kind == AlertEvent::Kind::pattern_found  ? AlertMessage::Kind::pattern_found
      : event.kind == AlertEvent::Kind::job_forecast ? AlertMessage::Kind::job_forecast
                                                     : AlertMessage::Kind::blip_trouble;
  AlertMessage message{kind, event, now};
  if (held) return skip(alert, message, AlertResult::held);
  send(alert, message);
}

void AlertDispatcher::tick() {
  if (stopped_) return;
  const int64_t now = wall_now_ms();
  for (AlertState& alert : alerts_) {
    const bool alertmanager = alert.config.kind == AlertConfig::Kind::alertmanager;
    for (auto& [name, probe] : alert.probes) {
      if (alert.config.flapping) {
        forget_old(probe, *alert.config.flapping, now);
        if (probe.flapping &&
            static_cast<int>(probe.recent.size()) < alert.config.flapping->outages) {
          probe.flapping = false;
          log_info("alerts: flapping ended alert={} probe={}", alert.config.name, name);
        }
      }
      for (auto& [id, outage] : probe.open) {
        if (!outage.announced) continue;
        if (alertmanager) {
          if (now < outage.next_resend_ms) continue;
          outage.next_resend_ms = now + options_.alertmanager_resend_ms;
          send(alert, AlertMessage{AlertMessage::Kind::reminder, outage.opened, now});
        } else if (outage.next_reminder_ms > 0 && now >= outage.next_reminder_ms) {
          outage.next_reminder_ms += alert.config.repeat_ms;
          if (outage.next_reminder_ms <= now)
            outage.next_reminder_ms = now + alert.config.repeat_ms;  // after a stall
          AlertMessage reminder{AlertMessage::Kind::reminder, outage.opened, now};
          AlertEvent asked = outage.opened;
          asked.at_ms = now;
          if (held_ && held_(asked)) {
            skip(alert, reminder, AlertResult::held);
          } else {
            send(alert, reminder);
          }
        }
      }
    }
  }
}

void AlertDispatcher::send(AlertState& alert, const AlertMessage& message) {
  sender_.send(alert.config, build_alert_request(alert.config, message),
               AlertSender::Label{std::string(to_string(message.kind)), message.event.probe});
}

void AlertDispatcher::skip(AlertState& alert, const AlertMessage& message, AlertResult why) {
  sender_.count(alert.config.kind, why);
  log_info("alerts: alert={} kind={} event={} probe={} result={}", alert.config.name,
           to_string(alert.config.kind), to_string(message.kind), message.event.probe,
           to_string(why));
}

void AlertDispatcher::stop(int64_t grace_ms, std::function<void()> done) {
  if (stopped_) return;
  stopped_ = true;
  tick_timer_.stop();
  sender_.stop(grace_ms, std::move(done));
}

}  // namespace blip
