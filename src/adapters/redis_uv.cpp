// The bridge between hiredis's async API and the libuv loop.
//
// hiredis lifetimes, as 0.14.1 implements them (async.c):
// - redisAsyncFree() frees at once unless REDIS_IN_CALLBACK is set (inside a
//   reply callback), when it is deferred until that callback returns.
// - Freeing runs every pending reply callback with a NULL reply, then the
//   adapter's cleanup, then the disconnect callback (only if connected).
// - The connect and disconnect callbacks run WITHOUT REDIS_IN_CALLBACK: freeing
//   the context from them frees it twice (and after a successful connect
//   callback hiredis goes on using the context).
// - After an error hiredis frees the context itself; the reply callbacks with
//   NULL it runs then must not touch it again.
// Hence `context->data` points back to the RedisConnection only while its
// owner wants callbacks; it is cleared before we free a context, and as soon as
// we learn that hiredis is freeing it.
#include "blip/adapters/redis_uv.hpp"

#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic pop

namespace blip {
namespace {

// libuv reports an error on a watched socket (POLLERR: an asynchronous connect
// that was refused, a reset) by stopping the watch and passing status
// UV_EBADF. The stock adapter ignores that status, so the connection would
// hang until its owner gives up and a refused or reset connection would look
// like a timeout. Let hiredis read and write instead: that surfaces the error.
void poll_with_errors(uv_poll_t* handle, int status, int events) {
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  redisLibuvPoll(handle, 0, events);
}

void watch(redisLibuvEvents* watched) {
  if (watched->events) {
    uv_poll_start(&watched->handle, watched->events, poll_with_errors);
  } else {
    uv_poll_stop(&watched->handle);
  }
}

void add_read(void* privdata) {
  auto* watched = static_cast<redisLibuvEvents*>(privdata);
  watched->events |= UV_READABLE;
  watch(watched);
}

void del_read(void* privdata) {
  auto* watched = static_cast<redisLibuvEvents*>(privdata);
  watched->events &= ~UV_READABLE;
  watch(watched);
}

void add_write(void* privdata) {
  auto* watched = static_cast<redisLibuvEvents*>(privdata);
  watched->events |= UV_WRITABLE;
  watch(watched);
}

void del_write(void* privdata) {
  auto* watched = static_cast<redisLibuvEvents*>(privdata);
  watched->events &= ~UV_WRITABLE;
  watch(watched);
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

RedisReply convert_redis_reply(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) {
        if (reply.element[i]) out.elements.push_back(convert_redis_reply(*reply.element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::nil;
      break;
  }
  return out;
}

namespace {

const redisReplyObjectFunctions* hiredis_reply_functions = nullptr;

// The count's type is int in hiredis 0.14, size_t in 1.x.
template <typename Count>
void* create_bounded_array(const redisReadTask* task, Count elements) {
  if (static_cast<long long>(elements) > kMaxRedisReplyArrayElements) return nullptr;
  return hiredis_reply_functions->createArray(task, elements);
}

}  // namespace

void bound_redis_reply_arrays(redisReader* reader) {
  if (reader == nullptr || reader->fn == nullptr) return;
  // Every reader starts with hiredis's own functions: keep them but for arrays.
  static redisReplyObjectFunctions bounded = [reader] {
    hiredis_reply_functions = reader->fn;
    redisReplyObjectFunctions functions = *reader->fn;
    functions.createArray = create_bounded_array;
    return functions;
  }();
  reader->fn = &bounded;
}

ErrorClass classify_redis_error_reply(std::string_view message) {
  if (!message.empty() && message.front() == '-') message.remove_prefix(1);
  const std::string lower = lowercase(message);
  // maxclients reached: the server took the connection only to say so and close it.
  if (lower.find("max number of clients reached") != std::string::npos) return ErrorClass::refused;
  // "ERR AUTH <password> called without any password configured", "ERR Client sent AUTH, but no
  // password is set", "ERR invalid password", "ERR wrong number of arguments for 'auth' command"
  // (a username sent to Redis 5), but not "ERR max number of clients reached" in reply to AUTH.
  if (starts_with(message, "NOAUTH") || starts_with(message, "WRONGPASS") ||
      starts_with(message, "NOPERM") || lower.find("invalid password") != std::string::npos ||
      (starts_with(message, "ERR") && lower.find("auth") != std::string::npos)) {
    return ErrorClass::auth;
  }
  return ErrorClass::query;
}

struct RedisConnection::PendingCommand {
  ReplyCallback on_reply;
};

RedisConnection::RedisConnection(uv_loop_t* loop, Resolver& resolver, int64_t lookup_limit_ms,
                                 RedisEndpoint endpoint, FailureCallback on_failure)
    : loop_(loop),
      resolver_(resolver),
      endpoint_(std::move(endpoint)),
      on_failure_(std::move(on_failure)),
      created_us_(mono_now_us()) {
  // The Resolver answers from the loop, never from inside this constructor.
  lookup_ = resolver_.resolve(
      endpoint_.host, lookup_limit_ms,
      [this](const std::string& address, const std::string& error) { resolved(address, error); });
}

RedisConnection::~RedisConnection() { close(); }

void RedisConnection::close() noexcept {
  if (lookup_) resolver_.cancel(std::exchange(lookup_, 0));
  if (redisAsyncContext* context = std::exchange(context_, nullptr)) {
    context->data = nullptr;  // pending callbacks now run with NULL replies and are dropped
    redisAsyncFree(context);  // deferred by hiredis when we are inside one of its reply callbacks
  }
  waiting_.clear();
  on_failure_ = nullptr;
  if (state_ != State::failed) state_ = State::closed;
}

bool RedisConnection::command(std::vector<std::string> argv, ReplyCallback on_reply) {
  switch (state_) {
    case State::resolving:
      waiting_.emplace_back(std::move(argv), std::move(on_reply));
      return true;
    case State::open:
      return send(argv, std::move(on_reply));
    default:
      return false;
  }
}

bool RedisConnection::send(const std::vector<std::string>& argv, ReplyCallback on_reply) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto pending = std::make_unique<PendingCommand>(PendingCommand{std::move(on_reply)});
  // hiredis formats (copies) the arguments at once; from here on it owns `pending` until on_reply.
  if (redisAsyncCommandArgv(context_, &RedisConnection::on_reply, pending.get(),
                            static_cast<int>(argv.size()), pointers.data(),
                            lengths.data()) != REDIS_OK) {
    return false;
  }
  static_cast<void>(pending.release());  // freed in on_reply
  return true;
}

void RedisConnection::resolved(const std::string& address, const std::string& error) {
  lookup_ = 0;
  resolved_us_ = mono_now_us();
  if (address.empty()) {
    state_ = State::failed;
    report({ErrorClass::dns, error});
    return;
  }
  connect_to(address);
}

void RedisConnection::connect_to(const std::string& address) {
  // A Unix socket's path, or a numeric address: hiredis's getaddrinfo does not block on it.
  redisAsyncContext* context = address.starts_with('/')
                                   ? redisAsyncConnectUnix(address.c_str())
                                   : redisAsyncConnect(address.c_str(), std::stoi(endpoint_.port));
  if (!context) {
    state_ = State::failed;
    report({ErrorClass::internal, "out of memory"});
    return;
  }
  bound_redis_reply_arrays(context->c.reader);
  if (context->err) {  // the socket could not even be created or connected
    RedisFailure failure = failure_of(*context);
    redisAsyncFree(context);
    state_ = State::failed;
    report(failure);
    return;
  }
  if (redisLibuvAttach(context, loop_) != REDIS_OK) {
    // The adapter installs its hooks before it can fail; free must not call its cleanup on NULL.
    context->ev.addRead = context->ev.delRead = context->ev.addWrite = context->ev.delWrite =
        nullptr;
    context->ev.cleanup = nullptr;
    redisAsyncFree(context);
    state_ = State::failed;
    report({ErrorClass::internal, "cannot watch the socket"});
    return;
  }
  context->ev.addRead = add_read;
  context->ev.delRead = del_read;
  context->ev.addWrite = add_write;
  context->ev.delWrite = del_write;
  context->data = this;
  context_ = context;
  state_ = State::open;
  // Setting the connect callback also starts watching for writability, which is how connect
  // completes.
  redisAsyncSetConnectCallback(context, &RedisConnection::on_connected);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::on_disconnected);
  if (!queue_handshake()) {
    fail({ErrorClass::internal, "hiredis refused a command"});
    return;
  }
  for (auto& [argv, on_reply] : std::exchange(waiting_, {})) {
    if (!send(argv, std::move(on_reply))) {
      fail({ErrorClass::internal, "hiredis refused a command"});
      return;
    }
  }
}

bool RedisConnection::queue_handshake() {
  // Pipelined ahead of the first command: when AUTH fails, fail() drops the
  // connection from AUTH's callback, before the commands behind it answer.
  bool queued = true;
  if (!endpoint_.password.empty() || !endpoint_.username.empty()) {
    std::vector<std::string> argv{"AUTH"};
    if (!endpoint_.username.empty()) argv.push_back(endpoint_.username);
    argv.push_back(endpoint_.password);
    queued = send(argv, [this](const RedisReply& reply) {
      if (reply.is_error())
        fail({classify_redis_error_reply(reply.text), "AUTH failed: " + reply.text});
    });
  }
  if (queued && endpoint_.db != 0) {
    queued = send({"SELECT", std::to_string(endpoint_.db)}, [this](const RedisReply& reply) {
      if (reply.is_error()) {
        fail({classify_redis_error_reply(reply.text),
              fmt::format("SELECT {} failed: {}", endpoint_.db, reply.text)});
      }
    });
  }
  return queued;
}

void RedisConnection::on_connected(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self) return;
  try {
    if (status == REDIS_OK) {
      self->connected_us_ = mono_now_us();
    } else {
      self->lost(self->failure_of(*context));  // hiredis frees the context when this returns
    }
  } catch (const std::exception& error) {
    log_error("redis: connect callback failed err={}", error.what());
  } catch (...) {
    log_error("redis: connect callback failed");
  }
}

void RedisConnection::on_disconnected(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self) return;
  try {
    // An idle connection that the server closed, or a failure with no command pending.
    self->lost(status == REDIS_OK ? RedisFailure{ErrorClass::reset, "connection closed"}
                                  : self->failure_of(*context));
  } catch (const std::exception& error) {
    log_error("redis: disconnect callback failed err={}", error.what());
  } catch (...) {
    log_error("redis: disconnect callback failed");
  }
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
  // Every command's callback runs exactly once (with NULL when the context is
  // freed), so this is where its PendingCommand is freed.
  std::unique_ptr<PendingCommand> pending(static_cast<PendingCommand*>(privdata));
  auto* self = static_cast<RedisConnection*>(context->data);
  if (!self) return;
  try {
    if (!reply) {
      self->lost(self->failure_of(*context));  // hiredis is freeing the context after an error
      return;
    }
    RedisReply converted = convert_redis_reply(*static_cast<const redisReply*>(reply));
    ReplyCallback on_reply = std::move(pending->on_reply);
    if (on_reply) on_reply(converted);  // may destroy `self`
  } catch (const std::exception& error) {
    log_error("redis: reply callback failed err={}", error.what());
  } catch (...) {
    log_error("redis: reply callback failed");
  }
}

