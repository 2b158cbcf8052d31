#include "support/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "support/transcript.hpp"

namespace blip::test {

std::string HttpResponse::header(const std::string& name) const {
  auto found = headers.find(name);
  return found == headers.end() ? "" : found->second;
}

HttpResponse http_request(const std::string& url, const std::string& method,
                          const std::vector<std::string>& headers, long timeout_ms) {
  HttpResponse response;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  curl_slist* list = nullptr;
  for (const std::string& header : headers) list = curl_slist_append(list, header.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, list);
  if (method == "HEAD") {
    curl_easy_setopt(easy.get(), CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(easy.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(
      easy.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
        static_cast<std::string*>(sink)->append(data, size * count);
        return size * count;
      });
  curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(
      easy.get(), CURLOPT_HEADERFUNCTION, +[](char* data, size_t size, size_t count, void* sink) {
        std::string line(data, size * count);
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          std::transform(name.begin(), name.end(), name.begin(),
                         [](unsigned char c) { return std::tolower(c); });
          std::string value = line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
          (*static_cast<std::map<std::string, std::string>*>(sink))[name] = value;
        }
        return size * count;
      });
  const CURLcode result = curl_easy_perform(easy.get());
  curl_slist_free_all(list);
  if (result != CURLE_OK) {
    response.error = curl_easy_strerror(result);
    return response;
  }
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &response.status);
  // The response only: a ping's URL carries its token, the request is the test's own.
  std::string seen = std::to_string(response.status) + "\n";
  for (const auto& [name, value] : response.headers) seen += name + ": " + value + "\n";
  keep_transcript("http response", seen + response.body);
  return response;
}

}  // namespace blip::test
