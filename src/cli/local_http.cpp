#include "blip/cli/local_http.hpp"

#include <fmt/format.h>

#include <ostream>

#include "blip/adapters/curl_easy.hpp"
#include "blip/feed/feed_server.hpp"

namespace blip {

std::string feed_base_url(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  return fmt::format("http://{}:{}", host, listen.substr(colon + 1));
}

std::optional<std::string> private_face_base(const std::string& url, const std::string& listen,
                                             std::ostream& err) {
  std::string base = url;
  if (base.empty()) {
    std::string problem;
    if (!parse_listen_address(listen, &problem)) {
      err << "--listen: " << problem << '\n';
      return std::nullopt;
    }
    base = feed_base_url(listen);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

HttpAnswer http_request(const std::string& url, long timeout_ms, const std::string& post_body,
                        const std::vector<std::string>& headers) {
  CurlEasy easy;
  HttpAnswer answer;
  curl_slist* header_list = nullptr;
  for (const std::string& header : headers)
    header_list = curl_slist_append(header_list, header.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  if (!post_body.empty()) {
    curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, post_body.data());
    curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(post_body.size()));
  }
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &answer.body);
  curl_easy_setopt(
      easy.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
        auto* text = static_cast<std::string*>(sink);
        if (text->size() < 4096) text->append(data, size * count);
        return size * count;
      });
  answer.result = curl_easy_perform(easy.get());
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  curl_slist_free_all(header_list);
  return answer;
}

}  // namespace blip
