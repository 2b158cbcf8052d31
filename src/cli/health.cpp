// `blip health`: asks a running blip's /healthz, so a container's
// HEALTHCHECK needs no curl binary.
#include <fmt/format.h>

#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/local_http.hpp"
#include "blip/feed/feed_server.hpp"

namespace blip {

int run_health(const HealthOptions& options, std::ostream& out, std::ostream& err) {
  std::string problem;
  auto address = parse_listen_address(options.listen, &problem);
  if (!address) {
    err << "--listen: " << problem << '\n';
    return kExitUsage;
  }
  const std::string url = feed_base_url(options.listen) + "/healthz";
  const HttpAnswer answer = http_request(url, 3000);
  if (answer.result != CURLE_OK) {
    err << fmt::format("blip health: {}: {}\n", url, curl_easy_strerror(answer.result));
    return kExitDown;
  }
  const std::string& body = answer.body;
  out << body;
  if (!body.empty() && body.back() != '\n') out << '\n';
  return answer.status == 200 ? kExitOk : kExitDown;
}

}  // namespace blip
