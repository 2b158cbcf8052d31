// Which alert hears of which event: selectors, maintenance, send_resolved,
// repeat, Alertmanager re-sends and the flapping rule (see the header).
#include "blip/alerts/alert_dispatcher.hpp"

#include <algorithm>
#include <numeric>
#include <optional>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {

AlertDispatcher::AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl,
                                 std::vector<AlertConfig> alerts, HoldCheck held, Options options)
    : held_(std::move(held)),
      options_(options),
      sender_(loop, curl, options.sender),
      tick_timer_(loop, [this] { tick(); }),
      gather_timer_(loop, [this] { tick(); }) {
  alerts_.reserve(alerts.size());
  for (AlertConfig& config : alerts)
    alerts_.push_back(AlertState{std::move(config), {}, {}, {}, {}});
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
    const bool by_incident =
        alert.config.group == AlertConfig::Group::incident && event.incident_id != 0;
    switch (event.kind) {
      case AlertEvent::Kind::outage_opened:
        if (by_incident) {
          on_incident_opened(alert, event, *held, now);
        } else {
          on_opened(alert, event, *held, now);
        }
        break;
      case AlertEvent::Kind::outage_closed:
        if (!by_incident || !on_incident_closed(alert, event, now))
          on_closed(alert, event, *held, now);
        break;
      case AlertEvent::Kind::pattern_found:
      case AlertEvent::Kind::job_forecast:
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

  // Each kind of blip's own trouble is an outage of its own: they are one spell, not flapping.
  if (!is_blip_trouble(event.probe_type) &&
      !passes_flapping(alert, probe, {event.outage_id, event.start_ms, 0}, message, now))
    return;
  outage.announced = true;
  outage.next_reminder_ms = alert.config.repeat_ms > 0 ? now + alert.config.repeat_ms : 0;
  outage.next_resend_ms = now + options_.alertmanager_resend_ms;
  send(alert, message);
}

bool AlertDispatcher::passes_flapping(AlertState& alert, ProbeState& probe, RecentOutage recent,
                                      const AlertMessage& opened, int64_t now) {
  const auto& rule = alert.config.flapping;
  if (!rule) return true;
  forget_old(probe, *rule, now);
  probe.recent.push_back(recent);
  if (probe.flapping) {
    skip(alert, opened, AlertResult::suppressed);
    return false;
  }
  if (static_cast<int>(probe.recent.size()) < rule->outages) return true;
  probe.flapping = true;
  AlertMessage summary = opened;
  summary.kind = AlertMessage::Kind::flapping;
  summary.flapping_outages = static_cast<int>(probe.recent.size());
  summary.flapping_window_ms = rule->within_ms;
  for (const RecentOutage& each : probe.recent) {
    if (each.end_ms > 0)
      summary.flapping_closed_durations_ms.push_back(each.end_ms - each.start_ms);
  }
  log_warn("alerts: flapping alert={} probe={} outages={} within={}ms", alert.config.name,
           opened.event.probe, summary.flapping_outages, rule->within_ms);
  send(alert, summary);
  return false;
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
  const auto kind = event.kind == AlertEvent::Kind::pattern_found
                        ? AlertMessage::Kind::pattern_found
                        : AlertMessage::Kind::job_forecast;
  AlertMessage message{kind, event, now};
  if (held) return skip(alert, message, AlertResult::held);
  send(alert, message);
}

void AlertDispatcher::on_incident_opened(AlertState& alert, const AlertEvent& event, bool held,
                                         int64_t now) {
  if (continue_restored(alert, event, now)) return;
  auto [found, created] = alert.incidents.try_emplace(home_of(alert, event));
  OpenIncident& incident = found->second;
  if (created) {
    incident.opened_due_ms = now + options_.incident_gather_ms;
    // Restarted by a second new incident within the gather: the first is then due at a tick.
    gather_timer_.start(static_cast<uint64_t>(std::max<int64_t>(options_.incident_gather_ms, 0)) +
                        1);
  }
  incident.members.push_back(IncidentMember{event, held, 0, false});
  if (!incident.decided) return;  // the opened, when due, names it
  if (!incident.announced) {
    skip(alert, incident_message(AlertMessage::Kind::incident_grew, found->first, incident, now),
         incident.held ? AlertResult::held : AlertResult::suppressed);
    incident.members.back().told = true;
    return;
  }
  if (incident.grew_due_ms == 0) {
    incident.grew_due_ms = std::max(now + options_.incident_gather_ms,
                                    incident.last_message_ms + options_.incident_grew_every_ms);
  }
  save(alert, found->first, incident, now);
}

namespace {

// An incident's last decided message as its record names it.
std::string recorded_message_text(AlertMessage::Kind kind) {
  return kind == AlertMessage::Kind::incident_grew       ? "grew"
         : kind == AlertMessage::Kind::incident_resolved ? "resolved"
                                                         : "opened";
}

AlertMessage::Kind recorded_message_kind(std::string_view text) {
  return text == "grew"       ? AlertMessage::Kind::incident_grew
         : text == "resolved" ? AlertMessage::Kind::incident_resolved
                              : AlertMessage::Kind::incident_opened;
}

// Nothing left to tell of an incident: its record goes.
AlertIncidentRow done_record(const std::string& alert, int64_t incident_id, int64_t now) {
  AlertIncidentRow row;
  row.alert = alert;
  row.incident_id = incident_id;
  row.updated_ms = now;
  row.done = true;
  return row;
}

}  // namespace

void AlertDispatcher::stop_awaiting(IncidentMember& member) {
  member.awaiting_restart = false;
  --awaiting_restart_;
}

int64_t AlertDispatcher::home_of(const AlertState& alert, const AlertEvent& event) {
  if (auto found = alert.continuing_outages.find(event.outage_id);
      found != alert.continuing_outages.end())
    return found->second;
  if (auto found = alert.continuing_incidents.find(event.incident_id);
      found != alert.continuing_incidents.end())
    return found->second;
  return event.incident_id;
}

bool AlertDispatcher::continue_restored(AlertState& alert, const AlertEvent& event, int64_t now) {
  if (awaiting_restart_ == 0) return false;
  for (auto& [id, incident] : alert.incidents) {
    for (IncidentMember& member : incident.members) {
      if (!member.awaiting_restart || member.opened.probe != event.probe) continue;
      stop_awaiting(member);
      // Still down: the same outage as far as the alert's people are concerned (its start,
      // error and detail as first told), under the new rows' ids.
      if (incident.root_outage_id == member.opened.outage_id)
        incident.root_outage_id = event.outage_id;
      member.opened.outage_id = event.outage_id;
      alert.continuing_outages[event.outage_id] = id;
      if (!alert.incidents.contains(event.incident_id))
        alert.continuing_incidents.try_emplace(event.incident_id, id);
      log_info("alerts: incident continues after the restart alert={} incident={} probe={}",
               alert.config.name, id, event.probe);
      save(alert, id, incident, now);
      return true;
    }
  }
  return false;
}

void AlertDispatcher::decide_opened(AlertState& alert, int64_t incident_id, OpenIncident& incident,
                                    int64_t now) {
  incident.decided = true;
  // The root: the outage that went down first among those gathered.
  const IncidentMember& root = *std::min_element(
      incident.members.begin(), incident.members.end(),
      [](const auto& a, const auto& b) { return a.opened.start_ms < b.opened.start_ms; });
  incident.root_outage_id = root.opened.outage_id;
  const AlertMessage message =
      incident_message(AlertMessage::Kind::incident_opened, incident_id, incident, now);
  incident.last_message_ms = now;
  // After the record: a re-send after a restart names them as this message did.
  auto all_told = [&incident] {
    for (IncidentMember& member : incident.members) member.told = true;
  };
  if (root.held) {
    all_told();
    incident.held = true;
    return skip(alert, message, AlertResult::held);
  }
  if (!passes_flapping(alert, alert.probes[message.event.probe],
                       {incident_id, message.incident->start_ms, 0}, message, now)) {
    all_told();
    return;
  }
  incident.announced = true;
  incident.next_reminder_ms = alert.config.repeat_ms > 0 ? now + alert.config.repeat_ms : 0;
  incident.next_resend_ms = now + options_.alertmanager_resend_ms;
  send_recorded(alert, incident_id, incident, message, now);
  all_told();
}

bool AlertDispatcher::on_incident_closed(AlertState& alert, const AlertEvent& event, int64_t now) {
  auto found = alert.incidents.find(home_of(alert, event));
  if (found == alert.incidents.end()) return false;
  OpenIncident& incident = found->second;
  auto member = std::find_if(incident.members.begin(), incident.members.end(),
                             [&](const auto& m) { return m.opened.outage_id == event.outage_id; });
  if (member == incident.members.end()) return false;
  member->end_ms = std::max(event.end_ms > 0 ? event.end_ms : now, member->opened.start_ms);
  // blip's own trouble closes with what it counted over the whole spell.
  if (is_blip_trouble(event.probe_type) && !event.detail.empty())
    member->opened.detail = event.detail;
  if (std::any_of(incident.members.begin(), incident.members.end(),
                  [](const auto& m) { return m.end_ms == 0; })) {
    save(alert, found->first, incident, now);
    return true;
  }
  resolve(alert, found, now);
  return true;
}

void AlertDispatcher::resolve(AlertState& alert, std::map<int64_t, OpenIncident>::iterator found,
                              int64_t now) {
  // A short incident's opened goes out first, then the resolved.
  const int64_t incident_id = found->first;
  OpenIncident& incident = found->second;
  for (IncidentMember& member : incident.members) {
    if (member.awaiting_restart) stop_awaiting(member);
  }
  if (!incident.decided) decide_opened(alert, incident_id, incident, now);
  const AlertMessage message =
      incident_message(AlertMessage::Kind::incident_resolved, incident_id, incident, now);
  for (RecentOutage& recent : alert.probes[message.event.probe].recent) {
    if (recent.outage_id == incident_id) recent.end_ms = message.incident->end_ms;
  }
  std::erase_if(alert.continuing_outages,
                [&](const auto& each) { return each.second == incident_id; });
  std::erase_if(alert.continuing_incidents,
                [&](const auto& each) { return each.second == incident_id; });
  if (incident.held) {
    skip(alert, message, AlertResult::held);
  } else if (!incident.announced) {
    skip(alert, message, AlertResult::suppressed);
  } else if (alert.config.send_resolved || alert.config.kind == AlertConfig::Kind::alertmanager) {
    send_recorded(alert, incident_id, incident, message, now);
  } else if (save_record_) {
    save_record_(done_record(alert.config.name, incident_id, now));
  }
  alert.incidents.erase(found);
}

AlertMessage AlertDispatcher::incident_message(AlertMessage::Kind kind, int64_t incident_id,
                                               const OpenIncident& incident, int64_t now) const {
  const auto& members = incident.members;
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return members[a].opened.start_ms < members[b].opened.start_ms;
  });
  // The root first (chosen at opened and kept: Alertmanager's labels name it).
  auto root = std::find_if(order.begin(), order.end(), [&](size_t index) {
    return members[index].opened.outage_id == incident.root_outage_id;
  });
  if (root != order.end()) std::rotate(order.begin(), root, root + 1);

  IncidentView view;
  view.id = incident_id;
  view.start_ms = members[order.front()].opened.start_ms;
  for (size_t index : order) {
    const IncidentMember& member = members[index];
    view.start_ms = std::min(view.start_ms, member.opened.start_ms);
    view.end_ms = std::max(view.end_ms, member.end_ms);
    if (!member.told) view.joined.push_back(view.components.size());
    view.components.push_back(IncidentComponent{member.opened.probe, member.opened.probe_type,
                                                member.opened.error, member.opened.detail,
                                                member.opened.start_ms, member.end_ms});
  }
  if (kind != AlertMessage::Kind::incident_resolved) view.end_ms = 0;
  if (note_of_) view.note = note_of_(incident_id);
  AlertMessage message{kind, members[order.front()].opened, now};
  message.event.end_ms = view.end_ms;
  message.incident = std::move(view);
  return message;
}

