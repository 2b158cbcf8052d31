#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blip/adapters/resolver.hpp"
#include "blip/core/sample.hpp"

struct redisAsyncContext;
struct redisReply;
struct redisReader;

namespace blip {

// One reply as plain data, so code above the adapter never sees hiredis types.
struct RedisReply {
  enum class Type { string, array, integer, nil, status, error };
  Type type = Type::nil;
  std::string text;  // string, status and error replies
  long long integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::error; }
};

// hiredis's reply tree as plain data (nil elements of an array are dropped).
RedisReply convert_redis_reply(const redisReply& reply);

// hiredis 0.14 allocates an array reply's element pointers from the count the
// server sends, before any element arrives ("*36035902\r\n" is 288 MB). A
// reader bounded here fails a longer array as it fails an allocation, and the
// connection ends with an error. blip's longest array is Sidekiq's process set.
inline constexpr long long kMaxRedisReplyArrayElements = 100'000;
void bound_redis_reply_arrays(redisReader* reader);

// Where a connection goes and what it sends before any command.
struct RedisEndpoint {
  std::string host;  // a name (resolved with blip's Resolver), a numeric address or a socket's path
  std::string port;  // empty for a Unix socket
  std::string username;  // AUTH user pass when set, AUTH pass otherwise
  std::string password;  // no AUTH when both are empty
  int64_t db = 0;        // SELECT when not 0
};

// Why a connection ended. The message never holds the password.
struct RedisFailure {
  ErrorClass error = ErrorClass::internal;
  std::string message;
};

// auth for NOAUTH, WRONGPASS, NOPERM, "invalid password" and ERR replies about AUTH; query for any
// other.
ErrorClass classify_redis_error_reply(std::string_view message);

// One hiredis async connection driven by the libuv loop (hiredis's libuv
// adapter). It resolves the host with blip's Resolver (hiredis 0.14 would resolve
// names blocking), connects, pipelines AUTH/SELECT ahead of the first command,
// and runs commands. hiredis 0.14 has no timeouts: the owner abandons a
// connection that does not answer by destroying it.
//
// Contracts:
// - Callbacks run only from the loop, never from inside a call into this class.
// - A command's callback runs at most once, with its reply (error replies
//   included). It never runs after close() or destruction, nor once the
//   connection has failed: then on_failure runs instead, once.
// - The connection may be destroyed from inside any of its callbacks.
class RedisConnection {
 public:
  using ReplyCallback = std::function<void(const RedisReply&)>;
  using FailureCallback = std::function<void(RedisConnection&, const RedisFailure&)>;

  RedisConnection(uv_loop_t* loop, Resolver& resolver, int64_t lookup_limit_ms,
                  RedisEndpoint endpoint, FailureCallback on_failure);
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // Queues a command (sent once connected, after the handshake). False when the
  // connection is closed or failed, or hiredis refused it; `on_reply` is then dropped.
  bool command(std::vector<std::string> argv, ReplyCallback on_reply);
  // Neither failed nor closed (it may still be connecting).
  bool usable() const { return state_ == State::resolving || state_ == State::open; }
  bool resolving() const { return state_ == State::resolving; }
  // Drops the connection; commands in flight are abandoned without callbacks.
  void close() noexcept;

  // Phase timings of establishing the connection, in microseconds (0 until known).
  int64_t resolve_duration_us() const { return resolved_us_ ? resolved_us_ - created_us_ : 0; }
  int64_t connect_duration_us() const { return connected_us_ ? connected_us_ - resolved_us_ : 0; }
  // Monotonic time at which TCP connect completed (0 until then).
  int64_t connected_at_us() const { return connected_us_; }

 private:
  enum class State { resolving, open, failed, closed };
  struct PendingCommand;

  void resolved(const std::string& address, const std::string& error);
  static void on_connected(const redisAsyncContext* context, int status);
  static void on_disconnected(const redisAsyncContext* context, int status);
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);

  void connect_to(const std::string& address);
  bool queue_handshake();
  bool send(const std::vector<std::string>& argv, ReplyCallback on_reply);
  // The context is being freed by hiredis itself: forget it, report.
  void lost(const RedisFailure& failure);
  // Frees the context ourselves (hiredis defers this while inside one of its callbacks), then
  // reports.
  void fail(const RedisFailure& failure);
  void report(const RedisFailure& failure);
  RedisFailure failure_of(const redisAsyncContext& context) const;

  uv_loop_t* loop_;
  Resolver& resolver_;
  RedisEndpoint endpoint_;
  FailureCallback on_failure_;
  State state_ = State::resolving;
  Resolver::Ticket lookup_ = 0;           // while resolving
  redisAsyncContext* context_ = nullptr;  // while open
  // Commands queued before the context exists.
  std::vector<std::pair<std::vector<std::string>, ReplyCallback>> waiting_;
  int64_t created_us_ = 0;
  int64_t resolved_us_ = 0;
  int64_t connected_us_ = 0;
};

}  // namespace blip
