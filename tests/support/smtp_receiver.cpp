#include "support/smtp_receiver.hpp"

#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace blip::test {
namespace {

// Records each message as one JSON line: when it came (ms), the envelope, the
// login and the message. Run by Debian's own python3, where python3-aiosmtpd is.
constexpr const char* kReceiver = R"py(
import json, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, messages, username, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
log = open(messages, "a", buffering=1)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == username
          and auth_data.password.decode() == password)
    print("auth", mechanism, "ok" if ok else "refused", flush=True)
    # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting).
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if session.authenticated and session.auth_data else ""
        log.write(json.dumps({"t": time.time() * 1000, "mail_from": envelope.mail_from,
                              "rcpt_tos": envelope.rcpt_tos, "login": login,
                              "data": envelope.original_content.decode("utf-8", "replace")}) + "\n")
        return "250 OK"

auth = dict(auth_required=True, auth_require_tls=False, authenticator=authenticator) if username else {}
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **auth)
controller.start()
print("listening", port, flush=True)
while True:
    time.sleep(3600)
)py";

std::string unfold(const std::string& value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value.compare(i, 2, "\r\n") == 0) {
      ++i;
      continue;
    }
    out += value[i];
  }
  return out;
}

}  // namespace

std::string ReceivedMail::header(const std::string& name) const {
  const size_t end = data.find("\r\n\r\n");
  const std::string head = "\r\n" + data.substr(0, end);
  const std::string key = "\r\n" + name + ":";
  const size_t at = head.find(key);
  if (at == std::string::npos) return "";
  size_t stop = at + key.size();
  while (true) {
    stop = head.find("\r\n", stop);
    if (stop == std::string::npos || stop + 2 >= head.size() ||
        (head[stop + 2] != ' ' && head[stop + 2] != '\t'))
      break;
    stop += 2;
  }
  std::string value = unfold(head.substr(at + key.size(), stop - at - key.size()));
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  return value;
}

std::string quoted_printable_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '=' && text.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else if (text[i] == '=' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (text.compare(i, 2, "\r\n") == 0) {
      out += '\n';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string ReceivedMail::body() const {
  const size_t start = data.find("\r\n\r\n");
  return start == std::string::npos ? "" : quoted_printable_decode(data.substr(start + 4));
}

SmtpReceiver::SmtpReceiver(const TempDir& dir, const std::string& username,
                           const std::string& password)
    : messages_(dir.file("mail.jsonl")),
      log_(dir.file("smtp-receiver.log")),
      errors_(dir.file("smtp-receiver.err")),
      port_(free_port()) {
  dir.write("smtp_receiver.py", kReceiver);
  dir.write("mail.jsonl", "");
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/python3", dir.file("smtp_receiver.py"),
                               std::to_string(port_), messages_, username, password},
      log_, errors_);
  if (!wait_for_port(port_)) throw std::runtime_error("the SMTP receiver did not start: " + log());
}

std::string SmtpReceiver::url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }

std::string SmtpReceiver::log() const { return read_file(log_) + read_file(errors_); }

std::vector<ReceivedMail> SmtpReceiver::received() const {
  std::vector<ReceivedMail> out;
  std::istringstream lines(read_file(messages_));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_discarded()) continue;  // a line still being written
    out.push_back({entry["t"].get<double>(), entry["mail_from"].get<std::string>(),
                   entry["rcpt_tos"].get<std::vector<std::string>>(),
                   entry["login"].get<std::string>(), entry["data"].get<std::string>()});
  }
  return out;
}

}  // namespace blip::test
