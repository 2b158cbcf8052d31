// `blip incident note ID --status S TEXT` and `blip notice TEXT`: the operator's words, sent to
// a running blip's private face, which stores them and shows them on both faces.
#include <fmt/format.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/cli/local_http.hpp"
#include "blip/config/config.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/feed/operator_desk.hpp"

namespace blip {
namespace {

constexpr long kRequestTimeoutMs = 10'000;

// The operator's token: BLIP_OPERATOR_TOKEN, --token-file, or [page] in the configuration.
std::optional<std::string> find_operator_token(const OperatorClientOptions& options,
                                               std::ostream& err) {
  if (auto token = token_outside_config("BLIP_OPERATOR_TOKEN", options.token_file, "blip", err)) {
    if (token->empty()) return std::nullopt;
    return token;
  }
  // Other tables' errors (a ${VARIABLE} only the daemon's environment sets) do not matter here.
  LoadedConfig loaded = load_config_directory(options.config_dir);
  if (!loaded.page.operator_token.empty()) return loaded.page.operator_token;
  for (const ConfigError& error : loaded.errors) err << error.to_string() << '\n';
  err << fmt::format(
      "blip: no [page] operator_token in {} (or set BLIP_OPERATOR_TOKEN, or --token-file)\n",
      options.config_dir);
  return std::nullopt;
}

// Sends `body` to the private face's `path`: the exit status, what blip said printed.
int send(const OperatorClientOptions& options, const std::string& path, const std::string& body,
         std::ostream& out, std::ostream& err) {
  const auto face = private_face_base(options.url, options.listen, err);
  if (!face) return kExitUsage;
  const std::string& base = *face;
  const auto token = find_operator_token(options, err);
  if (!token) return kExitUsage;
  const HttpAnswer answer =
      http_request(base + path, kRequestTimeoutMs, body,
                   {"Authorization: Bearer " + *token, "Content-Type: application/json"});
  if (answer.result != CURLE_OK) {
    err << fmt::format("blip: {} not reached: {}\n", base, curl_easy_strerror(answer.result));
    return kExitDown;
  }
  if (answer.status == 201) {
    out << answer.body;
    return kExitOk;
  }
  err << fmt::format("blip: refused ({}): {}", answer.status, answer.body);
  // 400: what was written is not fit to show (an unknown component): the usage is wrong.
  return answer.status == 400 ? kExitUsage : kExitDown;
}

// The words as one text, or nullopt with the reason told.
std::optional<std::string> text_of(const std::vector<std::string>& words, std::ostream& err) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
  if (auto problem = operator_text_problem(text)) {
    err << "blip: text: " << *problem << '\n';
    return std::nullopt;
  }
  return text;
}

}  // namespace

int run_incident_note(const IncidentNoteOptions& options, std::ostream& out, std::ostream& err) {
  if (options.incident.empty() || options.incident.size() > 18 ||
      options.incident.find_first_not_of("0123456789") != std::string::npos) {
    err << fmt::format("blip: \"{}\" is not an incident number (blip report's #N)\n",
                       options.incident);
    return kExitUsage;
  }
  const auto text = text_of(options.words, err);
  if (!text) return kExitUsage;
  const nlohmann::json body{{"status", options.status}, {"text", *text}};
  return send(options.client, fmt::format("/api/operator/incidents/{}/notes", options.incident),
              body.dump(), out, err);
}

int run_notice(const NoticeOptions& options, std::ostream& out, std::ostream& err) {
  const auto text = text_of(options.words, err);
  if (!text) return kExitUsage;
  nlohmann::json body{{"text", *text}, {"components", options.components}};
  if (!options.until.empty()) {
    int64_t until_ms = 0;
    if (auto duration = parse_duration_ms(options.until); duration && *duration > 0) {
      until_ms = wall_now_ms() + *duration;
    } else if (!parse_iso8601_ms(options.until, until_ms)) {
      err << fmt::format(
          "blip: --until \"{}\": a duration from now (2h) or a time (2026-12-07T22:00:00Z)\n",
          options.until);
      return kExitUsage;
    }
    body["until_ms"] = until_ms;
  }
  return send(options.client, "/api/operator/notices", body.dump(), out, err);
}

}  // namespace blip
