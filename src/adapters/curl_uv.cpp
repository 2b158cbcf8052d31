#include "blip/adapters/curl_uv.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "blip/core/logging.hpp"

namespace blip {

ReadableWatch::ReadableWatch(uv_loop_t* loop, int fd, std::function<void()> on_readable) {
  int rc = open(std::move(on_readable), [&](uv_poll_t* handle) {
    int init_rc = uv_poll_init(loop, handle, fd);
    if (init_rc != 0) return init_rc;
    return uv_poll_start(handle, UV_READABLE, [](uv_poll_t* h, int, int) { invoke(h); });
  });
  if (rc != 0) throw std::runtime_error(std::string("uv_poll_init failed: ") + uv_strerror(rc));
}

CurlMultiUv::CurlMultiUv(uv_loop_t* loop)
    : multi_(curl_multi_init()), epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  try {
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    if (epoll_fd_ < 0)
      throw std::runtime_error(std::string("epoll_create1 failed: ") + std::strerror(errno));
    timer_ = Timer(loop, [this] { drive(CURL_SOCKET_TIMEOUT, 0); });
    ready_ = ReadableWatch(loop, epoll_fd_, [this] { on_ready(); });
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    if (multi_) curl_multi_cleanup(multi_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    throw;
  }
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMultiUv::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMultiUv::on_timeout);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMultiUv::~CurlMultiUv() {
  for (auto& [easy, completion] : transfers_) curl_multi_remove_handle(multi_, easy);
  // Cleanup may still call on_socket to forget sockets.
  curl_multi_cleanup(multi_);
  ready_.close();  // before the set's descriptor goes
  ::close(epoll_fd_);
}

void CurlMultiUv::add(CURL* easy, Completion on_complete) {
  transfers_.emplace(easy, std::move(on_complete));
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    auto node = transfers_.extract(easy);
    node.mapped()(CURLE_FAILED_INIT);
  }
}

void CurlMultiUv::remove(CURL* easy) noexcept {
  if (transfers_.erase(easy) > 0) curl_multi_remove_handle(multi_, easy);
}

int CurlMultiUv::on_socket(CURL*, curl_socket_t socket, int what, void* self_ptr, void*) {
  auto* self = static_cast<CurlMultiUv*>(self_ptr);
  if (what == CURL_POLL_REMOVE) {
    self->unwatch(socket);
    return 0;
  }
  return self->watch(socket, what);
}

int CurlMultiUv::watch(curl_socket_t socket, int what) {
  if (socket < 0) return -1;
  if (static_cast<size_t>(socket) >= slots_.size()) slots_.resize(static_cast<size_t>(socket) + 1);
  Slot& slot = slots_[static_cast<size_t>(socket)];
  uint32_t events = 0;
  if (what & CURL_POLL_IN) events |= EPOLLIN;
  if (what & CURL_POLL_OUT) events |= EPOLLOUT;
  if (slot.watched && slot.events == events) return 0;
  epoll_event event{};
  event.events = events;
  event.data.fd = socket;
  // A socket number curl stopped watching is most often a new socket now (the
  // old one's close took it out of the set): add first, and change what is
  // there when the old socket is still open.
  int op = slot.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(epoll_fd_, op, socket, &event) != 0) {
    op = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ? EPOLL_CTL_ADD : -1;
    if (op < 0 || epoll_ctl(epoll_fd_, op, socket, &event) != 0) {
      log_warn("curl: cannot watch socket fd={} err={}", socket, std::strerror(errno));
      return -1;  // curl fails this transfer
    }
  }
  slot = {events, true};
  return 0;
}

// No epoll_ctl here: curl closes most sockets it stops watching, which takes
// them out of the set. One it keeps open (a connection kept for reuse) stays
// in the set until it shows an event, and leaves then. blip never shares a
// socket with another process (no fork), so a closed socket leaves for good.
void CurlMultiUv::unwatch(curl_socket_t socket) {
  if (socket < 0 || static_cast<size_t>(socket) >= slots_.size()) return;
  slots_[static_cast<size_t>(socket)].watched = false;
  for (int i = 0; i < batch_size_; ++i) {
    if (batch_[i].data.fd == socket) batch_[i].data.fd = -1;
  }
}

void CurlMultiUv::on_ready() {
  // Up to 1,024 events a wake-up, as libuv takes from its own set: at thousands
  // of attempts a second, answers must not wait behind the next round of timers.
  constexpr int kRounds = 16;
  std::array<epoll_event, 64> events{};
  for (int round = 0; round < kRounds; ++round) {
    const int count = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 0);
    if (count <= 0) return;
    hand_over(events.data(), count);
    if (count < static_cast<int>(events.size())) return;
  }
}

void CurlMultiUv::hand_over(epoll_event* events, int count) {
  batch_ = events;
  batch_size_ = count;
  for (int i = 0; i < count; ++i) {
    const int socket = events[i].data.fd;
    if (socket < 0) continue;  // curl stopped watching it while this batch was handed over
    Slot& slot = slots_[static_cast<size_t>(socket)];
    const uint32_t ready = events[i].events;
    if (!slot.watched) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, socket, nullptr);  // kept open by curl, not watched
      continue;
    }
    int flags = 0;
    if (ready & EPOLLERR) {
      // As libuv's uv_poll_t did: an error is reported alone and the watch stops.
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, socket, nullptr);
      slot = {};
      flags = CURL_CSELECT_ERR;
    } else {
      // A hang-up is reported as whatever curl waits for (it reads or writes and learns).
      const uint32_t as = ready & EPOLLHUP ? slot.events : ready;
      if (as & EPOLLIN) flags |= CURL_CSELECT_IN;
      if (as & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    }
    drive(socket, flags);
  }
  batch_ = nullptr;
  batch_size_ = 0;
}

int CurlMultiUv::on_timeout(CURLM*, long timeout_ms, void* self_ptr) {
  auto* self = static_cast<CurlMultiUv*>(self_ptr);
  if (timeout_ms < 0) {
    self->timer_.stop();
  } else {
    // 0 means "as soon as possible", but not from inside this callback: the
    // libuv timer fires on the next loop iteration.
    self->timer_.start(static_cast<uint64_t>(timeout_ms));
  }
  return 0;
}

void CurlMultiUv::drive(curl_socket_t socket, int flags) {
  int running = 0;
  curl_multi_socket_action(multi_, socket, flags, &running);
  dispatch_finished();
}

void CurlMultiUv::dispatch_finished() {
  int pending = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &pending)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    CURLcode result = message->data.result;
    curl_multi_remove_handle(multi_, easy);
    auto node = transfers_.extract(easy);
    if (node.empty()) continue;
    try {
      node.mapped()(result);
    } catch (const std::exception& error) {
      log_error("curl: completion failed err={}", error.what());
    }
  }
}

}  // namespace blip
