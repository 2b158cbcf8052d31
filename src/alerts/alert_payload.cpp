// What each `[[alert]]` kind is sent: pure functions from a message to a request.
#include "blip/alerts/alert_payload.hpp"

#include <fmt/format.h>

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

// "31–58 s each", "31 s each" or "" when none has closed yet.
std::string duration_range(const std::vector<int64_t>& durations_ms) {
  if (durations_ms.empty()) return {};
  auto [shortest, longest] = std::minmax_element(durations_ms.begin(), durations_ms.end());
  auto seconds = [](int64_t ms) {
    return static_cast<int64_t>(std::llround(static_cast<double>(ms) / 1000.0));
  };
  if (*longest >= 120'000) {
    if (human_duration(*shortest) == human_duration(*longest))
      return human_duration(*shortest) + " each";
    return fmt::format("{}–{} each", human_duration(*shortest), human_duration(*longest));
  }
  if (seconds(*shortest) == seconds(*longest)) return fmt::format("{} s each", seconds(*shortest));
  return fmt::format("{}–{} s each", seconds(*shortest), seconds(*longest));
}

std::string with_text(std::string summary, const AlertEvent& event) {
  if (!event.text.empty()) summary += "; " + event.text;
  return summary;
}

std::string title_of(const AlertMessage& message) {
  const std::string& probe = message.event.probe;
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
    case AlertMessage::Kind::blip_trouble:
      return "blip needs attention";
  }
  return probe;
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
  if (message.kind == AlertMessage::Kind::blip_trouble) body["trouble"] = event.trouble;
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
    case AlertMessage::Kind::blip_trouble:
      labels["trouble"] = event.trouble;
      [[fallthrough]];
    case AlertMessage::Kind::pattern_found:
    case AlertMessage::Kind::job_forecast:
      // A finding, not a state: active for an hour, then it resolves itself.
      alert["startsAt"] = rfc3339(message.now_ms);
      alert["endsAt"] = rfc3339(message.now_ms + 3'600'000);
      description = event.text;
      break;
  }
  alert["labels"] = std::move(labels);
  alert["annotations"] = {{"summary", alert_summary(message)}, {"description", description}};
  return json::array({std::move(alert)});
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
    case AlertMessage::Kind::blip_trouble:
      return "blip_trouble";
  }
  return "unknown";
}

std::string human_duration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 10'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  if (ms < 60'000) return fmt::format("{}s", std::llround(static_cast<double>(ms) / 1000.0));
  return format_duration_brief(ms);
}

std::string alert_summary(const AlertMessage& message) {
  const AlertEvent& event = message.event;
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
    case AlertMessage::Kind::blip_trouble:
      return event.text.empty() ? title_of(message)
                                : fmt::format("{}: {}", event.probe, event.text);
  }
  return event.probe;
}

std::string alertmanager_alert_name(const AlertMessage& message) {
  switch (message.kind) {
    case AlertMessage::Kind::opened:
    case AlertMessage::Kind::closed:
    case AlertMessage::Kind::reminder:
      return is_job(message.event) ? "BlipJobOutage" : "BlipOutage";
    case AlertMessage::Kind::flapping:
      return "BlipFlapping";
    case AlertMessage::Kind::pattern_found:
      return "BlipPattern";
    case AlertMessage::Kind::job_forecast:
      return "BlipJobForecast";
    case AlertMessage::Kind::blip_trouble:
      return "BlipTrouble";
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
      request.body = dump(json{{"text", slack_text(alert_summary(message))}});
      break;
    case AlertConfig::Kind::ntfy: {
      const bool down = message.kind == AlertMessage::Kind::opened ||
                        message.kind == AlertMessage::Kind::reminder ||
                        message.kind == AlertMessage::Kind::flapping;
      std::string tags = message.kind == AlertMessage::Kind::closed ? "white_check_mark"
                         : down                                     ? "rotating_light"
                                                                    : "mag";
      tags += ",blip";
      if (!message.event.probe_type.empty()) tags += "," + message.event.probe_type;
      for (const std::string& tag : message.event.tags) tags += "," + tag;
      request.headers.emplace_back("Content-Type: text/plain; charset=utf-8");
      request.headers.push_back("Title: " + header_value(title_of(message)));
      request.headers.push_back(std::string("Priority: ") + (down ? "high" : "default"));
      request.headers.push_back("Tags: " + header_value(tags));
      request.body = alert_summary(message);
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
