#pragma once
#include <curl/curl.h>

#include <string>

namespace blip {

// One curl easy handle, cleaned up with its owner. curl_easy_init can fail: the
// handle is then null, and curl's calls on it return an error.
class CurlEasy {
 public:
  CurlEasy() : easy_(curl_easy_init()) {}
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;
  ~CurlEasy() { curl_easy_cleanup(easy_); }

  CURL* get() const { return easy_; }

 private:
  CURL* easy_;
};

// A curl_slist (header lines, CURLOPT_RESOLVE entries), freed with its owner. An
// easy handle's options point into it: keep it while the handle may use it.
class CurlList {
 public:
  CurlList() = default;
  CurlList(const CurlList&) = delete;
  CurlList& operator=(const CurlList&) = delete;
  ~CurlList() { curl_slist_free_all(head_); }

  // Out of memory, curl appends nothing and the list stays as it was.
  void append(const std::string& line) {
    if (curl_slist* longer = curl_slist_append(head_, line.c_str())) head_ = longer;
  }
  void clear() noexcept {
    curl_slist_free_all(head_);
    head_ = nullptr;
  }
  curl_slist* get() const { return head_; }  // null while empty

 private:
  curl_slist* head_ = nullptr;
};

}  // namespace blip
