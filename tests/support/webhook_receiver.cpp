#include "support/webhook_receiver.hpp"

#include <sstream>
#include <stdexcept>

namespace blip::test {
namespace {

// Records each POST as one JSON line: when it came (ms), its path and body.
constexpr const char* kReceiver = R"py(
import http.server, json, sys, time
log = open(sys.argv[2], "a", buffering=1)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8", "replace")
        log.write(json.dumps({"t": time.time() * 1000, "path": self.path, "body": body}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
)py";

}  // namespace

WebhookReceiver::WebhookReceiver(const TempDir& dir)
    : log_(dir.file("received.jsonl")), port_(free_port()) {
  dir.write("receiver.py", kReceiver);
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"python3", dir.file("receiver.py"), std::to_string(port_), log_});
  if (!wait_for_port(port_)) throw std::runtime_error("the webhook receiver did not start");
}

std::string WebhookReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<ReceivedPost> WebhookReceiver::received(const std::string& path) const {
  std::vector<ReceivedPost> out;
  std::istringstream lines(read_file(log_));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto entry = nlohmann::json::parse(line);
    if (!path.empty() && entry["path"] != path) continue;
    out.push_back({entry["t"].get<double>(), entry["path"].get<std::string>(),
                   nlohmann::json::parse(entry["body"].get<std::string>())});
  }
  return out;
}

}  // namespace blip::test