bool AlertDispatcher::reminder_due(const AlertState& alert, int64_t& next_reminder_ms,
                                   int64_t& next_resend_ms, int64_t now) const {
  if (alert.config.kind == AlertConfig::Kind::alertmanager) {
    if (now < next_resend_ms) return false;
    next_resend_ms = now + options_.alertmanager_resend_ms;
    return true;
  }
  if (next_reminder_ms == 0 || now < next_reminder_ms) return false;
  next_reminder_ms += alert.config.repeat_ms;
  if (next_reminder_ms <= now) next_reminder_ms = now + alert.config.repeat_ms;  // after a stall
  return true;
}

void AlertDispatcher::remind(AlertState& alert, const AlertMessage& reminder, int64_t now) {
  // Alertmanager's re-sends refresh state and tell nobody anything new: never held.
  if (alert.config.kind != AlertConfig::Kind::alertmanager && held_) {
    AlertEvent asked = reminder.event;
    asked.at_ms = now;
    if (held_(asked)) return skip(alert, reminder, AlertResult::held);
  }
  send(alert, reminder);
}

void AlertDispatcher::incident_tick(AlertState& alert, int64_t now) {
  for (auto& [id, incident] : alert.incidents) {
    if (!incident.decided) {
      if (now >= incident.opened_due_ms) decide_opened(alert, id, incident, now);
      continue;
    }
    if (!incident.announced) continue;
    if (incident.grew_due_ms > 0 && now >= incident.grew_due_ms) {
      incident.grew_due_ms = 0;
      const AlertMessage grew =
          incident_message(AlertMessage::Kind::incident_grew, id, incident, now);
      incident.last_message_ms = now;
      if (!grew.incident->joined.empty()) send_recorded(alert, id, incident, grew, now);
      for (IncidentMember& member : incident.members) member.told = true;
    }
    if (reminder_due(alert, incident.next_reminder_ms, incident.next_resend_ms, now))
      remind(alert, incident_message(AlertMessage::Kind::incident_reminder, id, incident, now),
             now);
  }
}

