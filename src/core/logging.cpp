// The log: values quoted at the call site (log_value), lines written to stderr
// by a sink that can give up, and, for the daemon, spdlog's bounded async queue
// in front of it (overrun_oldest: a thread that logs never waits for stderr).
#include "blip/core/logging.hpp"

#include <limits.h>
#include <poll.h>
#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "blip/core/clock.hpp"
#include "blip/core/utf8.hpp"

namespace blip {
namespace {

// Lines waiting for the writer thread; about 0.4 KB each, allocated up front.
constexpr size_t kLogQueueLines = 2048;
// How long one wait for stderr lasts before the writer looks whether it was told to give up.
constexpr int kWritablePollMs = 100;
// Queued by stop_logging() after every other line, never written. No logged line can equal
// it: log_value() escapes control characters.
constexpr std::string_view kEndOfLog = "\x01end of log\x01";

// ---- values ---------------------------------------------------------------

// Characters that move or hide text on a terminal: C1 controls, line and
// paragraph separators, bidirectional marks, embeddings, overrides and isolates.
bool shown_escaped(uint32_t point) {
  return (point >= 0x80 && point <= 0x9f) || point == 0x200e || point == 0x200f ||
         point == 0x2028 || point == 0x2029 || (point >= 0x202a && point <= 0x202e) ||
         (point >= 0x2066 && point <= 0x2069);
}

bool plain_word(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
  });
}

// ---- messages back into fields ----------------------------------------------

struct ParsedMessage {
  std::string component;
  std::string event;
  std::vector<std::pair<std::string, std::string>> fields;
};

// Where the JSON string literal at the start of `text` ends (just past its
// closing quote), or npos.
size_t quoted_end(std::string_view text) {
  for (size_t at = 1; at < text.size(); ++at) {
    if (text[at] == '\\') {
      ++at;
    } else if (text[at] == '"') {
      return at + 1;
    }
  }
  return std::string_view::npos;
}

bool is_key(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

void skip_to_space(std::string_view& rest) {
  const size_t space = rest.find(' ');
  rest.remove_prefix(space == std::string_view::npos ? rest.size() : space);
}

// "outage: opened probe=web detail=\"no answer\"" -> component, event and fields.
// Only the format strings' literal text makes keys: every value went through
// log_value(), so a value is one plain word or one JSON string literal.
ParsedMessage parse_message(std::string_view message) {
  ParsedMessage out;
  const size_t colon = message.find(": ");
  if (colon == std::string_view::npos || colon == 0 || !plain_word(message.substr(0, colon)))
    return out;
  out.component = std::string(message.substr(0, colon));
  std::string_view rest = message.substr(colon + 2);
  bool first = true;
  while (true) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    if (rest.front() == '"') {  // a quoted value within the text
      const size_t end = quoted_end(rest);
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end);
      skip_to_space(rest);
      first = false;
      continue;
    }
    const size_t stop = rest.find_first_of(" =\"");
    if (stop != std::string_view::npos && rest[stop] == '=' && is_key(rest.substr(0, stop))) {
      std::string key(rest.substr(0, stop));
      rest.remove_prefix(stop + 1);
      std::string value;
      if (!rest.empty() && rest.front() == '"') {
        const size_t end = quoted_end(rest);
        if (end == std::string_view::npos) break;
        const auto decoded = nlohmann::json::parse(rest.substr(0, end), nullptr, false);
        if (!decoded.is_string()) break;
        value = decoded.get<std::string>();
        rest.remove_prefix(end);
      } else {
        const size_t space = std::min(rest.find(' '), rest.size());
        value = std::string(rest.substr(0, space));
        rest.remove_prefix(space);
      }
      skip_to_space(rest);
      out.fields.emplace_back(std::move(key), std::move(value));
    } else {
      const size_t space = std::min(rest.find(' '), rest.size());
      if (first) {
        const std::string_view word = rest.substr(0, space);
        const size_t last = word.find_last_not_of(",.;:");
        if (last != std::string_view::npos) out.event = std::string(word.substr(0, last + 1));
      }
      rest.remove_prefix(space);
    }
    first = false;
  }
  return out;
}

