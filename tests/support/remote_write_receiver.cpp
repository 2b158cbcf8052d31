#include "support/remote_write_receiver.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "blip/remote/remote_write.hpp"

namespace blip::test {

namespace {

// A body larger than any blip request (5,000 samples make well under 1 MiB): refused, not kept.
constexpr size_t kMaxBody = 64u << 20;

std::string series_key(const Series& series) {
  std::string key = series.metric + "{";
  for (size_t i = 0; i < series.labels.size(); ++i) {
    key += (i ? "," : "") + series.labels[i].first + "=\"" + series.labels[i].second + "\"";
  }
  return key + "}";
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

MHD_Result answer(MHD_Connection* connection, unsigned status, const std::string& text) {
  MHD_Response* response = MHD_create_response_from_buffer(
      text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
  const MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

}  // namespace

struct RemoteWriteReceiver::Request {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool too_large = false;
  bool hung = false;  // held in `hang` and resumed since
};

struct ReceiverCallbacks {
  static MHD_Result header(void* headers, MHD_ValueKind, const char* key, const char* value) {
    (*static_cast<std::map<std::string, std::string>*>(headers))[lower(key)] = value ? value : "";
    return MHD_YES;
  }

  static MHD_Result request(void* cls, MHD_Connection* connection, const char* url,
                            const char* method, const char*, const char* upload_data,
                            size_t* upload_size, void** state) {
    auto* self = static_cast<RemoteWriteReceiver*>(cls);
    auto* request = static_cast<RemoteWriteReceiver::Request*>(*state);
    if (!request) {
      request = new RemoteWriteReceiver::Request{method, url, {}, {}, false, false};
      MHD_get_connection_values(connection, MHD_HEADER_KIND, &ReceiverCallbacks::header,
                                &request->headers);
      *state = request;
      return MHD_YES;
    }
    if (*upload_size > 0) {
      if (request->body.size() + *upload_size > kMaxBody) {
        request->too_large = true;
      } else {
        request->body.append(upload_data, *upload_size);
      }
      *upload_size = 0;
      return MHD_YES;
    }
    if (request->hung) {
      {
        std::lock_guard lock(self->mutex_);
        ++self->answered_[503];
      }
      return answer(connection, 503, "no answer in time\n");
    }
    return self->finish(connection, *request) ? MHD_YES : MHD_NO;
  }

  static void completed(void*, MHD_Connection*, void** state, MHD_RequestTerminationCode) {
    delete static_cast<RemoteWriteReceiver::Request*>(*state);
    *state = nullptr;
  }
};

RemoteWriteReceiver::RemoteWriteReceiver(Mode mode, Keep keep) : mode_(mode), keep_(keep) {
  listen();  // even when starting down: that chooses the port
  if (mode == Mode::down) {
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
  }
}

RemoteWriteReceiver::~RemoteWriteReceiver() { set_mode(Mode::down); }

std::string RemoteWriteReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void RemoteWriteReceiver::listen() {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port_));
  MHD_Daemon* daemon = nullptr;
  // The port was ours a moment ago; a client's ephemeral port may hold it for a while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!daemon && std::chrono::steady_clock::now() < deadline) {
    daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0,
                              nullptr, nullptr, &ReceiverCallbacks::request, this,
                              MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_NOTIFY_COMPLETED,
                              &ReceiverCallbacks::completed, nullptr, MHD_OPTION_END);
    if (!daemon) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!daemon) {
    throw std::runtime_error("remote-write receiver: cannot listen on 127.0.0.1:" +
                             std::to_string(port_));
  }
  if (port_ == 0) port_ = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
  std::lock_guard lock(mutex_);
  daemon_ = daemon;
}

void RemoteWriteReceiver::resume_hung_locked() {
  for (MHD_Connection* connection : hung_) MHD_resume_connection(connection);
  hung_.clear();
}

void RemoteWriteReceiver::set_mode(Mode mode) {
  std::lock_guard control(control_);
  MHD_Daemon* stopping = nullptr;
  Mode previous;
  {
    // Held while resuming: the daemon's thread suspends under it too, so none is missed.
    std::lock_guard lock(mutex_);
    previous = mode_;
    mode_ = mode;
    if (mode != Mode::hang) resume_hung_locked();
    if (mode == Mode::down) stopping = std::exchange(daemon_, nullptr);
  }
  // Outside the lock: the daemon's thread may be waiting for it.
  if (stopping) MHD_stop_daemon(stopping);
  if (previous == Mode::down && mode != Mode::down) listen();
}

