#pragma once
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// A quoted-printable body decoded: soft breaks joined, =XX bytes, "\n" line ends.
std::string quoted_printable_decode(const std::string& text);

// One message an SmtpReceiver accepted: when (ms since the epoch), its
// envelope, the login it was sent under (empty without AUTH) and the message
// as it came, CRLF line ends and all.
struct ReceivedMail {
  double at_ms = 0;
  std::string mail_from;
  std::vector<std::string> recipients;
  std::string login;
  std::string data;
  // A header field's value, unfolded and without the space after the colon;
  // empty when the message has none.
  std::string header(const std::string& name) const;
  // The body, quoted-printable decoded, "\n" line ends.
  std::string body() const;
};

// An SMTP server on 127.0.0.1 (Debian's python3-aiosmtpd, a process of its
// own) that accepts every message and records it. With a username, AUTH
// (PLAIN or LOGIN, offered without TLS: auth_require_tls=False) is required and
// only that username and password pass.
class SmtpReceiver {
 public:
  explicit SmtpReceiver(const TempDir& dir, const std::string& username = "",
                        const std::string& password = "");
  int port() const { return port_; }
  std::string url() const;  // smtp://127.0.0.1:<port>
  // Every message so far, in arrival order.
  std::vector<ReceivedMail> received() const;
  // The receiver's own log: failed logins and the like.
  std::string log() const;

 private:
  std::string messages_;
  std::string log_;
  std::string errors_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace blip::test