void AlertDispatcher::tick() {
  if (stopped_) return;
  const int64_t now = wall_now_ms();
  // A stalled disk delays a page, never loses it.
  while (!awaiting_records_.empty() &&
         now - awaiting_records_.front().queued_ms >= options_.record_wait_ms) {
    AwaitingRecord awaiting = std::move(awaiting_records_.front());
    awaiting_records_.pop_front();
    log_warn(
        "alerts: the incident's record is not stored after {}ms; sending anyway alert={} "
        "incident={} event={}",
        now - awaiting.queued_ms, alerts_[awaiting.alert].config.name, awaiting.incident_id,
        to_string(awaiting.message.kind));
    send_awaited(awaiting);
  }
  for (AlertState& alert : alerts_) {
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
        if (reminder_due(alert, outage.next_reminder_ms, outage.next_resend_ms, now))
          remind(alert, AlertMessage{AlertMessage::Kind::reminder, outage.opened, now}, now);
      }
    }
    incident_tick(alert, now);
  }
}

void AlertDispatcher::send(AlertState& alert, const AlertMessage& message) {
  sender_.send(alert.config, build_alert_request(alert.config, message),
               AlertSender::Label{std::string(to_string(message.kind)), message.event.probe});
}

AlertIncidentRow AlertDispatcher::record_of(const AlertState& alert, int64_t incident_id,
                                            const OpenIncident& incident, int64_t now) const {
  AlertIncidentRow row;
  row.alert = alert.config.name;
  row.incident_id = incident_id;
  row.last_message = recorded_message_text(incident.last_message);
  row.pending = incident.pending;
  row.updated_ms = now;
  // The root first, then as they went down: the order the messages show.
  std::vector<const IncidentMember*> members;
  for (const IncidentMember& member : incident.members) members.push_back(&member);
  std::stable_sort(members.begin(), members.end(), [&](const auto* a, const auto* b) {
    const bool a_root = a->opened.outage_id == incident.root_outage_id;
    const bool b_root = b->opened.outage_id == incident.root_outage_id;
    if (a_root != b_root) return a_root;
    return a->opened.start_ms < b->opened.start_ms;
  });
  for (const IncidentMember* member : members) {
    row.members.push_back({member->opened.probe, member->opened.probe_type, member->opened.error,
                           member->opened.detail, member->opened.start_ms, member->end_ms,
                           member->told});
  }
  return row;
}

