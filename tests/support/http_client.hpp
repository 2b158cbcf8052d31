#pragma once
#include <map>
#include <string>
#include <vector>

namespace blip::test {

struct HttpResponse {
  long status = 0;  // 0 when no answer came
  std::string error;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const;
};

// One request with libcurl, on a fresh connection; `headers` as "Name: value".
HttpResponse http_request(const std::string& url, const std::string& method = "GET",
                          const std::vector<std::string>& headers = {}, long timeout_ms = 5000);

}  // namespace blip::test
