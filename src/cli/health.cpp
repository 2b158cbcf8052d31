// `blip health`: asks a running blip's /healthz, so a container's
// HEALTHCHECK needs no curl binary.
#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/feed/feed_server.hpp"

namespace blip {

int run_health(const HealthOptions& options, std::ostream& out, std::ostream& err) {
  std::string problem;
  auto address = parse_listen_address(options.listen, &problem);
  if (!address) {
    err << "--listen: " << problem << '\n';
    return kExitUsage;
  }
  // A daemon listening on every address is asked on loopback.
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  const std::string url = fmt::format("http://{}:{}/healthz", host, options.listen.substr(options.listen.rfind(':') + 1));

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  std::string body;
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
    auto* text = static_cast<std::string*>(sink);
    if (text->size() < 4096) text->append(data, size * count);
    return size * count;
  });
  const CURLcode result = curl_easy_perform(easy.get());
  if (result != CURLE_OK) {
    err << fmt::format("blip health: {}: {}\n", url, curl_easy_strerror(result));
    return kExitDown;
  }
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  out << body;
  if (!body.empty() && body.back() != '\n') out << '\n';
  return status == 200 ? kExitOk : kExitDown;
}

}  // namespace blip
