// What each `[[alert]]` kind is sent: pure functions from a message to a request.
#include "blip/alerts/alert_payload.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "blip/alerts/email_message.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

using nlohmann::json;

std::string dump(const json& document) {
  // Text from targets is already valid UTF-8; a name that is not must not throw here.
  return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A header value never carries a line break (no header injection) or other control bytes.
std::string header_value(std::string_view text) {
  std::string value;
  value.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    value.push_back(byte < 0x20 || byte == 0x7f ? ' ' : c);
  }
  return value;
}

// Slack reads "<...>" in a message as a link or a mention (<!channel>) and "&" as the start of
// an entity: text blip did not write itself (a probe's name, a target's error, a job's output)
// must reach it as text. blip's own words carry no links or mentions, so all of it is escaped.
std::string slack_text(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

bool is_job(const AlertEvent& event) { return event.probe_kind == ComponentKind::job; }

std::string error_words(const AlertEvent& event) {
  if (event.error == ErrorClass::none) return event.detail;
  if (event.detail.empty()) return std::string(to_string(event.error));
  return fmt::format("{} ({})", to_string(event.error), event.detail);
}

// "31–58 s", "31 s", "2m–3m10s"; with `tenths`, "0.4–0.9 s" below 10 s; "" when empty.
std::string range_words(const std::vector<int64_t>& values_ms, bool tenths) {
  if (values_ms.empty()) return {};
  auto [shortest, longest] = std::minmax_element(values_ms.begin(), values_ms.end());
  auto seconds = [](int64_t ms) {
    return static_cast<int64_t>(std::llround(static_cast<double>(ms) / 1000.0));
  };
  if (*longest >= 120'000) {
    if (human_duration(*shortest) == human_duration(*longest)) return human_duration(*shortest);
    return fmt::format("{}–{}", human_duration(*shortest), human_duration(*longest));
  }
  if (tenths && *longest < 10'000) {
    auto tenth = [](int64_t ms) { return fmt::format("{:.1f}", static_cast<double>(ms) / 1000.0); };
    if (tenth(*shortest) == tenth(*longest)) return tenth(*shortest) + " s";
    return fmt::format("{}–{} s", tenth(*shortest), tenth(*longest));
  }
  if (seconds(*shortest) == seconds(*longest)) return fmt::format("{} s", seconds(*shortest));
  return fmt::format("{}–{} s", seconds(*shortest), seconds(*longest));
}

// "31–58 s each", "31 s each" or "" when none has closed yet.
std::string duration_range(const std::vector<int64_t>& durations_ms) {
  std::string range = range_words(durations_ms, false);
  return range.empty() ? range : range + " each";
}

// The names of `components` (indices), each once, in order: "web, streaming, sidekiq".
std::string component_names(const IncidentView& incident, const std::vector<size_t>& which) {
  std::vector<std::string> names;
  for (size_t index : which) {
    const std::string& probe = incident.components.at(index).probe;
    if (std::find(names.begin(), names.end(), probe) == names.end()) names.push_back(probe);
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

std::vector<size_t> all_components(const IncidentView& incident) {
  std::vector<size_t> all(incident.components.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return all;
}

// "also down: web, streaming — 0.4–0.9 s after db-write" for `joined`. A
// component that went down before the root (its outage confirmed later) counts as 0 s after.
std::string also_down(const IncidentView& incident, const std::vector<size_t>& joined) {
  const IncidentComponent& root = incident.components.front();
  std::vector<int64_t> offsets;
  for (size_t index : joined)
    offsets.push_back(std::max<int64_t>(0, incident.components.at(index).down_ms - root.down_ms));
  return fmt::format("also down: {} — {} after {}", component_names(incident, joined),
                     range_words(offsets, true), root.probe);
}

std::string component_error_words(const IncidentComponent& component) {
  AlertEvent event;
  event.error = component.error;
  event.detail = component.detail;
  return error_words(event);
}

// "12:00:05.9" (UTC, to the nearest tenth of a second), for timelines.
std::string clock_time(int64_t ms) { return format_iso8601_ms(ms + 50).substr(11, 10); }

std::string with_text(std::string summary, const AlertEvent& event) {
  if (!event.text.empty()) summary += "; " + event.text;
  return summary;
}

std::string title_of(const AlertMessage& message) {
  const std::string& probe = message.event.probe;
  if (is_blip_trouble(message.event.probe_type)) {
    return message.kind == AlertMessage::Kind::closed ||
                   message.kind == AlertMessage::Kind::incident_resolved
               ? "blip's trouble is over"
               : "blip needs attention";
  }
  switch (message.kind) {
    case AlertMessage::Kind::opened:
      return probe + " is down";
    case AlertMessage::Kind::closed:
      return probe + " is back";
    case AlertMessage::Kind::reminder:
      return probe + " is still down";
    case AlertMessage::Kind::flapping:
      return probe + " is flapping";
    case AlertMessage::Kind::pattern_found:
      return probe + ": a pattern";
    case AlertMessage::Kind::job_forecast:
      return probe + ": runs getting longer";
    case AlertMessage::Kind::incident_opened:
      return probe + " down";
    case AlertMessage::Kind::incident_grew:
      return probe + " incident grew";
    case AlertMessage::Kind::incident_resolved:
      return probe + " incident resolved";
    case AlertMessage::Kind::incident_reminder:
      return probe + " incident still open";
  }
  return probe;
}

// The webhook's `state` of an incident message.
std::string_view incident_state(AlertMessage::Kind kind) {
  switch (kind) {
    case AlertMessage::Kind::incident_grew:
      return "grew";
    case AlertMessage::Kind::incident_resolved:
      return "resolved";
    case AlertMessage::Kind::incident_reminder:
      return "reminder";
    default:
      return "opened";
  }
}

json incident_json(const IncidentView& incident) {
  json components = json::array();
  for (const IncidentComponent& component : incident.components) {
    components.push_back({
        {"probe", component.probe},
        {"type", component.probe_type},
        {"error", std::string(to_string(component.error))},
        {"detail", component.detail},
        {"down", format_iso8601_ms(component.down_ms)},
        {"down_ms", component.down_ms},
        {"up", component.up_ms > 0 ? json(format_iso8601_ms(component.up_ms)) : json(nullptr)},
        {"up_ms", component.up_ms > 0 ? json(component.up_ms) : json(nullptr)},
    });
  }
  json joined = json::array();
  for (size_t index : incident.joined) joined.push_back(incident.components.at(index).probe);
  return {{"incident", incident.id},
          {"root_probe", incident.components.front().probe},
          {"components", std::move(components)},
          {"joined", std::move(joined)},
          {"note", incident.note ? json{{"status", incident.note->status},
                                        {"text", incident.note->text},
                                        {"at", format_iso8601_ms(incident.note->at_ms)}}
                                 : json(nullptr)},
          {"timeline", incident_timeline(incident)}};
}

std::string rfc3339(int64_t ms) { return format_iso8601_ms(ms); }

json webhook_body(const AlertConfig& alert, const AlertMessage& message) {
  const AlertEvent& event = message.event;
  json body = {
      {"alert", alert.name},
      {"event", std::string(to_string(message.kind))},
      {"probe", event.probe},
      {"type", event.probe_type},
      {"tags", event.tags},
      {"summary", alert_summary(message)},
      {"error", std::string(to_string(event.error))},
      {"detail", event.detail},
      {"text", event.text},
      {"at", rfc3339(message.now_ms)},
      {"at_ms", message.now_ms},
  };
  const bool outage =
      message.kind == AlertMessage::Kind::opened || message.kind == AlertMessage::Kind::closed ||
      message.kind == AlertMessage::Kind::reminder || message.kind == AlertMessage::Kind::flapping;
  if (outage) {
    body["outage_id"] = event.outage_id;
    body["start"] = rfc3339(event.start_ms);
    body["start_ms"] = event.start_ms;
    if (message.kind == AlertMessage::Kind::closed) {
      body["end"] = rfc3339(event.end_ms);
      body["end_ms"] = event.end_ms;
      body["duration_ms"] = event.end_ms - event.start_ms;
    } else {
      body["end"] = nullptr;
      body["end_ms"] = nullptr;
      body["duration_ms"] = std::max<int64_t>(0, message.now_ms - event.start_ms);  // so far
    }
  }
  if (message.incident) {
    const IncidentView& incident = *message.incident;
    body.update(incident_json(incident));
    if (is_incident_message(message.kind))
      body["state"] = std::string(incident_state(message.kind));
    body["start"] = rfc3339(incident.start_ms);
    body["start_ms"] = incident.start_ms;
    body["end"] = incident.end_ms > 0 ? json(rfc3339(incident.end_ms)) : json(nullptr);
    body["end_ms"] = incident.end_ms > 0 ? json(incident.end_ms) : json(nullptr);
    body["duration_ms"] = std::max<int64_t>(
        0, (incident.end_ms > 0 ? incident.end_ms : message.now_ms) - incident.start_ms);
  }
  if (!event.trouble.empty()) body["trouble"] = event.trouble;
  if (message.kind == AlertMessage::Kind::flapping) {
    body["flapping"] = {{"outages", message.flapping_outages},
                        {"within_ms", message.flapping_window_ms},
                        {"closed_durations_ms", message.flapping_closed_durations_ms}};
  }
  return body;
}

json alertmanager_body(const AlertMessage& message) {
  const AlertEvent& event = message.event;
  json labels = {{"alertname", alertmanager_alert_name(message)},
                 {"probe", event.probe},
                 {"type", event.probe_type}};
  json alert = {{"labels", json::object()}, {"annotations", json::object()}};
  std::string description;
  switch (message.kind) {
    case AlertMessage::Kind::opened:
    case AlertMessage::Kind::reminder:
    case AlertMessage::Kind::closed:
      // The error label is the opened event's: the dispatcher resolves with the
      // labels it opened with, or Alertmanager would see another alert.
      labels["error"] = std::string(to_string(event.error));
      if (!event.trouble.empty()) labels["trouble"] = event.trouble;
      alert["startsAt"] = rfc3339(event.start_ms);
      // An open outage has no endsAt: Alertmanager keeps it active for
      // resolve_timeout after each re-send, which the dispatcher makes every minute.
      if (message.kind == AlertMessage::Kind::closed) alert["endsAt"] = rfc3339(event.end_ms);
      description = fmt::format("outage {} of {} ({}) since {}", event.outage_id, event.probe,
                                event.probe_type, rfc3339(event.start_ms));
      if (!event.detail.empty()) description += ": " + event.detail;
      break;
    case AlertMessage::Kind::flapping:
      alert["startsAt"] = rfc3339(message.now_ms);
      alert["endsAt"] = rfc3339(message.now_ms + message.flapping_window_ms);
      description = alert_summary(message);
      break;
    case AlertMessage::Kind::pattern_found:
    case AlertMessage::Kind::job_forecast:
      // A finding, not a state: active for an hour, then it resolves itself.
      alert["startsAt"] = rfc3339(message.now_ms);
      alert["endsAt"] = rfc3339(message.now_ms + 3'600'000);
      description = event.text;
      break;
    case AlertMessage::Kind::incident_opened:
    case AlertMessage::Kind::incident_grew:
    case AlertMessage::Kind::incident_reminder:
    case AlertMessage::Kind::incident_resolved: {
      // One alert per incident: its labels stay what they were at opened (the
      // root is chosen then), the components grow in the annotations.
      const IncidentView& incident = message.incident.value();
      labels = {{"alertname", alertmanager_alert_name(message)},
                {"incident", std::to_string(incident.id)},
                {"root_probe", incident.components.front().probe},
                // blip's own trouble: the targets may well be fine.
                {"severity",
                 is_blip_trouble(incident.components.front().probe_type) ? "warning" : "critical"}};
      alert["startsAt"] = rfc3339(incident.start_ms);
      if (message.kind == AlertMessage::Kind::incident_resolved)
        alert["endsAt"] = rfc3339(incident.end_ms);
      alert["annotations"]["components"] = component_names(incident, all_components(incident));
      description = incident_timeline(incident);
      break;
    }
  }
  alert["labels"] = std::move(labels);
  alert["annotations"]["summary"] = alert_summary(message);
  alert["annotations"]["description"] = description;
  return json::array({std::move(alert)});
}

// blip's own trouble (the `blip` component's outages): its words are in `detail`.
std::string trouble_summary(const AlertMessage& message) {
  const AlertEvent& event = message.event;
  const std::string since = clock_time(event.end_ms);
  switch (message.kind) {
    case AlertMessage::Kind::closed:
      return fmt::format("blip's trouble is over, none since {}: {}", since, event.detail);
    case AlertMessage::Kind::reminder:
      return fmt::format("blip's trouble still going after {}: {}",
                         human_duration(message.now_ms - event.start_ms), event.detail);
    case AlertMessage::Kind::incident_opened:
    case AlertMessage::Kind::incident_grew: {
      const IncidentView& incident = message.incident.value();
      std::vector<std::string> also;
      for (size_t i = 1; i < incident.components.size(); ++i) {
        const bool joined =
            std::find(incident.joined.begin(), incident.joined.end(), i) != incident.joined.end();
        if (message.kind == AlertMessage::Kind::incident_opened || joined)
          also.push_back(component_error_words(incident.components[i]));
      }
      const std::string more = also.empty() ? "" : fmt::format("; also: {}", fmt::join(also, "; "));
      if (message.kind == AlertMessage::Kind::incident_grew)
        return fmt::format("blip's trouble grew{}", more);
      return fmt::format("blip trouble: {}{}", event.detail, more);
    }
    case AlertMessage::Kind::incident_resolved:
      return fmt::format("blip's trouble is over, none since {}",
                         clock_time(message.incident->end_ms));
    case AlertMessage::Kind::incident_reminder:
      return fmt::format("blip's trouble still going after {}",
                         human_duration(message.now_ms - message.incident->start_ms));
    default:
      return fmt::format("blip trouble: {}", event.detail);
  }
}

std::string alertmanager_url(const std::string& base) {
  static constexpr std::string_view kPath = "/api/v2/alerts";
  std::string url = base;
  if (url.size() >= kPath.size() &&
      url.compare(url.size() - kPath.size(), kPath.size(), kPath) == 0)
    return url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + std::string(kPath);
}

}  // namespace

std::string_view to_string(AlertMessage::Kind kind) {
  switch (kind) {
    case AlertMessage::Kind::opened:
      return "outage_opened";
    case AlertMessage::Kind::closed:
      return "outage_closed";
    case AlertMessage::Kind::reminder:
      return "outage_reminder";
    case AlertMessage::Kind::flapping:
      return "flapping";
    case AlertMessage::Kind::pattern_found:
      return "pattern_found";
    case AlertMessage::Kind::job_forecast:
      return "job_forecast";
    case AlertMessage::Kind::incident_opened:
      return "incident_opened";
    case AlertMessage::Kind::incident_grew:
      return "incident_grew";
    case AlertMessage::Kind::incident_resolved:
      return "incident_resolved";
    case AlertMessage::Kind::incident_reminder:
      return "incident_reminder";
  }
  return "unknown";
}

bool is_incident_message(AlertMessage::Kind kind) {
  return kind == AlertMessage::Kind::incident_opened || kind == AlertMessage::Kind::incident_grew ||
         kind == AlertMessage::Kind::incident_resolved ||
         kind == AlertMessage::Kind::incident_reminder;
}

std::string human_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  if (ms < 60'000) return fmt::format("{}s", std::llround(static_cast<double>(ms) / 1000.0));
  return format_duration_brief(ms);
}

std::string incident_timeline(const IncidentView& incident) {
  std::vector<std::pair<int64_t, std::string>> lines;
  for (const IncidentComponent& component : incident.components) {
    const std::string words = component_error_words(component);
    if (is_blip_trouble(component.probe_type)) {
      lines.emplace_back(component.down_ms, fmt::format("{}: {}", component.probe, words));
      if (component.up_ms > component.down_ms)
        lines.emplace_back(component.up_ms,
                           fmt::format("{}: the last of it, {} after the first", component.probe,
                                       human_duration(component.up_ms - component.down_ms)));
      continue;
    }
    lines.emplace_back(component.down_ms, words.empty()
                                              ? component.probe + " down"
                                              : fmt::format("{} down: {}", component.probe, words));
    if (component.up_ms > 0) {
      lines.emplace_back(component.up_ms,
                         fmt::format("{} up after {}", component.probe,
                                     human_duration(component.up_ms - component.down_ms)));
    }
  }
  // The operator's words at their time, as the status page shows them.
  if (incident.note)
    lines.emplace_back(incident.note->at_ms,
                       fmt::format("{}: {}", incident.note->status, incident.note->text));
  std::stable_sort(lines.begin(), lines.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string timeline;
  for (const auto& [at, line] : lines) timeline += fmt::format("  {}  {}\n", clock_time(at), line);
  if (incident.end_ms > 0)
    timeline += fmt::format("  total {}\n", human_duration(incident.end_ms - incident.start_ms));
  return timeline;
}

std::string alert_summary(const AlertMessage& message) {
  const AlertEvent& event = message.event;
  if (is_blip_trouble(event.probe_type)) return trouble_summary(message);
  switch (message.kind) {
    case AlertMessage::Kind::opened: {
      std::string words = error_words(event);
      return with_text(words.empty() ? event.probe + " is down"
                                     : fmt::format("{} is down: {}", event.probe, words),
                       event);
    }
    case AlertMessage::Kind::closed:
      return with_text(fmt::format("{} is back after {}", event.probe,
                                   human_duration(event.end_ms - event.start_ms)),
                       event);
    case AlertMessage::Kind::reminder: {
      std::string summary = fmt::format("{} is still down after {}", event.probe,
                                        human_duration(message.now_ms - event.start_ms));
      std::string words = error_words(event);
      return words.empty() ? summary : summary + ": " + words;
    }
    case AlertMessage::Kind::flapping: {
      std::string summary =
          fmt::format("{} outages of {} in the last {}", message.flapping_outages, event.probe,
                      format_duration_ms(message.flapping_window_ms));
      std::string range = duration_range(message.flapping_closed_durations_ms);
      if (!range.empty()) summary += ", " + range;
      return summary;
    }
    case AlertMessage::Kind::pattern_found:
    case AlertMessage::Kind::job_forecast:
      return event.text.empty() ? title_of(message)
                                : fmt::format("{}: {}", event.probe, event.text);
    case AlertMessage::Kind::incident_opened: {
      const IncidentView& incident = message.incident.value();
      std::string words = error_words(event);
      std::string summary = with_text(
          words.empty() ? event.probe + " down" : fmt::format("{} down: {}", event.probe, words),
          event);
      std::vector<size_t> others = all_components(incident);
      others.erase(others.begin());
      if (!others.empty()) summary += "; " + also_down(incident, others);
      return summary;
    }
    case AlertMessage::Kind::incident_grew:
      return fmt::format("{} incident grew: {}", event.probe,
                         also_down(message.incident.value(), message.incident->joined));
    case AlertMessage::Kind::incident_resolved: {
      const IncidentView& incident = message.incident.value();
      return fmt::format("{} incident resolved after {} ({})", event.probe,
                         human_duration(incident.end_ms - incident.start_ms),
                         component_names(incident, all_components(incident)));
    }
    case AlertMessage::Kind::incident_reminder: {
      const IncidentView& incident = message.incident.value();
      std::vector<size_t> down;
      for (size_t i = 0; i < incident.components.size(); ++i) {
        if (incident.components[i].up_ms == 0) down.push_back(i);
      }
      return fmt::format("{} incident still open after {}: {} down", event.probe,
                         human_duration(message.now_ms - incident.start_ms),
                         component_names(incident, down));
    }
  }
  return event.probe;
}

std::string alert_text(const AlertMessage& message) {
  std::string text = alert_summary(message);
  if (is_incident_message(message.kind)) text += "\n\n" + incident_timeline(*message.incident);
  return text;
}

std::string alertmanager_alert_name(const AlertMessage& message) {
  switch (message.kind) {
    case AlertMessage::Kind::opened:
    case AlertMessage::Kind::closed:
    case AlertMessage::Kind::reminder:
      if (is_blip_trouble(message.event.probe_type)) return "BlipTrouble";
      return is_job(message.event) ? "BlipJobOutage" : "BlipOutage";
    case AlertMessage::Kind::flapping:
      return "BlipFlapping";
    case AlertMessage::Kind::pattern_found:
      return "BlipPattern";
    case AlertMessage::Kind::job_forecast:
      return "BlipJobForecast";
    case AlertMessage::Kind::incident_opened:
    case AlertMessage::Kind::incident_grew:
    case AlertMessage::Kind::incident_resolved:
    case AlertMessage::Kind::incident_reminder:
      return "BlipIncident";
  }
  return "Blip";
}

AlertRequest build_alert_request(const AlertConfig& alert, const AlertMessage& message) {
  AlertRequest request;
  request.url = alert.url;
  switch (alert.kind) {
    case AlertConfig::Kind::webhook:
      request.headers.emplace_back("Content-Type: application/json");
      request.body = dump(webhook_body(alert, message));
      break;
    case AlertConfig::Kind::slack:
      request.headers.emplace_back("Content-Type: application/json");
      request.body = dump(json{{"text", slack_text(alert_text(message))}});
      break;
    case AlertConfig::Kind::ntfy: {
      const bool down = message.kind == AlertMessage::Kind::opened ||
                        message.kind == AlertMessage::Kind::reminder ||
                        message.kind == AlertMessage::Kind::flapping ||
                        message.kind == AlertMessage::Kind::incident_opened ||
                        message.kind == AlertMessage::Kind::incident_grew ||
                        message.kind == AlertMessage::Kind::incident_reminder;
      const bool back = message.kind == AlertMessage::Kind::closed ||
                        message.kind == AlertMessage::Kind::incident_resolved;
      std::string tags = back ? "white_check_mark" : down ? "rotating_light" : "mag";
      tags += ",blip";
      if (!message.event.probe_type.empty()) tags += "," + message.event.probe_type;
      for (const std::string& tag : message.event.tags) tags += "," + tag;
      request.headers.emplace_back("Content-Type: text/plain; charset=utf-8");
      request.headers.push_back("Title: " + header_value(title_of(message)));
      request.headers.push_back(std::string("Priority: ") + (down ? "high" : "default"));
      request.headers.push_back("Tags: " + header_value(tags));
      request.body = alert_text(message);
      break;
    }
    case AlertConfig::Kind::alertmanager:
      request.url = alertmanager_url(alert.url);
      request.headers.emplace_back("Content-Type: application/json");
      request.body = dump(alertmanager_body(message));
      break;
    case AlertConfig::Kind::email: {
      request.body = build_mail(alert, message);
      MailEnvelope envelope;
      envelope.from = alert.mail.from.address;
      for (const MailAddress& to : alert.mail.to) envelope.recipients.push_back(to.address);
      envelope.username = alert.mail.username;
      envelope.password = alert.mail.password;
      envelope.starttls = alert.mail.starttls;
      request.mail = std::move(envelope);
      return request;  // an e-mail has no HTTP headers; config refuses them for this kind
    }
  }
  for (const auto& [name, value] : alert.headers) {
    request.headers.push_back(header_value(name) + ": " + header_value(value));
  }
  return request;
}

std::string alert_url_for_logs(const AlertConfig& alert) {
  if (alert.kind == AlertConfig::Kind::webhook || alert.kind == AlertConfig::Kind::alertmanager) {
    return redact_url(alert.url);
  }
  // Slack and ntfy: the path is the secret. Email: the login has keys of its own; the
  // url's path (a HELO name) says nothing a reader needs.
  if (alert.kind == AlertConfig::Kind::email) return url_origin(alert.url, true);
  return url_origin(alert.url) + "/***";
}

}  // namespace blip