RemoteWriteReceiver::Mode RemoteWriteReceiver::mode() const {
  std::lock_guard lock(mutex_);
  return mode_;
}

bool RemoteWriteReceiver::finish(MHD_Connection* connection, Request& request) {
  std::string problem;
  std::vector<Series> decoded;
  const auto header_is = [&](const std::string& name, const std::string& expected) {
    auto found = request.headers.find(name);
    if (found != request.headers.end() && found->second == expected) return true;
    if (problem.empty()) {
      problem = name + ": " + (found == request.headers.end() ? "missing" : found->second) +
                " (expected " + expected + ")";
    }
    return false;
  };
  if (request.method != "POST" || request.path != "/api/v1/write") {
    problem = request.method + " " + request.path + " (expected POST /api/v1/write)";
  }
  header_is("content-encoding", "snappy");
  header_is("content-type", "application/x-protobuf");
  header_is("x-prometheus-remote-write-version", "0.1.0");
  if (request.too_large) problem = "a body over " + std::to_string(kMaxBody) + " bytes";
  if (problem.empty()) {
    try {
      decoded = decode_write_request(request.body);
    } catch (const std::exception& error) {
      problem = std::string("the body: ") + error.what();
    }
  }
  std::unique_lock lock(mutex_);
  if (!problem.empty()) {
    problems_.push_back(problem);
    ++answered_[400];
    lock.unlock();
    return answer(connection, 400, problem + "\n") == MHD_YES;
  }
  last_headers_ = request.headers;
  switch (mode_) {
    case Mode::ok:
      record_locked(decoded);
      ++answered_[204];
      lock.unlock();
      return answer(connection, 204, "") == MHD_YES;
    case Mode::bad_request:
      ++answered_[400];
      lock.unlock();
      return answer(connection, 400, "refused (the test's receiver answers 400)\n") == MHD_YES;
    case Mode::too_many_requests:
      ++answered_[429];
      lock.unlock();
      return answer(connection, 429, "slow down\n") == MHD_YES;
    case Mode::hang:
      // Resumed (and answered 503) when the mode changes; suspended under the lock set_mode
      // resumes under, so none is left behind.
      request.hung = true;
      ++hung_total_;
      hung_.push_back(connection);
      MHD_suspend_connection(connection);
      return true;
    case Mode::down:
      return false;  // going down: cut the connection
  }
  return false;
}

void RemoteWriteReceiver::record_locked(const std::vector<Series>& series) {
  const size_t request = acknowledged_++;
  for (const Series& one : series) {
    const std::string key = series_key(one);
    counts_[key] += one.points.size();
    points_ += one.points.size();
    if (keep_ == Keep::counts) continue;
    std::vector<ReceivedPoint>& points = series_[key];
    for (const SeriesPoint& point : one.points) points.push_back({point.ms, point.value, request});
  }
}

std::map<std::string, std::vector<ReceivedPoint>> RemoteWriteReceiver::series(
    const std::string& metric) const {
  std::lock_guard lock(mutex_);
  if (metric.empty()) return series_;
  std::map<std::string, std::vector<ReceivedPoint>> out;
  for (const auto& [key, points] : series_) {
    if (key.compare(0, metric.size() + 1, metric + "{") == 0) out.emplace(key, points);
  }
  return out;
}

std::map<std::string, uint64_t> RemoteWriteReceiver::point_counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

uint64_t RemoteWriteReceiver::points() const {
  std::lock_guard lock(mutex_);
  return points_;
}

size_t RemoteWriteReceiver::requests(unsigned status) const {
  std::lock_guard lock(mutex_);
  auto found = answered_.find(status);
  return found == answered_.end() ? 0 : found->second;
}

size_t RemoteWriteReceiver::hung_requests() const {
  std::lock_guard lock(mutex_);
  return hung_total_;
}

std::vector<std::string> RemoteWriteReceiver::problems() const {
  std::lock_guard lock(mutex_);
  return problems_;
}

std::map<std::string, std::string> RemoteWriteReceiver::last_headers() const {
  std::lock_guard lock(mutex_);
  return last_headers_;
}

std::string to_string(RemoteWriteReceiver::Mode mode) {
  switch (mode) {
    case RemoteWriteReceiver::Mode::ok:
      return "ok";
    case RemoteWriteReceiver::Mode::down:
      return "down";
    case RemoteWriteReceiver::Mode::bad_request:
      return "bad_request";
    case RemoteWriteReceiver::Mode::too_many_requests:
      return "too_many_requests";
    case RemoteWriteReceiver::Mode::hang:
      return "hang";
  }
  return "?";
}

}  // namespace blip::test
