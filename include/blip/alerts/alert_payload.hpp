#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blip/alerts/alert_event.hpp"
#include "blip/config/config.hpp"

namespace blip {

// One outage of an incident as incident messages show it (its component and times).
struct IncidentComponent {
  std::string probe;
  std::string probe_type;
  ErrorClass error = ErrorClass::none;
  std::string detail;
  int64_t down_ms = 0;  // its outage's start
  int64_t up_ms = 0;    // its outage's end; 0 while still down
};

// The operator's latest words on an incident (`blip incident note`), shown in its next message.
struct IncidentNote {
  std::string status;  // identified, monitoring or resolved
  std::string text;
  int64_t at_ms = 0;
};

// An alert's view of one incident (`group = "incident"`): the outages of the
// probes it selects that the store put in one incident.
struct IncidentView {
  int64_t id = 0;        // the store's incident id
  int64_t start_ms = 0;  // the first down sample of any of its outages
  int64_t end_ms = 0;    // resolved: when the last outage ended; 0 while open
  // In the order they went down; the first is the root (the message's event).
  std::vector<IncidentComponent> components;
  // grew and resolved: the outages this message is the first to tell of (indices into components).
  std::vector<size_t> joined;
  std::optional<IncidentNote> note;  // the latest, when the operator wrote one
};

// What one message to one `[[alert]]` is about: an AlertEvent as it came, or
// what the dispatcher makes of events (a reminder, a flapping summary, an
// Alertmanager re-send of a still-open outage, an incident's messages).
struct AlertMessage {
  enum class Kind {
    opened,             // an outage opened
    closed,             // an outage closed (resolved)
    reminder,           // `repeat`: still down; Alertmanager: the periodic re-send
    flapping,           // the flapping rule's one summary
    pattern_found,      // a periodic pattern first found
    job_forecast,       // a job's runs will exceed max_run soon
    incident_opened,    // an incident's first outage(s), named by the first down
    incident_grew,      // components that joined an announced incident
    incident_resolved,  // the incident's last outage ended: the timeline
    incident_reminder,  // `repeat` / Alertmanager re-send of an open incident
  };
  AlertMessage() = default;
  AlertMessage(Kind what, AlertEvent about, int64_t now)
      : kind(what), event(std::move(about)), now_ms(now) {}
  Kind kind = Kind::opened;
  // The event: for a reminder the outage's opened event; for flapping the
  // opened event that reached the threshold.
  AlertEvent event;
  int64_t now_ms = 0;  // when the message is made (a reminder's "still down after")
  // flapping only: how many outages within how long, and the durations of
  // those among them that have closed.
  int flapping_outages = 0;
  int64_t flapping_window_ms = 0;
  std::vector<int64_t> flapping_closed_durations_ms;
  // incident_* messages (and a flapping summary of incidents): the incident.
  std::optional<IncidentView> incident;
};
std::string_view to_string(AlertMessage::Kind kind);
bool is_incident_message(AlertMessage::Kind kind);

// kind = email: what SMTP needs beside the message (the request's body).
struct MailEnvelope {
  std::string from;                     // MAIL FROM, an addr-spec
  std::vector<std::string> recipients;  // RCPT TO, one each
  std::string username;                 // AUTH when not empty
  std::string password;                 // a secret: never log it
  MailSettings::StartTls starttls = MailSettings::StartTls::try_upgrade;
};

// One HTTP POST, or with `mail` one SMTP send, ready for the sender.
struct AlertRequest {
  std::string url;                   // may hold a secret: never log it whole
  std::vector<std::string> headers;  // "Name: value"; values may be secrets: never log them
  std::string body;                  // email: the whole RFC 5322 message
  std::optional<MailEnvelope> mail;  // email only
};

// The human line: "web-health is down: timeout (no answer within 1s)",
// "web-health is back after 31s", "3 outages of web-health in the last 1h,
// 31–58 s each", …; an event's `text`, when present, follows the first
// sentence ("…; 3rd outage at about +00:20 this hour").
// Incident messages: "db-write down: timeout (no answer within 1s); also down:
// db-read 0.3 s after db-write", "db-write incident grew: also down: web,
// streaming — 0.4–0.9 s after db-write", "db-write incident resolved after 6.2s
// (db-write, db-read)", "db-write incident still open after 5m: …".
std::string alert_summary(const AlertMessage& message);

// An incident's timeline: one line per component going down or coming back, in
// time order ("  12:00:00.1  db-write down: timeout (no answer within 1s)",
// "  12:00:05.9  db-write up after 5.8s"), then "  total 6.2s" once resolved.
std::string incident_timeline(const IncidentView& incident);

// The summary and, for an incident's messages, its timeline below it: the
// text of Slack and ntfy bodies.
std::string alert_text(const AlertMessage& message);

// "2.8s", "31s", "4m32s": how long an outage lasted, for people.
std::string human_duration(int64_t ms);

// The request for `alert`'s kind:
//   webhook       JSON object (event, probe, type, tags, outage_id, start/end
//                 in RFC 3339 and ms, duration_ms, error, detail, text, summary, …)
//   slack         {"text": summary}, with &, < and > as Slack's entities (never a link or mention)
//   ntfy          the summary as a text body; Title, Priority (high when down,
//                 default otherwise) and Tags headers
//   alertmanager  a JSON array of one alert POSTed to <url>/api/v2/alerts;
//                 labels {alertname, probe, type, error, and trouble for blip's own}, annotations
//                 {summary, description}, startsAt, and endsAt once resolved
//   email         the message of build_mail (email_message.hpp) and its envelope
// Incident messages: the webhook adds state, incident, root_probe,
// components, joined and timeline (start/end/duration are the incident's);
// slack and ntfy send alert_text; Alertmanager gets one BlipIncident alert per
// incident (labels alertname, incident, root_probe, severity; annotations
// summary, description = the timeline, components).
// The alert's own headers (an Authorization token) are added to each.
AlertRequest build_alert_request(const AlertConfig& alert, const AlertMessage& message);

// The Alertmanager `alertname` label for a message: BlipOutage (a probe),
// BlipJobOutage (a job late, overrunning or failed), BlipFlapping,
// BlipPattern, BlipJobForecast, BlipTrouble (blip itself, grouped by probe);
// BlipIncident for every incident, blip's own trouble too (severity "warning").
std::string alertmanager_alert_name(const AlertMessage& message);

// A URL as the alert logs show it: `redact_url`'s form for webhook and
// alertmanager; only scheme://host[:port] for slack and ntfy, whose paths
// are the secret (a Slack webhook's path is its key, an ntfy topic its password);
// scheme://host:port for email.
std::string alert_url_for_logs(const AlertConfig& alert);

}  // namespace blip
