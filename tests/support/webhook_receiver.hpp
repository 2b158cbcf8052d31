#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace blip::test {

// One POST a WebhookReceiver got: when (ms since the epoch), where, and its body as JSON.
struct ReceivedPost {
  double at_ms = 0;
  std::string path;
  nlohmann::json body;
};

// An HTTP server on 127.0.0.1 (Python's http.server, a process of its own)
// that answers every POST with 200 and records it, for alert tests.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(const TempDir& dir);
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  // Every POST so far, in arrival order; only those to `path` when one is given.
  std::vector<ReceivedPost> received(const std::string& path = "") const;

 private:
  std::string log_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace blip::test
