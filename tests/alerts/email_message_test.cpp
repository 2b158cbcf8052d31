// The e-mail alert's message: no header injection from any text (a probe's
// name, a target's detail, the subject prefix), RFC 2047 encoded-words and
// folding that decode back to the text, a quoted-printable body, and
// Message-IDs that thread an outage's opened, reminder and closed mails.
#include "blip/alerts/email_message.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "blip/alerts/alert_payload.hpp"
#include "support/alerts.hpp"
#include "support/smtp_receiver.hpp"

namespace blip {
namespace {

using test::alert_to;
using test::closed_event;
using test::opened_event;
using test::quoted_printable_decode;

const std::string kHostile = "\r\nBcc: x@example.org";

AlertConfig mail_alert() {
  AlertConfig alert = alert_to("mail", AlertConfig::Kind::email, "smtp://127.0.0.1:2525");
  alert.mail.from = {"blip at Example", "blip@status.example.org"};
  alert.mail.to = {{"", "ops@example.org"}, {"Zoë on call", "oncall@example.org"}};
  return alert;
}

std::vector<std::string> split_crlf(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find("\r\n", start)) != std::string::npos; start = end + 2)
    lines.push_back(text.substr(start, end - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// The header section's fields, each unfolded (RFC 5322 2.2.3: CRLF before WSP removed).
std::vector<std::pair<std::string, std::string>> header_fields(const std::string& message) {
  const size_t end = message.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos);
  std::vector<std::pair<std::string, std::string>> fields;
  for (const std::string& line : split_crlf(message.substr(0, end))) {
    EXPECT_EQ(line.find_first_of("\r\n"), std::string::npos) << "a bare CR or LF: " << line;
    EXPECT_LE(line.size(), 998u);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      EXPECT_FALSE(fields.empty());
      EXPECT_NE(line.find_first_not_of(" \t"), std::string::npos) << "a whitespace-only fold";
      fields.back().second += line;
      continue;
    }
    const size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    fields.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return fields;
}

std::string base64_decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    bits = (bits << 6) | static_cast<uint32_t>(kAlphabet.find(c));
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

// An unfolded unstructured value as a reader shows it: encoded-words decoded,
// the whitespace between two of them dropped (RFC 2047 6.2).
std::string decode_words(const std::string& value) {
  static const std::regex kWord(R"(=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=)");
  std::string out;
  std::string pending_space;
  bool after_word = false;
  size_t at = 0;
  for (std::sregex_iterator it(value.begin(), value.end(), kWord), end; it != end; ++it) {
    const std::string between = value.substr(at, static_cast<size_t>(it->position()) - at);
    const bool only_space = between.find_first_not_of(" \t") == std::string::npos;
    if (!(after_word && only_space)) out += between;
    out += base64_decode((*it)[1]);
    after_word = true;
    at = static_cast<size_t>(it->position() + it->length());
  }
  out += value.substr(at);
  // The field's own space after the colon.
  const size_t first = out.find_first_not_of(' ');
  return first == std::string::npos ? "" : out.substr(first);
}

std::string field(const std::vector<std::pair<std::string, std::string>>& fields,
                  const std::string& name) {
  for (const auto& [key, value] : fields) {
    if (key == name) return value;
  }
  return "(none)";
}

TEST(EmailMessage, RawLineBreaksInNameDetailOrSubjectNeverMakeAHeader) {
  AlertConfig alert = mail_alert();
  alert.mail.subject_prefix = "[blip]" + kHostile + " ";
  AlertEvent opened = opened_event("web" + kHostile, 42, 1'700'000'000'000);
  opened.detail = "boom" + kHostile;
  opened.text = "phase" + kHostile;
  for (const AlertMessage& message :
       {AlertMessage{AlertMessage::Kind::opened, opened, opened.at_ms},
        AlertMessage{AlertMessage::Kind::closed, closed_event(opened, 31'000), opened.at_ms},
        AlertMessage{AlertMessage::Kind::reminder, opened, opened.at_ms + 60'000}}) {
    SCOPED_TRACE(to_string(message.kind));
    const std::string mail = build_mail(alert, message);
    const auto fields = header_fields(mail);
    std::vector<std::string> names;
    for (const auto& [name, value] : fields) names.push_back(name);
    std::vector<std::string> expected{
        "Date",           "From",         "To",           "Subject",
        "Message-ID",     "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
        "Auto-Submitted", "X-Blip-Event", "X-Blip-Probe"};
    if (message.kind != AlertMessage::Kind::opened)
      expected.insert(expected.begin() + 5, {"In-Reply-To", "References"});
    EXPECT_EQ(names, expected) << mail;
    for (const auto& [name, value] : fields) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      EXPECT_NE(lower, "bcc");
    }
    // The hostile text is still there, on the field's one line, as words.
    const std::string subject = decode_words(field(fields, "Subject"));
    EXPECT_NE(subject.find("[blip] Bcc: x@example.org web Bcc: x@example.org"), std::string::npos)
        << subject;
    EXPECT_EQ(decode_words(field(fields, "X-Blip-Probe")), "web Bcc: x@example.org");
    // The body carries it too, but a body line cannot become a header.
    const std::string body = quoted_printable_decode(mail.substr(mail.find("\r\n\r\n") + 4));
    EXPECT_NE(body.find("probe:    web\n          Bcc: x@example.org\n"), std::string::npos)
        << body;
    EXPECT_EQ(mail.substr(mail.find("\r\n\r\n") + 4).find("\r\nBcc:"), std::string::npos);
  }
  // The encoder alone, given raw text in every shape.
  for (const std::string& text : std::vector<std::string>{
           kHostile, "x" + kHostile, "é" + kHostile, std::string(200, 'a') + kHostile + "é",
           "\n\n\r\r", "=?UTF-8?B?DQpCY2M6IHhAZXhhbXBsZS5vcmc=?="}) {
    const std::string header = mail_header_field("Subject", text);
    ASSERT_GE(header.size(), 2u);
    EXPECT_EQ(header.substr(header.size() - 2), "\r\n");
    const auto fields = header_fields(header + "\r\n");
    ASSERT_EQ(fields.size(), 1u) << header;
    EXPECT_EQ(fields[0].first, "Subject");
    EXPECT_EQ(decode_words(fields[0].second + " ").find('\n'), std::string::npos);
  }
}

TEST(EmailMessage, EncodedWordsAndFoldsDecodeBackToTheText) {
  const std::string ascii =
      "web-health is down: timeout (no answer within 1s); 3rd outage at about +00:20:00 past the "
      "hour (every 1h), and a few more words to pass two lines of seventy-eight";
  std::string header = mail_header_field("Subject", ascii);
  for (const std::string& line : split_crlf(header)) EXPECT_LE(line.size(), 78u) << line;
  EXPECT_EQ(header.find("=?"), std::string::npos) << "plain ASCII stays readable";
  EXPECT_EQ(decode_words(header_fields(header + "\r\n")[0].second), ascii);

  const std::string utf8 =
      "3 outages of café-Zoë in the last 1h, 31–58 s each — ünïcödé 日本語 text that goes on "
      "and on past one encoded word";
  header = mail_header_field("Subject", utf8);
  for (const std::string& line : split_crlf(header)) EXPECT_LE(line.size(), 78u) << line;
  static const std::regex kWord(R"(=\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=)");
  for (std::sregex_iterator it(header.begin(), header.end(), kWord), end; it != end; ++it) {
    EXPECT_LE(it->length(), 75) << it->str();
    // Whole characters: each word's text is valid UTF-8 on its own (no cut continuation).
    const std::string text = base64_decode(it->str().substr(10, it->str().size() - 12));
    ASSERT_FALSE(text.empty());
    EXPECT_NE(static_cast<unsigned char>(text[0]) & 0xC0, 0x80) << it->str();
  }
  EXPECT_EQ(decode_words(header_fields(header + "\r\n")[0].second), utf8);

  // Addresses: a bare one, a quoted name, an encoded name.
  header = mail_address_field("To", {{"", "ops@example.org"},
                                     {"Ops, on call", "oncall@example.org"},
                                     {"Zoë", "zoe@example.org"},
                                     {"Ops", "team@example.org"}});
  EXPECT_EQ(header,
            "To: ops@example.org, \"Ops, on call\" <oncall@example.org>,\r\n "
            "=?UTF-8?B?Wm/Dqw==?= <zoe@example.org>, Ops <team@example.org>\r\n");
}

TEST(EmailMessage, QuotedPrintableBodyKeepsLinesShortAndDecodesBack) {
  const std::string text = "web-health is back after 31s\n\n.starts with a dot\n" +
                           std::string(200, 'x') + "=é\ntrailing space \nlast\n";
  const std::string encoded = quoted_printable(text);
  for (const std::string& line : split_crlf(encoded)) {
    EXPECT_LE(line.size(), 76u) << line;
    EXPECT_NE(line.front(), '.') << line;
    for (char c : line) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << line;
  }
  EXPECT_NE(encoded.find("=2Estarts with a dot"), std::string::npos) << encoded;
  EXPECT_NE(encoded.find("trailing space=20\r\n"), std::string::npos) << encoded;
  std::string expected = text;
  EXPECT_EQ(quoted_printable_decode(encoded), expected);
}

TEST(EmailMessage, AnOutagesMailsThreadOnTheOpenedMailsId) {
  const AlertEvent opened = opened_event("web-health", 42, 1'700'000'000'000);
  const AlertMessage open{AlertMessage::Kind::opened, opened, opened.at_ms};
  const AlertMessage reminder{AlertMessage::Kind::reminder, opened, opened.at_ms + 600'000};
  const AlertMessage closed{AlertMessage::Kind::closed, closed_event(opened, 31'000),
                            opened.start_ms + 31'000};
  const MailIds first = mail_ids(open, "status.example.org");
  EXPECT_EQ(first.message_id, "<outage-42.opened.1700000000000@status.example.org>");
  EXPECT_EQ(first.in_reply_to, "");
  const MailIds later = mail_ids(reminder, "status.example.org");
  EXPECT_EQ(later.message_id, "<outage-42.outage_reminder.1700000600500@status.example.org>");
  EXPECT_EQ(later.in_reply_to, first.message_id);
  const MailIds last = mail_ids(closed, "status.example.org");
  EXPECT_EQ(last.message_id, "<outage-42.closed.1700000031000@status.example.org>");
  EXPECT_EQ(last.in_reply_to, first.message_id);
  EXPECT_EQ(mail_ids(open, "").message_id, "<outage-42.opened.1700000000000@blip>");
  ASSERT_TRUE(mail_thread_of(closed));
  EXPECT_EQ(mail_thread_of(closed)->key, "outage-42");

  // Outside threads: unique per kind, probe and time.
  AlertEvent finding;
  finding.kind = AlertEvent::Kind::pattern_found;
  finding.probe = "web";
  const AlertMessage pattern{AlertMessage::Kind::pattern_found, finding, 1'700'000'000'000};
  EXPECT_FALSE(mail_thread_of(pattern));
  EXPECT_EQ(mail_ids(pattern, "example.org").message_id,
            "<pattern_found.web.1700000000000@example.org>");
  EXPECT_EQ(mail_ids(pattern, "example.org").in_reply_to, "");

  const std::string mail = build_mail(mail_alert(), closed);
  const auto fields = header_fields(mail);
  EXPECT_EQ(field(fields, "In-Reply-To"), " <outage-42.opened.1700000000000@status.example.org>");
  EXPECT_EQ(field(fields, "References"), " <outage-42.opened.1700000000000@status.example.org>");
  EXPECT_EQ(field(fields, "Date"), " Tue, 14 Nov 2023 22:13:51 +0000");
  EXPECT_EQ(field(fields, "From"), " blip at Example <blip@status.example.org>");
  EXPECT_EQ(decode_words(field(fields, "Subject")), "web-health is back after 31s");
  const std::string body = quoted_printable_decode(mail.substr(mail.find("\r\n\r\n") + 4));
  for (const char* line :
       {"web-health is back after 31s\n\n", "probe:    web-health\n", "type:     http\n",
        "error:    timeout\n", "detail:   no answer within 1s\n",
        "start:    2023-11-14T22:13:20.000Z\n", "end:      2023-11-14T22:13:51.000Z\n",
        "duration: 31s\n", "outage:   42\n"}) {
    EXPECT_NE(body.find(line), std::string::npos) << line << "\n" << body;
  }
}

// group = "incident": an incident's opened, grew and resolved mails thread on the opened one.
TEST(EmailMessage, AnIncidentsMailsThreadOnItsOpenedMail) {
  AlertEvent root = opened_event("db-write", 12, 1'700'000'000'000);
  root.incident_id = 7;
  IncidentView incident;
  incident.id = 7;
  incident.start_ms = root.start_ms;
  incident.components = {{"db-write", "postgres", ErrorClass::timeout, "", root.start_ms, 0}};
  AlertMessage opened{AlertMessage::Kind::incident_opened, root, root.start_ms + 2000};
  opened.incident = incident;
  AlertMessage grew = opened;
  grew.kind = AlertMessage::Kind::incident_grew;
  grew.now_ms += 30'000;
  AlertMessage resolved = opened;
  resolved.kind = AlertMessage::Kind::incident_resolved;
  resolved.incident->end_ms = root.start_ms + 60'000;
  const std::string first = "<incident-7.opened.1700000000000@status.example.org>";
  EXPECT_EQ(mail_ids(opened, "status.example.org").message_id, first);
  EXPECT_EQ(mail_ids(opened, "status.example.org").in_reply_to, "");
  EXPECT_EQ(mail_ids(grew, "status.example.org").in_reply_to, first);
  EXPECT_EQ(mail_ids(resolved, "status.example.org").in_reply_to, first);
  EXPECT_EQ(mail_ids(resolved, "status.example.org").message_id,
            "<incident-7.resolved.1700000060000@status.example.org>");
  EXPECT_NE(mail_ids(grew, "status.example.org").message_id, first);
}

TEST(EmailMessage, TheRequestCarriesTheEnvelopeAndLogsShowOnlySchemeHostAndPort) {
  AlertConfig alert = mail_alert();
  alert.mail.username = "blip";
  alert.mail.password = "s3cret";
  const AlertEvent opened = opened_event("web-health", 7, 1'700'000'000'000);
  const AlertRequest request =
      build_alert_request(alert, {AlertMessage::Kind::opened, opened, opened.at_ms});
  ASSERT_TRUE(request.mail);
  EXPECT_EQ(request.mail->from, "blip@status.example.org");
  EXPECT_EQ(request.mail->recipients,
            (std::vector<std::string>{"ops@example.org", "oncall@example.org"}));
  EXPECT_EQ(request.mail->username, "blip");
  EXPECT_TRUE(request.headers.empty());
  EXPECT_EQ(request.body.rfind("Date: ", 0), 0u);
  EXPECT_EQ(request.body.find("s3cret"), std::string::npos);

  EXPECT_EQ(alert_url_for_logs(alert), "smtp://127.0.0.1:2525");
  alert.url = "smtps://mail.example.org";
  EXPECT_EQ(alert_url_for_logs(alert), "smtps://mail.example.org:465");
  alert.url = "smtp://mail.example.org/helo.example.org";
  EXPECT_EQ(alert_url_for_logs(alert), "smtp://mail.example.org:25");
}

}  // namespace
}  // namespace blip
