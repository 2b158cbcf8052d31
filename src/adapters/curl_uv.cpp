#include "blip/adapters/curl_uv.hpp"

#include <stdexcept>

#include "blip/core/logging.hpp"

namespace blip {

// One uv_poll_t per socket curl asks us to watch; freed in its close callback.
struct CurlMultiUv::SocketWatch {
  uv_poll_t poll{};
  curl_socket_t socket;
  CurlMultiUv* owner;
};

CurlMultiUv::CurlMultiUv(uv_loop_t* loop)
    : loop_(loop),
      multi_(curl_multi_init()),
      timer_(loop, [this] { drive(CURL_SOCKET_TIMEOUT, 0); }) {
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMultiUv::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMultiUv::on_timeout);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMultiUv::~CurlMultiUv() {
  for (auto& [easy, completion] : transfers_) curl_multi_remove_handle(multi_, easy);
  // Cleanup may still call on_socket to forget sockets, which closes their polls.
  curl_multi_cleanup(multi_);
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

int CurlMultiUv::on_socket(CURL*, curl_socket_t socket, int what, void* self_ptr, void* watch_ptr) {
  auto* self = static_cast<CurlMultiUv*>(self_ptr);
  auto* watch = static_cast<SocketWatch*>(watch_ptr);
  if (what == CURL_POLL_REMOVE) {
    if (watch) {
      curl_multi_assign(self->multi_, socket, nullptr);
      uv_poll_stop(&watch->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll),
               [](uv_handle_t* handle) { delete static_cast<SocketWatch*>(handle->data); });
    }
    return 0;
  }
  if (!watch) {
    watch = new SocketWatch{{}, socket, self};
    if (uv_poll_init_socket(self->loop_, &watch->poll, socket) != 0) {
      delete watch;
      return -1;  // curl fails this transfer
    }
    watch->poll.data = watch;
    curl_multi_assign(self->multi_, socket, watch);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&watch->poll, events, [](uv_poll_t* poll, int status, int ready) {
    auto* w = static_cast<SocketWatch*>(poll->data);
    w->owner->on_poll(w->socket, status, ready);
  });
  return 0;
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

void CurlMultiUv::on_poll(curl_socket_t socket, int status, int events) {
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  drive(socket, flags);
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
