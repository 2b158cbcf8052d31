// The e-mail alert's message: headers no text can break, a quoted-printable
// body, and Message-IDs that thread one outage's mails (see the header).
#include "blip/alerts/email_message.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "blip/core/clock.hpp"

namespace blip {
namespace {

// RFC 5322's "SHOULD" line length; folds aim under it.
constexpr size_t kLineLimit = 78;
// A word that long never fits a line: the field goes as encoded-words instead.
constexpr size_t kLongestPlainWord = 900;
// RFC 2047 2: "An 'encoded-word' may not be more than 75 characters long".
constexpr size_t kLongestEncodedWord = 75;

bool is_control(unsigned char byte) { return byte < 0x20 || byte == 0x7f; }

// Control characters to spaces, runs of spaces to one, none at either end: a
// value that is one line of words whatever it was given.
std::string one_line(std::string_view text) {
  std::string line;
  line.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (is_control(static_cast<unsigned char>(c)) || c == ' ') {
      space = true;
      continue;
    }
    if (space && !line.empty()) line += ' ';
    space = false;
    line += c;
  }
  return line;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t left = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left > 1) group |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (left > 2) group |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += left > 1 ? kAlphabet[(group >> 6) & 63] : '=';
    out += left > 2 ? kAlphabet[group & 63] : '=';
  }
  return out;
}

// `text` as RFC 2047 "B" encoded-words, each whole UTF-8 characters: the first
// fits in `first_room` characters when it can, the others in a folded line.
std::vector<std::string> encoded_words(std::string_view text, size_t first_room) {
  static constexpr std::string_view kOpen = "=?UTF-8?B?";
  static constexpr std::string_view kClose = "?=";
  auto bytes_for = [](size_t room) {
    const size_t overhead = kOpen.size() + kClose.size();
    const size_t encoded = room > overhead + 4 ? room - overhead : 4;
    return std::max<size_t>(encoded / 4 * 3, 3);
  };
  std::vector<std::string> words;
  size_t at = 0;
  size_t room = first_room;
  while (at < text.size()) {
    size_t take = std::min(bytes_for(std::min(room, kLongestEncodedWord)), text.size() - at);
    // Never split a character: back off continuation bytes (10xxxxxx) at the cut.
    while (at + take < text.size() && take > 1 &&
           (static_cast<unsigned char>(text[at + take]) & 0xC0) == 0x80)
      --take;
    words.push_back(std::string(kOpen) + base64(text.substr(at, take)) + std::string(kClose));
    at += take;
    room = kLineLimit - 1;  // after the fold's one space
  }
  return words;
}

bool plain_ascii(std::string_view text) {
  if (text.find("=?") != std::string_view::npos) return false;  // would decode as an encoded-word
  size_t word = 0;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) return false;
    word = c == ' ' ? 0 : word + 1;
    if (word > kLongestPlainWord) return false;
  }
  return true;
}

// Appends `pieces` (each led by one space) after `line_length` characters
// already on the line, folding before a piece that would pass the limit.
void append_folded(std::string& out, size_t line_length, const std::vector<std::string>& pieces) {
  bool first = true;
  for (const std::string& piece : pieces) {
    if (!first && line_length + piece.size() > kLineLimit) {
      out += "\r\n";
      line_length = 0;
    }
    out += piece;
    line_length += piece.size();
    first = false;
  }
}

// A display name as a phrase: an atom run, a quoted string, or encoded-words.
std::string phrase(std::string_view name, size_t room) {
  const std::string text = one_line(name);
  const bool atoms = std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view(" !#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
  });
  if (atoms && plain_ascii(text)) return text;
  if (plain_ascii(text)) {
    std::string quoted = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    return quoted + "\"";
  }
  std::string words;
  for (const std::string& word : encoded_words(text, room)) {
    if (!words.empty()) words += "\r\n ";
    words += word;
  }
  return words;
}

std::string address_text(const MailAddress& address, size_t room) {
  if (address.display_name.empty()) return address.address;
  return phrase(address.display_name, room) + " <" + address.address + ">";
}

// An id's left part from names: letters, digits, "-" and "_"; anything else "-".
std::string id_part(std::string_view text) {
  std::string part;
  for (char c : text) {
    part += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '-';
  }
  return part.empty() ? "blip" : part;
}

// A Message-ID's right part: the `from` domain's letters, digits, "." and "-".
std::string id_domain(std::string_view domain) {
  std::string part;
  for (char c : domain) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') part += c;
  }
  return part.empty() ? "blip" : part;
}

std::string error_words(const AlertEvent& event) {
  if (event.error == ErrorClass::none) return {};
  return std::string(to_string(event.error));
}

