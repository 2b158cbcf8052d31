#include "blip/cli/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "blip/core/clock.hpp"

namespace blip {
namespace {

// "outage: opened probe=web detail=\"no answer\"" -> component, event and fields.
nlohmann::json structured(std::string_view message) {
  nlohmann::json out = nlohmann::json::object();
  const size_t colon = message.find(": ");
  if (colon == std::string_view::npos || message.substr(0, colon).find(' ') != std::string_view::npos) return out;
  out["component"] = std::string(message.substr(0, colon));
  std::string_view rest = message.substr(colon + 2);
  bool first = true;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    std::string_view token = rest.substr(0, space);
    const size_t equals = token.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      if (first) out["event"] = std::string(token.substr(0, token.find_last_not_of(",.;") + 1));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      first = false;
      continue;
    }
    first = false;
    const std::string key(token.substr(0, equals));
    std::string_view value = rest.substr(equals + 1);
    size_t consumed;
    if (!value.empty() && value.front() == '"') {
      const size_t close = value.find('"', 1);
      consumed = close == std::string_view::npos ? value.size() : close + 1;
      out[key] = std::string(value.substr(1, consumed - (close == std::string_view::npos ? 1 : 2)));
    } else {
      consumed = std::min(value.find(' '), value.size());
      out[key] = std::string(value.substr(0, consumed));
    }
    rest = value.substr(consumed);
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  return out;
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& dest) override {
    const std::string_view text(message.payload.data(), message.payload.size());
    const auto since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(message.time.time_since_epoch());
    nlohmann::json line = structured(text);
    line["time"] = format_iso8601_ms(since_epoch.count());
    line["level"] = std::string(spdlog::level::to_string_view(message.level).data(),
                                spdlog::level::to_string_view(message.level).size());
    line["message"] = std::string(text);
    // Invalid UTF-8 from a target is replaced, never a broken line.
    const std::string out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

std::optional<std::string> configure_logging(const std::string& level, const std::string& format) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str answers "off" for anything it does not know.
  if (parsed == spdlog::level::off && level != "off") {
    return "--log-level: expected trace, debug, info, warn, error or off, got \"" + level + "\"";
  }
  if (format != "text" && format != "json") return "--log-format: expected text or json, got \"" + format + "\"";
  auto logger = spdlog::stderr_color_mt("blip");
  spdlog::set_default_logger(logger);
  spdlog::set_level(parsed);
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  return std::nullopt;
}

}  // namespace blip
