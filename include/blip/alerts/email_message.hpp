#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blip/alerts/alert_payload.hpp"
#include "blip/config/config.hpp"

namespace blip {

// One header field, "Name: value\r\n", of unstructured text (a Subject, a probe's
// name). Control characters (CR and LF among them) become spaces and runs of
// spaces one, so no text can end the field or start another: the only line
// breaks are the encoder's own folds ("\r\n "), before 78 characters where a
// space allows. Text that is not printable ASCII, or that holds "=?", goes as
// RFC 2047 encoded-words ("=?UTF-8?B?…?="), split between UTF-8 characters.
std::string mail_header_field(std::string_view name, std::string_view text);

// A From or To field of `addresses` (at least one): "Name <addr>", the name as
// an atom, a quoted string or encoded-words; folded between addresses.
std::string mail_address_field(std::string_view name, const std::vector<MailAddress>& addresses);

// Quoted-printable (RFC 2045) of text whose lines end with "\n": every line out
// ends "\r\n" and is at most 76 characters; CR, other control bytes, "=", bytes
// over 0x7e, a space before a line's end and a "." that starts a line are =XX.
std::string quoted_printable(std::string_view text);

// The thread a message's mail belongs to: an outage's opened, reminder and
// closed mails share `key` ("outage-42") and `start_ms` (the outage's start);
// an incident's opened, grew, reminder and resolved mails share
// "incident-7" and the incident's start. Nullopt for a message that starts no
// thread and joins none (a pattern found, a forecast, blip's trouble, a
// flapping summary).
struct MailThread {
  std::string key;
  int64_t start_ms = 0;
};
std::optional<MailThread> mail_thread_of(const AlertMessage& message);

// The Message-ID of a message's mail, and the id it replies to. A thread's
// first mail (an opened outage) is "<outage-42.opened.<start_ms>@domain>", a
// function of the outage alone, so its later mails name it in In-Reply-To and
// References even after a restart; `in_reply_to` is empty for the first mail
// and for mails outside threads. `domain` is the `from` address's.
struct MailIds {
  std::string message_id;
  std::string in_reply_to;
};
MailIds mail_ids(const AlertMessage& message, std::string_view domain);

// "Mon, 07 Dec 2026 04:30:00 +0000" (RFC 5322's date-time, in UTC).
std::string mail_date(int64_t wall_ms);

// The whole message as it is uploaded over SMTP, CRLF line ends: Date, From,
// To, Subject (`subject_prefix` + alert_summary), Message-ID, In-Reply-To and
// References when it joins a thread, MIME-Version, Content-Type text/plain
// UTF-8, Content-Transfer-Encoding quoted-printable, Auto-Submitted, and
// X-Blip-Event/X-Blip-Probe; then the body: the summary, an incident's
// timeline, and the webhook's fields one a line (probe, type, tags, error,
// detail, start, end, duration, text, …).
std::string build_mail(const AlertConfig& alert, const AlertMessage& message);

}  // namespace blip
