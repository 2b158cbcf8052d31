#pragma once
#include <curl/curl.h>
#include <sys/epoll.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "blip/core/loop.hpp"

namespace blip {

// Runs `on_readable` on the loop while `fd` is readable (level-triggered).
class ReadableWatch : public OwnedHandle<uv_poll_t> {
 public:
  ReadableWatch() = default;
  ReadableWatch(uv_loop_t* loop, int fd, std::function<void()> on_readable);
};

// Drives one curl multi handle from the libuv loop through curl's socket API:
// curl says which sockets to watch and when to wake it. The sockets are
// watched in an epoll set of our own, which the loop watches as one file: a
// transfer costs two epoll_ctl calls (libuv's uv_poll_t, one per socket, made
// nine system calls of it, each a few microseconds on a virtual machine).
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
  // What curl asked for one socket number.
  struct Slot {
    uint32_t events = 0;   // EPOLLIN/EPOLLOUT, while `watched`
    bool watched = false;  // curl watches it now
  };
  static int on_socket(CURL* easy, curl_socket_t socket, int what, void* self, void* watch);
  static int on_timeout(CURLM* multi, long timeout_ms, void* self);
  int watch(curl_socket_t socket, int what);
  void unwatch(curl_socket_t socket);
  void on_ready();
  void hand_over(epoll_event* events, int count);
  void drive(curl_socket_t socket, int flags);
  void dispatch_finished();

  CURLM* multi_;
  Timer timer_;
  int epoll_fd_;
  ReadableWatch ready_;
  std::vector<Slot> slots_;  // by socket number
  // The events being handed to curl: a socket curl stops watching meanwhile is
  // taken out of them (its number may come back as another socket).
  epoll_event* batch_ = nullptr;
  int batch_size_ = 0;
  std::unordered_map<CURL*, Completion> transfers_;
};

}  // namespace blip