bool about_an_outage(AlertMessage::Kind kind) {
  return kind == AlertMessage::Kind::opened || kind == AlertMessage::Kind::closed ||
         kind == AlertMessage::Kind::reminder || kind == AlertMessage::Kind::flapping;
}

// Body text whose own line breaks (CR, LF, CRLF) continue under `indent`
// spaces: a value stays visibly one value.
std::string indented(std::string_view text, size_t indent) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' || text[i] == '\n') {
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += '\n';
      out.append(indent, ' ');
    } else {
      out += text[i];
    }
  }
  return out;
}

// The body: the summary, then the webhook's fields one a line.
std::string mail_body(const AlertConfig& alert, const AlertMessage& message) {
  static constexpr size_t kIndent = 10;
  const AlertEvent& event = message.event;
  std::string body = indented(alert_summary(message), 2) + "\n\n";
  if (is_incident_message(message.kind)) body += incident_timeline(*message.incident) + "\n";
  auto field = [&](std::string_view name, const std::string& value) {
    if (!value.empty())
      body += fmt::format("{:<{}}{}\n", std::string(name) + ":", kIndent, indented(value, kIndent));
  };
  std::string tags;
  for (const std::string& tag : event.tags) tags += (tags.empty() ? "" : ", ") + tag;
  field("probe", event.probe);
  field("type", event.probe_type);
  field("tags", tags);
  field("event", std::string(to_string(message.kind)));
  field("error", error_words(event));
  field("detail", event.detail);
  field("trouble", event.trouble);
  if (is_incident_message(message.kind)) {
    // The timeline is in the text above; the fields say which incident and how long.
    const IncidentView& incident = *message.incident;
    field("incident", std::to_string(incident.id));
    field("start", format_iso8601_ms(incident.start_ms));
    if (incident.end_ms > 0) {
      field("end", format_iso8601_ms(incident.end_ms));
      field("duration", human_duration(incident.end_ms - incident.start_ms));
    } else {
      field("duration",
            human_duration(std::max<int64_t>(0, message.now_ms - incident.start_ms)) + " so far");
    }
  } else if (about_an_outage(message.kind)) {
    field("outage", std::to_string(event.outage_id));
    field("start", format_iso8601_ms(event.start_ms));
    if (message.kind == AlertMessage::Kind::closed) {
      field("end", format_iso8601_ms(event.end_ms));
      field("duration", human_duration(event.end_ms - event.start_ms));
    } else {
      field("duration",
            human_duration(std::max<int64_t>(0, message.now_ms - event.start_ms)) + " so far");
    }
  }
  if (message.kind == AlertMessage::Kind::flapping) {
    field("flapping", fmt::format("{} outages within {}", message.flapping_outages,
                                  human_duration(message.flapping_window_ms)));
  }
  field("text", event.text);
  field("at", format_iso8601_ms(message.now_ms));
  body += fmt::format("\n-- \nblip, alert \"{}\"\n", alert.name);
  return body;
}

}  // namespace

std::string mail_header_field(std::string_view name, std::string_view text) {
  const std::string value = one_line(text);
  std::string out = std::string(name) + ":";
  std::vector<std::string> pieces;
  if (plain_ascii(value)) {
    size_t start = 0;
    while (start < value.size()) {
      size_t space = value.find(' ', start);
      if (space == std::string::npos) space = value.size();
      pieces.push_back(" " + value.substr(start, space - start));
      start = space + 1;
    }
  } else {
    for (std::string& word : encoded_words(value, kLineLimit - out.size() - 1))
      pieces.push_back(" " + std::move(word));
  }
  append_folded(out, out.size(), pieces);
  return out + "\r\n";
}

std::string mail_address_field(std::string_view name, const std::vector<MailAddress>& addresses) {
  std::string out = std::string(name) + ":";
  std::vector<std::string> pieces;
  for (size_t i = 0; i < addresses.size(); ++i) {
    const size_t room = i == 0 ? kLineLimit - out.size() - 1 : kLineLimit - 1;
    pieces.push_back(" " + address_text(addresses[i], room) +
                     (i + 1 < addresses.size() ? "," : ""));
  }
  append_folded(out, out.size(), pieces);
  return out + "\r\n";
}

