#pragma once
#include <libpq-fe.h>
#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace blip {

// The first result of a query, or why there is none.
struct PgQueryResult {
  bool ok = false;
  std::string error;     // libpq's message, one line
  std::string sqlstate;  // when the server reported the error
  std::vector<std::vector<std::optional<std::string>>> rows;
};

// One asynchronous libpq connection driven by the libuv loop: libpq says
// whether it waits to read or to write, one uv_poll_t watches its socket.
// Nothing here blocks the loop and nothing here times out: the owner drops
// the connection (destroys it) when its deadline passes.
class PgConnection {
 public:
  using Connected = std::function<void(bool ok, const std::string& error)>;
  using QueryDone = std::function<void(PgQueryResult)>;

  // `conninfo` is a conninfo string or URI; `password` (may be empty)
  // overrides any in it; `options` (keyword, value) pairs override both.
  PgConnection(uv_loop_t* loop, const std::string& conninfo, const std::string& password,
               std::vector<std::pair<std::string, std::string>> options = {});
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Exactly one callback per call; none after destruction.
  void connect(Connected on_connected);
  void query(const std::string& sql, const std::vector<std::string>& params, QueryDone on_done);
  bool usable() const { return connection_ && PQstatus(connection_) == CONNECTION_OK; }
  bool querying() const { return phase_ == Phase::querying; }
  // Sends the running query's result to `on_done` instead (its first owner gave up on it).
  void redirect(QueryDone on_done) { on_query_done_ = std::move(on_done); }
  // Where a connection or query is waiting, in words: "connecting", "connected,
  // no answer to the startup message", "waiting for the query's result".
  std::string progress() const;

 private:
  enum class Phase { idle, connecting, querying };
  struct SocketWatch;

  void watch(int events);
  void unwatch();
  void on_ready(int status, int events);
  void advance_connect();
  void advance_query(int events);
  void fail(const std::string& error);

  uv_loop_t* loop_;
  std::string conninfo_;
  std::string password_;
  std::vector<std::pair<std::string, std::string>> options_;
  PGconn* connection_ = nullptr;
  SocketWatch* watch_ = nullptr;
  Phase phase_ = Phase::idle;
  Connected on_connected_;
  QueryDone on_query_done_;
  std::optional<PgQueryResult> first_result_;
};

}  // namespace blip
