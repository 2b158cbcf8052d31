#pragma once
// blip's log: one line per event, "component: event key=value ...", on stderr.
//
// Every value a call site passes goes through log_value(): a plain word as it
// is, anything else in double quotes with JSON's escapes. So a value (a
// target's error text, an exception's message, a path) can never end a field,
// start another or break the line, and the JSON format reads the fields back
// from the text without ambiguity. Call sites use log_info() and friends,
// never spdlog's own functions (logging_test checks the sources).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace blip {

// `queued` (the daemon): lines go through a bounded queue to one writer thread,
// so no thread that logs ever waits for stderr; when the queue is full the
// oldest line is dropped and counted. `direct` (one-shot commands): each line is
// written before the call returns, so nothing is lost at exit.
enum class LogDelivery { direct, queued };

// Sets up the logger on stderr: `level` one of trace, debug, info, warn,
// error, off; `format` text ("2026-11-25T14:00:03.250Z warning outage: opened
// probe=web detail=\"no answer\" ...") or json (one object per line: time,
// level, component, event, each key=value as a field, and the whole message).
// Returns the problem with a bad value.
std::optional<std::string> configure_logging(const std::string& level, const std::string& format,
                                             LogDelivery delivery = LogDelivery::direct);

// At exit: gives queued lines up to `drain_within` to reach stderr, then drops
// the rest. Returns within about drain_within + 0.5 s even when stderr is a
// pipe nobody reads; a writer thread still inside write(2) then is left
// behind, never joined (the process ends around it). Later lines are dropped.
void stop_logging(std::chrono::milliseconds drain_within);

// Lines dropped since the start: overrun in the queue, or not writable to stderr.
uint64_t log_dropped_lines();

// `text` as one value of a log line: as it is when it is a plain word (printable
// ASCII without space, '"', '=' or '\'; or empty), else quoted like a JSON
// string, with line breaks, control and bidirectional characters escaped and
// invalid UTF-8 replaced by U+FFFD.
std::string log_value(std::string_view text);

// The JSON line (with its newline) for one message of the text format: time,
// level, component, event, the key=value fields in order, message.
std::string json_log_line(spdlog::level::level_enum level, int64_t time_ms,
                          std::string_view message);

namespace log_detail {

// A value already made safe by log_value().
struct SafeText {
  std::string text;
};

template <typename T>
using Plain = std::remove_cvref_t<T>;

// Numbers are printed as they are (their format spec kept); everything else is text.
template <typename T>
inline constexpr bool kPrintedAsIs =
    std::is_arithmetic_v<Plain<T>> && !std::is_same_v<Plain<T>, char>;

template <typename T>
using Wrapped = std::conditional_t<kPrintedAsIs<T>, Plain<T>, SafeText>;

template <typename T>
Wrapped<T> wrap(const T& value) {
  if constexpr (kPrintedAsIs<T>) {
    return value;
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return SafeText{log_value(std::string_view(value))};
  } else {
    return SafeText{log_value(fmt::format("{}", value))};
  }
}

}  // namespace log_detail

template <typename... Args>
using LogFormat = fmt::format_string<log_detail::Wrapped<Args>...>;

// The text of one log line's message, each argument through log_value().
template <typename... Args>
std::string log_message(LogFormat<Args...> format, const Args&... args) {
  std::tuple<log_detail::Wrapped<Args>...> wrapped(log_detail::wrap(args)...);
  return std::apply(
      [&](const auto&... values) {
        return fmt::vformat(fmt::string_view(format), fmt::make_format_args(values...));
      },
      wrapped);
}

namespace log_detail {
// A line that could not even be made (out of memory): counted with the dropped ones.
void count_unmade_line() noexcept;
}  // namespace log_detail

// Never throws: logging is no reason for a caller (often a callback from C) to fail.
template <typename... Args>
void log_at(spdlog::level::level_enum level, LogFormat<Args...> format,
            const Args&... args) noexcept {
  try {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (logger == nullptr || !logger->should_log(level)) return;
    const std::string message = log_message<Args...>(format, args...);
    logger->log(level, spdlog::string_view_t(message.data(), message.size()));
  } catch (...) {
    log_detail::count_unmade_line();
  }
}

template <typename... Args>
void log_debug(LogFormat<Args...> format, const Args&... args) noexcept {
  log_at<Args...>(spdlog::level::debug, format, args...);
}
template <typename... Args>
void log_info(LogFormat<Args...> format, const Args&... args) noexcept {
  log_at<Args...>(spdlog::level::info, format, args...);
}
template <typename... Args>
void log_warn(LogFormat<Args...> format, const Args&... args) noexcept {
  log_at<Args...>(spdlog::level::warn, format, args...);
}
template <typename... Args>
void log_error(LogFormat<Args...> format, const Args&... args) noexcept {
  log_at<Args...>(spdlog::level::err, format, args...);
}

}  // namespace blip

// A safe value takes no format spec: a width or precision would bypass the quoting.
template <>
struct fmt::formatter<blip::log_detail::SafeText> {
  constexpr auto parse(format_parse_context& context) {
    if (context.begin() != context.end() && *context.begin() != '}') {
      throw format_error("a logged text value takes no format spec");
    }
    return context.begin();
  }
  template <typename Context>
  auto format(const blip::log_detail::SafeText& value, Context& context) const {
    return std::copy(value.text.begin(), value.text.end(), context.out());
  }
};