void RedisConnection::lost(const RedisFailure& failure) {
  if (context_) {
    context_->data = nullptr;  // the callbacks still to come from this context are dropped
    context_ = nullptr;        // hiredis frees it, not us
  }
  state_ = State::failed;
  report(failure);
}

void RedisConnection::fail(const RedisFailure& failure) {
  if (redisAsyncContext* context = std::exchange(context_, nullptr)) {
    context->data = nullptr;
    redisAsyncFree(context);  // deferred by hiredis when inside one of its reply callbacks
  }
  state_ = State::failed;
  report(failure);
}

void RedisConnection::report(const RedisFailure& failure) {
  waiting_.clear();
  FailureCallback on_failure = std::move(on_failure_);
  on_failure_ = nullptr;
  if (!on_failure) return;
  RedisFailure shown = failure;
  if (!endpoint_.password.empty()) {
    for (size_t at = shown.message.find(endpoint_.password); at != std::string::npos;
         at = shown.message.find(endpoint_.password, at + 3)) {
      shown.message.replace(at, endpoint_.password.size(), "***");
    }
  }
  on_failure(*this, shown);  // may destroy this connection: nothing after it
}

RedisFailure RedisConnection::failure_of(const redisAsyncContext& context) const {
  const redisContext& c = context.c;
  std::string text = c.errstr;
  switch (c.err) {
    case REDIS_ERR_IO: {
      std::string lower = lowercase(text);
      if (lower.find("refused") != std::string::npos) return {ErrorClass::refused, text};
      // A Unix socket's file is gone while its server is down: nobody listens there.
      if (endpoint_.host.starts_with('/') && lower.find("no such file") != std::string::npos)
        return {ErrorClass::refused, text + " (" + endpoint_.host + ")"};
      if (lower.find("timed out") != std::string::npos) return {ErrorClass::timeout, text};
      if (lower.find("unreachable") != std::string::npos) return {ErrorClass::unreachable, text};
      return {ErrorClass::reset, text.empty() ? "connection lost" : text};
    }
    case REDIS_ERR_EOF:
      return {ErrorClass::reset, "connection closed by the server"};
    case REDIS_ERR_PROTOCOL:
      return {ErrorClass::protocol, "not a Redis reply: " + text};
    case REDIS_ERR_OOM:
      return {ErrorClass::internal, "out of memory"};
    case REDIS_ERR_OTHER:  // e.g. "-ERR max number of clients reached" sent unasked
      return {classify_redis_error_reply(text), text};
    default:
      return {ErrorClass::reset, "connection closed"};
  }
}

}  // namespace blip
