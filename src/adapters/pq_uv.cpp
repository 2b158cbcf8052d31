#include "blip/adapters/pq_uv.hpp"

#include <utility>

#include "blip/core/logging.hpp"

namespace blip {

// A poll handle on the connection's socket; freed in its close callback, so
// the connection can be destroyed from inside one of its own callbacks.
struct PgConnection::SocketWatch {
  uv_poll_t poll{};
  int socket = -1;
  PgConnection* owner = nullptr;
};

namespace {

std::string one_line(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  return text;
}

}  // namespace

PgConnection::PgConnection(uv_loop_t* loop, const std::string& conninfo,
                           const std::string& password,
                           std::vector<std::pair<std::string, std::string>> options)
    : loop_(loop), conninfo_(conninfo), password_(password), options_(std::move(options)) {}

PgConnection::~PgConnection() {
  unwatch();
  if (connection_) PQfinish(connection_);
}

void PgConnection::watch(int events) {
  const int socket = PQsocket(connection_);
  if (socket < 0) return fail(one_line(PQerrorMessage(connection_)));
  // libpq may switch sockets while connecting (another address, SSL retry): re-read it every time.
  if (watch_ && watch_->socket != socket) unwatch();
  if (!watch_) {
    watch_ = new SocketWatch{{}, socket, this};
    if (uv_poll_init_socket(loop_, &watch_->poll, socket) != 0) {
      delete watch_;
      watch_ = nullptr;
      fail("cannot watch the connection's socket");
      return;
    }
    watch_->poll.data = watch_;
  }
  uv_poll_start(&watch_->poll, events, [](uv_poll_t* poll, int status, int ready) {
    auto* w = static_cast<SocketWatch*>(poll->data);
    if (w->owner) w->owner->on_ready(status, ready);
  });
}

void PgConnection::unwatch() {
  if (!watch_) return;
  watch_->owner = nullptr;
  uv_poll_stop(&watch_->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch_->poll),
           [](uv_handle_t* handle) { delete static_cast<SocketWatch*>(handle->data); });
  watch_ = nullptr;
}

void PgConnection::fail(const std::string& error) {
  unwatch();
  const Phase phase = std::exchange(phase_, Phase::idle);
  if (phase == Phase::connecting) {
    auto callback = std::move(on_connected_);
    callback(false, error);
  } else if (phase == Phase::querying) {
    auto callback = std::move(on_query_done_);
    PgQueryResult result;
    result.error = error;
    callback(std::move(result));
  }
}

