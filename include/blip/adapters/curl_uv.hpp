#pragma once
#include <curl/curl.h>
#include <uv.h>

#include <functional>
#include <unordered_map>

#include "blip/core/loop.hpp"

namespace blip {

// Drives one curl multi handle from the libuv loop through curl's socket API:
// curl says which sockets to watch and when to wake it, libuv watches them.
class CurlMultiUv {
 public:
  using Completion = std::function<void(CURLcode)>;

  explicit CurlMultiUv(uv_loop_t* loop);
  CurlMultiUv(const CurlMultiUv&) = delete;
  CurlMultiUv& operator=(const CurlMultiUv&) = delete;
  // Every transfer must have completed or been removed first.
  ~CurlMultiUv();

  // Starts a transfer; `on_complete` runs once it finishes, outside any curl
  // callback, after the easy handle has left the multi handle (the caller
  // still owns and frees it).
  void add(CURL* easy, Completion on_complete);
  // Abandons a transfer without calling its completion.
  void remove(CURL* easy) noexcept;

 private:
  struct SocketWatch;
  static int on_socket(CURL* easy, curl_socket_t socket, int what, void* self, void* watch);
  static int on_timeout(CURLM* multi, long timeout_ms, void* self);
  void on_poll(curl_socket_t socket, int status, int events);
  void drive(curl_socket_t socket, int flags);
  void dispatch_finished();

  uv_loop_t* loop_;
  CURLM* multi_;
  Timer timer_;
  std::unordered_map<CURL*, Completion> transfers_;
};

}  // namespace blip