// ---- formatters and the sink -----------------------------------------------

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& dest) override {
    const auto since_epoch =
        std::chrono::duration_cast<std::chrono::milliseconds>(message.time.time_since_epoch());
    const std::string line =
        json_log_line(message.level, since_epoch.count(),
                      std::string_view(message.payload.data(), message.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

std::unique_ptr<spdlog::formatter> text_formatter() {
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v",
                                                     spdlog::pattern_time_type::utc);
}

// Writes whole lines to stderr (fd 2). It waits for stderr to take them, but
// in steps of kWritablePollMs, and only writes what the descriptor said it can
// take without blocking (at most PIPE_BUF bytes into a pipe that has room), so
// that abandon() makes it drop, within a step, the line it is on and every
// line after it: the writer thread can always be stopped.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  StderrSink(bool color, std::atomic<uint64_t>& unwritten) : color_(color), unwritten_(unwritten) {
    struct stat about {};
    socket_ = fstat(STDERR_FILENO, &about) == 0 && S_ISSOCK(about.st_mode);
  }
  void abandon() { abandoned_.store(true); }
  // Whether the sink has come to kEndOfLog: then it is done with every line queued before it.
  bool at_end() const { return at_end_.load(); }
  // The queue in front of this sink, whose overruns the "dropped" notice counts too.
  void set_queue(spdlog::details::thread_pool* queue) { queue_ = queue; }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    if (std::string_view(message.payload.data(), message.payload.size()) == kEndOfLog) {
      at_end_.store(true);
    } else if (abandoned_.load()) {
      unwritten_.fetch_add(1);
    } else {
      tell_what_was_dropped(message);
      if (!write_line(message)) unwritten_.fetch_add(1);
    }
  }
  void flush_() override {}

 private:
  // Once stderr takes lines again, one line says how many it missed.
  void tell_what_was_dropped(const spdlog::details::log_msg& message) {
    const uint64_t dropped = unwritten_.load() + (queue_ ? queue_->overrun_counter() : 0);
    if (dropped <= reported_dropped_) return;
    const std::string text = fmt::format(
        "log: dropped lines_total={} (stderr did not take them in time; blip_log_dropped_total "
        "counts them)",
        dropped);
    spdlog::details::log_msg notice(message.time, {}, message.logger_name, spdlog::level::warn,
                                    spdlog::string_view_t(text.data(), text.size()));
    if (write_line(notice)) reported_dropped_ = dropped;
  }

  bool write_line(const spdlog::details::log_msg& message) {
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    std::string_view rest(line.data(), line.size());
    if (color_ && message.color_range_end > message.color_range_start) {
      return write_all(rest.substr(0, message.color_range_start)) &&
             write_all(level_color(message.level)) &&
             write_all(rest.substr(message.color_range_start,
                                   message.color_range_end - message.color_range_start)) &&
             write_all("\033[m") && write_all(rest.substr(message.color_range_end));
    }
    return write_all(rest);
  }

  static std::string_view level_color(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace:
        return "\033[37m";
      case spdlog::level::debug:
        return "\033[36m";
      case spdlog::level::info:
        return "\033[32m";
      case spdlog::level::warn:
        return "\033[33m\033[1m";
      default:
        return "\033[31m\033[1m";
    }
  }

  bool write_all(std::string_view data) {
    while (!data.empty()) {
      if (abandoned_.load()) return false;
      pollfd writable{STDERR_FILENO, POLLOUT, 0};
      const int ready = poll(&writable, 1, kWritablePollMs);
      if (ready < 0 && errno != EINTR) return false;
      if (ready <= 0) continue;
      if ((writable.revents & (POLLERR | POLLNVAL)) != 0)
        return false;  // closed, or no reader left
      const size_t chunk = std::min<size_t>(data.size(), PIPE_BUF);
      const ssize_t written =
          socket_ ? send(STDERR_FILENO, data.data(), chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
                  : write(STDERR_FILENO, data.data(), chunk);
      if (written < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(written));
    }
    return true;
  }

  const bool color_;
  bool socket_ = false;
  std::atomic<uint64_t>& unwritten_;
  spdlog::details::thread_pool* queue_ = nullptr;
  uint64_t reported_dropped_ = 0;
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> at_end_{false};
};

// Never destroyed: after a stop that had to give up, the writer thread is still
// inside the sink, and its thread pool must not be joined by a destructor at exit.
struct LogState {
  std::mutex mutex;  // guards queue (log_dropped_lines on the feed's threads, stop_logging)
  std::shared_ptr<spdlog::details::thread_pool> queue;
  std::shared_ptr<spdlog::logger> queued_logger;
  std::shared_ptr<spdlog::details::thread_pool>
      abandoned_queue;  // its writer never returned from write(2)
  std::shared_ptr<StderrSink> sink;
  std::atomic<uint64_t> unwritten{0};  // lines the sink could not write, or the logger failed on
  uint64_t overrun_at_stop = 0;
};

LogState& log_state() {
  static LogState* state = new LogState;
  return *state;
}

}  // namespace

std::string log_value(std::string_view text) {
  if (plain_word(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (size_t at = 0; at < text.size();) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte < 0x80) {
      switch (byte) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (byte < 0x20 || byte == 0x7f) {
            out += fmt::format("\\u{:04x}", byte);
          } else {
            out += static_cast<char>(byte);
          }
      }
      ++at;
      continue;
    }
    const CodePoint point = next_code_point(text, at);
    if (!point.valid) {
      out += "\xef\xbf\xbd";  // U+FFFD for the byte that is no UTF-8
      ++at;
      continue;
    }
    const std::string_view sequence = text.substr(at, point.length);
    if (shown_escaped(point.value)) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(point.value));
    } else {
      out += sequence;
    }
    at += point.length;
  }
  out += '"';
  return out;
}

