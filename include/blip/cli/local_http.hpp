#pragma once
#include <curl/curl.h>

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace blip {

// The base URL of a running blip's listener ("http://127.0.0.1:9185") for
// its --listen address; one listening on every address is asked on loopback.
std::string feed_base_url(const std::string& listen);

// The private face to ask: `url` when given (without a trailing slash), else feed_base_url of
// `listen`; nullopt when `listen` is not an address (said on `err`).
std::optional<std::string> private_face_base(const std::string& url, const std::string& listen,
                                             std::ostream& err);

struct HttpAnswer {
  CURLcode result = CURLE_OK;
  long status = 0;
  std::string body;  // the first 4 KiB
};
// One blocking request for the command line's clients (`health`, `exec`): no
// proxy, no signals, at most `timeout_ms`. A non-empty `post_body` makes it a POST;
// `headers` are "Name: value" lines sent with it.
HttpAnswer http_request(const std::string& url, long timeout_ms, const std::string& post_body = {},
                        const std::vector<std::string>& headers = {});

}  // namespace blip
