#pragma once
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/alerts/alert_event.hpp"
#include "blip/alerts/alert_payload.hpp"
#include "blip/alerts/alert_sender.hpp"
#include "blip/config/config.hpp"
#include "blip/core/loop.hpp"
#include "blip/store/rows.hpp"

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
// - pattern_found and job_forecast events: one message each (held aside).
// - blip's own trouble comes as outages of the component `blip` (BlipTroubleWatch), each
//   spell of it an incident of its own, so both groupings treat it as they treat outages.
//
// `group = "incident"` (the default) replaces the per-outage rules for outages
// that the store put in an incident (a job's outages too; an event without an
// incident id falls back to the rules above). An alert's incident is the
// outages of the probes it selects that share one store incident id:
// - Opened: when its first outage opens, the alert waits `incident_gather_ms`
//   (2 s) so that components failing together (a
//   database's read and write probes) make one message; then ONE opened,
//   named by the outage that went down first (the root), listing the others.
// - Grew: outages that join an announced incident are gathered the same way
//   and told in at most one grew message per `incident_grew_every_ms` (30 s,
//   counted from the incident's previous message, the opened included).
//   Joins still waiting when the incident resolves are told by the resolved
//   message instead (its `joined`).
// - Resolved: when the alert's last open outage of the incident ends, ONE
//   resolved message with the timeline. An outage of the same store incident
//   that opens later starts a new alert incident (opened again).
// - Maintenance: the incident is held when its root's opened event is held;
//   then its grew, reminders and resolved are held too (the root cause is the
//   planned work), whatever window its joins fall in.
// - Flapping: counts incidents by their root probe (an incident's start in the
//   window); the Nth makes the one summary instead of its opened, and further
//   incidents rooted at that probe are suppressed whole until fewer than N
//   started within the window.
// - send_resolved, repeat (incident_reminder) and Alertmanager re-sends (one
//   BlipIncident alert per incident, every 60 s while open) as for outages.
//
// Across a restart (set_record_save, restore): an announced incident is recorded
// (AlertIncidentRow) whenever it changes, and each of its opened, grew and resolved
// messages is sent only once its record is stored (at most `record_wait_ms` later: a
// stalled disk delays a page, it never loses one), so a kill -9 after a send cannot forget
// it was sent. The record says whether the endpoint settled the message (sent, failed for
// good or dropped); one still waiting or in flight at shutdown is abandoned, stays pending
// and is sent again after the restart. restore() reopens the incidents still open: each
// outage that was open at shutdown waits for its probe's first samples. `confirm` down
// samples open an outage that continues the incident (its new store outage and incident
// join the old alert incident: no second opened); an up or degraded sample first
// (probe_back) ends it there. The last to end sends the one resolved message.
// Alertmanager gets the restored incident again at the next tick.
class AlertDispatcher {
 public:
  // True: the event falls in a maintenance window of its probe: hold it.
  using HoldCheck = std::function<bool(const AlertEvent&)>;
  struct Options {
    AlertSender::Options sender;
    int64_t tick_ms = 1000;  // reminders, re-sends and flapping ends
    int64_t alertmanager_resend_ms = 60'000;
    int64_t incident_gather_ms = 2'000;       // joins this close together make one message
    int64_t incident_grew_every_ms = 30'000;  // at most one message per incident this often
    int64_t record_wait_ms = 2'000;  // an incident's message waits this long for its record
  };

  AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl, std::vector<AlertConfig> alerts,
                  HoldCheck held, Options options);
  AlertDispatcher(uv_loop_t* loop, CurlMultiUv& curl, std::vector<AlertConfig> alerts,
                  HoldCheck held)
      : AlertDispatcher(loop, curl, std::move(alerts), std::move(held), Options{}) {}
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;
  ~AlertDispatcher();

  // The operator's latest note on an incident (loop thread; never waits): incident messages
  // made after a note carry it.
  using NoteLookup = std::function<std::optional<IncidentNote>(int64_t incident_id)>;
  void set_note_lookup(NoteLookup lookup) { note_of_ = std::move(lookup); }

  // Where incident records go (the store's writer; loop thread, never waits): returns a
  // ticket, and records_stored(t) says every record up to ticket t is stored. Without one,
  // messages go at once and nothing survives a restart.
  using RecordSave = std::function<uint64_t(AlertIncidentRow)>;
  void set_record_save(RecordSave save) { save_record_ = std::move(save); }
  void records_stored(uint64_t through);
  // At start-up, before any event: the incidents the store says were still to be told.
  // Outages of probes not in `running` are taken as ended now.
  void restore(const std::vector<AlertIncidentRow>& rows, const std::set<std::string>& running,
               int64_t now);
  // True while a restored incident waits for some probe's first samples.
  bool awaiting_restart() const { return awaiting_restart_ > 0; }
  // That probe's sample was up or degraded (not blind): a restored outage of it ends here.
  void probe_back(const std::string& probe, int64_t at_ms);

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
    // opened (not held) within the flapping window, oldest first; with group =
    // "incident", the incidents rooted at this probe (outage_id is the incident's id)
    std::deque<RecentOutage> recent;
    bool flapping = false;
  };
  // One outage of an alert's incident.
  struct IncidentMember {
    AlertEvent opened;
    bool held = false;   // its opened event fell in a maintenance window
    int64_t end_ms = 0;  // 0 while down
    bool told = false;   // named by a message already (opened or grew)
    // Restored: its outage was open when blip stopped; its probe's first samples decide.
    bool awaiting_restart = false;
  };
  struct OpenIncident {
    std::vector<IncidentMember> members;  // in the order they opened
    int64_t root_outage_id = 0;           // chosen when the opened is decided
    bool decided = false;                 // opened sent, held, suppressed or folded into a summary
    bool announced = false;               // its opened was sent
    bool held = false;
    int64_t opened_due_ms = 0;  // the first outage's open + the gather
    int64_t grew_due_ms = 0;    // 0: no join waiting
    int64_t last_message_ms = 0;
    int64_t next_reminder_ms = 0;
    int64_t next_resend_ms = 0;
    // Its record: the last message decided, and whether its endpoint has not settled it yet.
    AlertMessage::Kind last_message = AlertMessage::Kind::incident_opened;
    bool pending = false;
    uint64_t message_number = 0;  // which message `pending` is about
  };
  struct AlertState {
    AlertConfig config;
    std::map<std::string, ProbeState> probes;
    // By the store's incident id; a restored incident keeps the id it had before the restart.
    std::map<int64_t, OpenIncident> incidents;
    // After a restart, the new store outages and incidents that continue a restored incident.
    std::map<int64_t, int64_t> continuing_outages;    // outage id -> its alert incident
    std::map<int64_t, int64_t> continuing_incidents;  // store incident id -> its alert incident
  };
  // An incident message whose record the writer has not stored yet.
  struct AwaitingRecord {
    uint64_t ticket;
    size_t alert;  // index into alerts_
    int64_t incident_id;
    uint64_t message_number;
    AlertMessage message;
    int64_t queued_ms;
  };

  void on_opened(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void on_closed(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void on_finding(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  void on_incident_opened(AlertState& alert, const AlertEvent& event, bool held, int64_t now);
  // False when the alert has no such incident (it opened before this dispatcher).
  bool on_incident_closed(AlertState& alert, const AlertEvent& event, int64_t now);
  void decide_opened(AlertState& alert, int64_t incident_id, OpenIncident& incident, int64_t now);
  // The alert incident an outage event belongs to (a restored one it continues, or its own).
  static int64_t home_of(const AlertState& alert, const AlertEvent& event);
  // An outage opened after a restart for a probe a restored incident waits on: it continues it.
  bool continue_restored(AlertState& alert, const AlertEvent& event, int64_t now);
  // A restored member has had its first sample after the restart (or never will).
  void stop_awaiting(IncidentMember& member);
  // Its last outage ended: the resolved message (and the opened first, if never decided).
  void resolve(AlertState& alert, std::map<int64_t, OpenIncident>::iterator found, int64_t now);
  AlertIncidentRow record_of(const AlertState& alert, int64_t incident_id,
                             const OpenIncident& incident, int64_t now) const;
  // Writes an announced incident's record as it is now (no message).
  void save(const AlertState& alert, int64_t incident_id, const OpenIncident& incident,
            int64_t now);
  // An opened, grew or resolved message: recorded as pending, sent once the record is stored.
  void send_recorded(AlertState& alert, int64_t incident_id, OpenIncident& incident,
                     const AlertMessage& message, int64_t now);
  void send_awaited(const AwaitingRecord& awaiting);
  void settled(size_t alert_index, int64_t incident_id, uint64_t message_number,
               AlertMessage::Kind kind);
  void incident_tick(AlertState& alert, int64_t now);
  AlertMessage incident_message(AlertMessage::Kind kind, int64_t incident_id,
                                const OpenIncident& incident, int64_t now) const;
  bool passes_flapping(AlertState& alert, ProbeState& probe, RecentOutage recent,
                       const AlertMessage& opened, int64_t now);
  // True when a reminder (Alertmanager: a re-send) is due now; moves its schedule on. Asked each
  // tick before any message is made: most ticks make none.
  bool reminder_due(const AlertState& alert, int64_t& next_reminder_ms, int64_t& next_resend_ms,
                    int64_t now) const;
  void remind(AlertState& alert, const AlertMessage& reminder, int64_t now);
  void tick();
  void send(AlertState& alert, const AlertMessage& message);
  void skip(AlertState& alert, const AlertMessage& message, AlertResult why);
  static void forget_old(ProbeState& probe, const FlappingRule& rule, int64_t now);

  HoldCheck held_;
  NoteLookup note_of_;
  RecordSave save_record_;
  std::deque<AwaitingRecord> awaiting_records_;  // by ticket
  int awaiting_restart_ = 0;                     // restored members waiting for first samples
  int64_t next_restored_outage_id_ = -1;         // restored members' outage ids: never a store id
  Options options_;
  AlertSender sender_;
  std::vector<AlertState> alerts_;
  Timer tick_timer_;
  Timer gather_timer_;  // a new incident's opened at the end of its gather, not at the next tick
  bool stopped_ = false;
};

}  // namespace blip