void AlertDispatcher::save(const AlertState& alert, int64_t incident_id,
                           const OpenIncident& incident, int64_t now) {
  if (!save_record_ || !incident.announced) return;
  save_record_(record_of(alert, incident_id, incident, now));
}

void AlertDispatcher::send_recorded(AlertState& alert, int64_t incident_id, OpenIncident& incident,
                                    const AlertMessage& message, int64_t now) {
  incident.last_message = message.kind;
  incident.pending = true;
  const uint64_t number = ++incident.message_number;
  const auto index = static_cast<size_t>(&alert - alerts_.data());
  if (!save_record_) return send_awaited({0, index, incident_id, number, message, now});
  const uint64_t ticket = save_record_(record_of(alert, incident_id, incident, now));
  awaiting_records_.push_back({ticket, index, incident_id, number, message, now});
}

void AlertDispatcher::records_stored(uint64_t through) {
  if (stopped_) return;  // still pending in the store: told after the restart
  while (!awaiting_records_.empty() && awaiting_records_.front().ticket <= through) {
    AwaitingRecord awaiting = std::move(awaiting_records_.front());
    awaiting_records_.pop_front();
    send_awaited(awaiting);
  }
}

void AlertDispatcher::send_awaited(const AwaitingRecord& awaiting) {
  const AlertState& alert = alerts_[awaiting.alert];
  sender_.send(
      alert.config, build_alert_request(alert.config, awaiting.message),
      AlertSender::Label{std::string(to_string(awaiting.message.kind)),
                         awaiting.message.event.probe},
      [this, index = awaiting.alert, id = awaiting.incident_id, number = awaiting.message_number,
       kind = awaiting.message.kind](AlertResult) { settled(index, id, number, kind); });
}