std::string json_log_line(spdlog::level::level_enum level, int64_t time_ms,
                          std::string_view message) {
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["time"] = format_iso8601_ms(time_ms);
  const auto level_name = spdlog::level::to_string_view(level);
  line["level"] = std::string(level_name.data(), level_name.size());
  ParsedMessage parsed = parse_message(message);
  if (!parsed.component.empty()) line["component"] = std::move(parsed.component);
  if (!parsed.event.empty()) line["event"] = std::move(parsed.event);
  for (auto& [key, value] : parsed.fields) {
    if (key == "time" || key == "level" || key == "component" || key == "message") continue;
    line[key] = std::move(value);
  }
  line["message"] = std::string(message);
  // Values are valid UTF-8 already (log_value); a literal that is not must not throw here.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::optional<std::string> configure_logging(const std::string& level, const std::string& format,
                                             LogDelivery delivery) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str answers "off" for anything it does not know.
  if (parsed == spdlog::level::off && level != "off") {
    return "--log-level: expected trace, debug, info, warn, error or off, got \"" + level + "\"";
  }
  if (format != "text" && format != "json")
    return "--log-format: expected text or json, got \"" + format + "\"";
  LogState& state = log_state();
  const bool color = format == "text" && isatty(STDERR_FILENO) == 1;
  auto sink = std::make_shared<StderrSink>(color, state.unwritten);
  if (format == "json") {
    sink->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    sink->set_formatter(text_formatter());
  }
  std::shared_ptr<spdlog::logger> logger;
  if (delivery == LogDelivery::queued) {
    auto queue = std::make_shared<spdlog::details::thread_pool>(kLogQueueLines, 1);
    sink->set_queue(queue.get());
    logger = std::make_shared<spdlog::async_logger>("blip", sink, queue,
                                                    spdlog::async_overflow_policy::overrun_oldest);
    state.queued_logger = logger;
    std::lock_guard lock(state.mutex);
    state.queue = std::move(queue);
  } else {
    logger = std::make_shared<spdlog::logger>("blip", sink);
  }
  state.sink = sink;
  // spdlog's own handler would print to stderr from the calling thread: count instead.
  logger->set_error_handler(
      [&unwritten = state.unwritten](const std::string&) { unwritten.fetch_add(1); });
  logger->set_level(parsed);
  spdlog::set_default_logger(std::move(logger));
  return std::nullopt;
}

void stop_logging(std::chrono::milliseconds drain_within) {
  LogState& state = log_state();
  std::shared_ptr<spdlog::details::thread_pool> queue;
  {
    std::lock_guard lock(state.mutex);
    queue = state.queue;
  }
  if (!queue) return;  // direct: every line is written already
  // From here a line is dropped at once; the queue only shrinks.
  auto silent = std::make_shared<spdlog::logger>("blip-stopped",
                                                 std::make_shared<spdlog::sinks::null_sink_mt>());
  silent->set_level(spdlog::level::off);
  spdlog::set_default_logger(std::move(silent));
  // The last line queued, behind every other: the sink has dealt with them all when it gets to it.
  const bool anything_queued = state.queued_logger->should_log(spdlog::level::critical);
  if (anything_queued) state.queued_logger->log(spdlog::level::critical, kEndOfLog);
  const auto drained = [&] { return !anything_queued || state.sink->at_end(); };
  const auto wait_for_drain = [&](std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!drained() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return drained();
  };
  wait_for_drain(drain_within);
  // What stderr has not taken by now is dropped: a step of the sink's poll, then each line at once.
  state.sink->abandon();
  const bool stopped = wait_for_drain(std::chrono::milliseconds(kWritablePollMs * 5));
  {
    std::lock_guard lock(state.mutex);
    state.overrun_at_stop = queue->overrun_counter();
    state.queue.reset();
  }
  // Only a writer that is out of the sink is joined (the pool's destructor joins it);
  // one still inside a write(2) keeps its pool, and the process ends around it.
  if (stopped) {
    state.sink->set_queue(nullptr);
    state.queued_logger.reset();
    queue.reset();
  } else {
    state.abandoned_queue = std::move(queue);
  }
}

namespace log_detail {
void count_unmade_line() noexcept { log_state().unwritten.fetch_add(1); }
}  // namespace log_detail

uint64_t log_dropped_lines() {
  LogState& state = log_state();
  std::lock_guard lock(state.mutex);
  const uint64_t overrun = state.queue ? state.queue->overrun_counter() : state.overrun_at_stop;
  return state.unwritten.load() + overrun;
}

}  // namespace blip