std::string quoted_printable(std::string_view text) {
  static constexpr size_t kMaxLine = 76;
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    const bool last = end == std::string_view::npos;
    if (last) end = text.size();
    if (last && start == end && start > 0) break;  // the text ended with its last "\n"
    const std::string_view line = text.substr(start, end - start);
    size_t length = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto byte = static_cast<unsigned char>(line[i]);
      const bool at_end = i + 1 == line.size();
      const bool literal =
          (byte >= 0x21 && byte <= 0x7e && byte != '=' && !(i == 0 && byte == '.')) ||
          ((byte == ' ' || byte == '\t') && !at_end);
      std::string token =
          literal ? std::string(1, line[i]) : std::string{'=', kHex[byte >> 4], kHex[byte & 15]};
      // Room for the token and, unless it ends the line, a soft break's "=".
      if (length + token.size() > (at_end ? kMaxLine : kMaxLine - 1)) {
        out += "=\r\n";
        length = 0;
        if (token == ".") token = "=2E";  // now first on its line
      }
      out += token;
      length += token.size();
    }
    out += "\r\n";
    if (last) break;
    start = end + 1;
  }
  return out;
}

std::optional<MailThread> mail_thread_of(const AlertMessage& message) {
  switch (message.kind) {
    case AlertMessage::Kind::opened:
    case AlertMessage::Kind::reminder:
    case AlertMessage::Kind::closed:
      return MailThread{fmt::format("outage-{}", message.event.outage_id), message.event.start_ms};
    case AlertMessage::Kind::incident_opened:
    case AlertMessage::Kind::incident_grew:
    case AlertMessage::Kind::incident_reminder:
    case AlertMessage::Kind::incident_resolved:
      return MailThread{fmt::format("incident-{}", message.incident.value().id),
                        message.incident->start_ms};
    case AlertMessage::Kind::flapping:
    case AlertMessage::Kind::pattern_found:
    case AlertMessage::Kind::job_forecast:
      return std::nullopt;
  }
  return std::nullopt;
}

MailIds mail_ids(const AlertMessage& message, std::string_view domain) {
  const std::string at = id_domain(domain);
  MailIds ids;
  if (auto thread = mail_thread_of(message)) {
    const std::string root = fmt::format("<{}.opened.{}@{}>", thread->key, thread->start_ms, at);
    switch (message.kind) {
      case AlertMessage::Kind::opened:
      case AlertMessage::Kind::incident_opened:
        ids.message_id = root;
        return ids;
      case AlertMessage::Kind::closed:
        ids.message_id = fmt::format("<{}.closed.{}@{}>", thread->key, message.event.end_ms, at);
        break;
      case AlertMessage::Kind::incident_resolved:
        ids.message_id =
            fmt::format("<{}.resolved.{}@{}>", thread->key, message.incident->end_ms, at);
        break;
      default:
        ids.message_id = fmt::format("<{}.{}.{}@{}>", thread->key, id_part(to_string(message.kind)),
                                     message.now_ms, at);
        break;
    }
    ids.in_reply_to = root;
    return ids;
  }
  std::string what = id_part(to_string(message.kind));
  if (message.kind == AlertMessage::Kind::flapping) {
    what += fmt::format(".outage-{}", message.event.outage_id);
  }
  ids.message_id =
      fmt::format("<{}.{}.{}@{}>", what, id_part(message.event.probe), message.now_ms, at);
  return ids;
}

std::string mail_date(int64_t wall_ms) {
  static constexpr std::array<std::string_view, 7> kDays{"Sun", "Mon", "Tue", "Wed",
                                                         "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths{
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t seconds = static_cast<std::time_t>(wall_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
                     kDays.at(static_cast<size_t>(utc.tm_wday)), utc.tm_mday,
                     kMonths.at(static_cast<size_t>(utc.tm_mon)), utc.tm_year + 1900, utc.tm_hour,
                     utc.tm_min, utc.tm_sec);
}

std::string build_mail(const AlertConfig& alert, const AlertMessage& message) {
  const MailSettings& mail = alert.mail;
  const std::string& from = mail.from.address;
  const size_t at = from.rfind('@');
  const MailIds ids = mail_ids(message, at == std::string::npos ? "" : from.substr(at + 1));
  std::string out;
  out += mail_header_field("Date", mail_date(message.now_ms));
  out += mail_address_field("From", {mail.from});
  out += mail_address_field("To", mail.to);
  out += mail_header_field("Subject", mail.subject_prefix + alert_summary(message));
  out += "Message-ID: " + ids.message_id + "\r\n";
  if (!ids.in_reply_to.empty()) {
    out += "In-Reply-To: " + ids.in_reply_to + "\r\n";
    out += "References: " + ids.in_reply_to + "\r\n";
  }
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: quoted-printable\r\n";
  // RFC 3834: no vacation auto-reply to an alert.
  out += "Auto-Submitted: auto-generated\r\n";
  out += mail_header_field("X-Blip-Event", to_string(message.kind));
  out += mail_header_field("X-Blip-Probe", message.event.probe);
  out += "\r\n";
  out += quoted_printable(mail_body(alert, message));
  return out;
}

}  // namespace blip