void PgConnection::connect(Connected on_connected) {
  on_connected_ = std::move(on_connected);
  phase_ = Phase::connecting;
  std::vector<const char*> keywords{"dbname"};
  std::vector<const char*> values{conninfo_.c_str()};
  if (!password_.empty()) {
    keywords.push_back("password");
    values.push_back(password_.c_str());
  }
  for (const auto& [keyword, value] : options_) {
    keywords.push_back(keyword.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  connection_ = PQconnectStartParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (!connection_) return fail("out of memory");
  if (PQstatus(connection_) == CONNECTION_BAD) return fail(one_line(PQerrorMessage(connection_)));
  PQsetnonblocking(connection_, 1);
  PQsetNoticeProcessor(
      connection_, [](void*, const char*) {}, nullptr);  // NOTICEs are not ours to print
  // Until PQconnectPoll has run once, libpq waits for the socket to be writable.
  watch(UV_WRITABLE);
}

void PgConnection::advance_connect() {
  switch (PQconnectPoll(connection_)) {
    case PGRES_POLLING_READING:
      watch(UV_READABLE);
      break;
    case PGRES_POLLING_WRITING:
      watch(UV_WRITABLE);
      break;
    case PGRES_POLLING_OK: {
      unwatch();
      phase_ = Phase::idle;
      auto callback = std::move(on_connected_);
      callback(true, {});
      break;
    }
    default:
      fail(one_line(PQerrorMessage(connection_)));
      break;
  }
}

void PgConnection::query(const std::string& sql, const std::vector<std::string>& params,
                         QueryDone on_done) {
  on_query_done_ = std::move(on_done);
  phase_ = Phase::querying;
  first_result_.reset();
  std::vector<const char*> values;
  for (const auto& param : params) values.push_back(param.c_str());
  const int sent =
      params.empty() ? PQsendQuery(connection_, sql.c_str())
                     : PQsendQueryParams(connection_, sql.c_str(), static_cast<int>(params.size()),
                                         nullptr, values.data(), nullptr, nullptr, 0);
  if (!sent) return fail(one_line(PQerrorMessage(connection_)));
  advance_query(UV_WRITABLE);
}

void PgConnection::advance_query(int events) {
  if (events & UV_WRITABLE) {
    const int flushed = PQflush(connection_);
    if (flushed < 0) return fail(one_line(PQerrorMessage(connection_)));
    if (flushed == 1) return watch(UV_READABLE | UV_WRITABLE);  // more to send
  }
  if ((events & UV_READABLE) && !PQconsumeInput(connection_))
    return fail(one_line(PQerrorMessage(connection_)));
  while (!PQisBusy(connection_)) {
    PGresult* result = PQgetResult(connection_);
    if (!result) {
      // All results read: report the first (a multi-statement setup reports its first failure).
      unwatch();
      phase_ = Phase::idle;
      auto callback = std::move(on_query_done_);
      callback(first_result_.value_or(PgQueryResult{}));
      return;
    }
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
      // A COPY never ends by itself here; the owner drops the connection.
      PQclear(result);
      return fail("COPY is not supported as a probe query");
    }
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!first_result_ || (first_result_->ok && !ok)) {
      PgQueryResult collected;
      collected.ok = ok;
      if (!ok) {
        collected.error = one_line(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
        if (collected.error.empty()) collected.error = one_line(PQresultErrorMessage(result));
        const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        collected.sqlstate = state ? state : "";
      }
      for (int row = 0; row < PQntuples(result); ++row) {
        auto& values = collected.rows.emplace_back();
        for (int column = 0; column < PQnfields(result); ++column) {
          if (PQgetisnull(result, row, column)) {
            values.emplace_back(std::nullopt);
          } else {
            values.emplace_back(std::string(PQgetvalue(result, row, column),
                                            static_cast<size_t>(PQgetlength(result, row, column))));
          }
        }
      }
      first_result_ = std::move(collected);
    }
    PQclear(result);
  }
  watch(UV_READABLE);
}

std::string PgConnection::progress() const {
  if (phase_ == Phase::querying) return "waiting for the query's result";
  if (phase_ != Phase::connecting || !connection_) return {};
  switch (PQstatus(connection_)) {
    case CONNECTION_STARTED:
      return "TCP connection not established";
    case CONNECTION_MADE:
    case CONNECTION_SSL_STARTUP:
    case CONNECTION_AWAITING_RESPONSE:
      return "connected, no Postgres answer to the startup message";
    case CONNECTION_AUTH_OK:
    case CONNECTION_SETENV:
    case CONNECTION_CHECK_WRITABLE:
    case CONNECTION_CONSUME:
      return "authenticated, waiting for the server to be ready";
    default:
      return "connecting";
  }
}

void PgConnection::on_ready(int status, int events) {
  try {
    // On a socket error let libpq look for itself: its message says what happened.
    if (status < 0) events = UV_READABLE | UV_WRITABLE;
    if (phase_ == Phase::connecting) {
      advance_connect();
    } else if (phase_ == Phase::querying) {
      advance_query(events);
    } else {
      unwatch();  // nothing expected: the server spoke out of turn; the next query will see it
    }
  } catch (const std::exception& error) {
    log_error("postgres: callback failed err={}", error.what());
  }
}

}  // namespace blip