// Sent, or failed or dropped for good: either way not to be sent again after a restart.
void AlertDispatcher::settled(size_t alert_index, int64_t incident_id, uint64_t message_number,
                              AlertMessage::Kind kind) {
  if (!save_record_) return;
  AlertState& alert = alerts_[alert_index];
  auto found = alert.incidents.find(incident_id);
  if (kind == AlertMessage::Kind::incident_resolved) {
    // Nothing left to tell (unless a later incident of the same store id took the row).
    if (found == alert.incidents.end())
      save_record_(done_record(alert.config.name, incident_id, 0));
    return;
  }
  if (found == alert.incidents.end() || found->second.message_number != message_number) return;
  found->second.pending = false;
  save(alert, incident_id, found->second, wall_now_ms());
}

void AlertDispatcher::restore(const std::vector<AlertIncidentRow>& rows,
                              const std::set<std::string>& running, int64_t now) {
  for (const AlertIncidentRow& row : rows) {
    auto alert = std::find_if(alerts_.begin(), alerts_.end(), [&](const AlertState& each) {
      return each.config.name == row.alert && each.config.group == AlertConfig::Group::incident;
    });
    if (alert == alerts_.end() || row.members.empty()) {
      log_info(
          "alerts: forgetting a stored incident alert={} incident={} (no such alert grouped "
          "by incident now)",
          row.alert, row.incident_id);
      if (save_record_) save_record_(done_record(row.alert, row.incident_id, now));
      continue;
    }
    OpenIncident incident;
    int awaiting = 0;
    for (const AlertIncidentMemberRow& stored : row.members) {
      AlertEvent opened;
      opened.probe = stored.probe;
      opened.probe_type = stored.probe_type;
      opened.outage_id = next_restored_outage_id_--;
      opened.incident_id = row.incident_id;
      opened.start_ms = stored.down_ms;
      opened.error = stored.error;
      opened.detail = stored.detail;
      opened.at_ms = stored.down_ms;
      IncidentMember member{opened, false, stored.up_ms, stored.told};
      if (member.end_ms == 0) {
        if (running.contains(stored.probe)) {
          member.awaiting_restart = true;
          ++awaiting;
        } else {
          member.end_ms = std::max(now, stored.down_ms);  // no longer probed: ended here
        }
      }
      incident.members.push_back(std::move(member));
    }
    awaiting_restart_ += awaiting;
    incident.root_outage_id = incident.members.front().opened.outage_id;
    incident.decided = true;
    incident.announced = true;
    incident.last_message_ms = now;
    incident.next_reminder_ms = alert->config.repeat_ms > 0 ? now + alert->config.repeat_ms : 0;
    incident.next_resend_ms = now;  // Alertmanager hears of it again at the next tick
    incident.last_message = recorded_message_kind(row.last_message);
    incident.pending = row.pending;
    auto [found, created] = alert->incidents.insert_or_assign(row.incident_id, std::move(incident));
    OpenIncident& restored = found->second;
    // pending: its endpoint never settled the last message, which goes again.
    log_info(
        "alerts: incident restored alert={} incident={} root={} waiting_for={} last={} "
        "pending={}",
        row.alert, row.incident_id, row.members.front().probe, awaiting, row.last_message,
        row.pending);
    const bool over =
        awaiting == 0 && std::none_of(restored.members.begin(), restored.members.end(),
                                      [](const auto& m) { return m.end_ms == 0; });
    if (over || (row.pending && restored.last_message == AlertMessage::Kind::incident_resolved)) {
      resolve(*alert, found, now);
      continue;
    }
    if (row.pending) {
      // The message its endpoint never settled goes again, naming what it named.
      const AlertMessage message =
          incident_message(restored.last_message, row.incident_id, restored, now);
      send_recorded(*alert, row.incident_id, restored, message, now);
      for (IncidentMember& member : restored.members) member.told = true;
      continue;
    }
    if (std::any_of(restored.members.begin(), restored.members.end(),
                    [](const auto& m) { return !m.told; }))
      restored.grew_due_ms = now + options_.incident_gather_ms;
  }
}

void AlertDispatcher::probe_back(const std::string& probe, int64_t at_ms) {
  if (awaiting_restart_ == 0 || stopped_) return;
  const int64_t now = wall_now_ms();
  for (AlertState& alert : alerts_) {
    for (auto found = alert.incidents.begin(); found != alert.incidents.end();) {
      const auto next = std::next(found);
      bool ended = false;
      for (IncidentMember& member : found->second.members) {
        if (!member.awaiting_restart || member.opened.probe != probe) continue;
        stop_awaiting(member);
        member.end_ms = std::max(at_ms, member.opened.start_ms);
        ended = true;
      }
      if (ended) {
        log_info("alerts: back after the restart alert={} incident={} probe={}", alert.config.name,
                 found->first, probe);
        if (std::any_of(found->second.members.begin(), found->second.members.end(),
                        [](const auto& m) { return m.end_ms == 0; })) {
          save(alert, found->first, found->second, now);
        } else {
          resolve(alert, found, now);
        }
      }
      found = next;
    }
  }
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
  gather_timer_.stop();
  sender_.stop(grace_ms, std::move(done));
}

}  // namespace blip
