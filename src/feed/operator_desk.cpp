#include "blip/feed/operator_desk.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "blip/jobs/ping_inbox.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

using nlohmann::json;

// A C0 or C1 control character, DEL included, in UTF-8 (C1 is 0xC2 0x80–0x9F).
bool has_control_character(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) return true;
    }
  }
  return false;
}

// The body as a JSON object, or the problem with it.
std::optional<json> body_object(std::string_view body, std::string& problem) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    problem = "the body must be a JSON object in UTF-8";
    return std::nullopt;
  }
  return parsed;
}

// The object's "text", checked; empty with `problem` set when it is missing or unfit.
std::string checked_text(const json& object, std::string& problem) {
  auto text = object.find("text");
  if (text == object.end() || !text->is_string()) {
    problem = "\"text\" (a string) is missing";
    return {};
  }
  std::string value = text->get<std::string>();
  if (auto why = operator_text_problem(value)) {
    problem = "text: " + *why;
    return {};
  }
  return value;
}

bool only_keys(const json& object, std::initializer_list<std::string_view> allowed,
               std::string& problem) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      problem = fmt::format("unknown key \"{}\"", key);
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> operator_text_problem(std::string_view text) {
  if (text.find_first_not_of(' ') == std::string_view::npos) return "empty";
  if (text.size() > kMaxOperatorTextBytes)
    return fmt::format("{} bytes; at most {}", text.size(), kMaxOperatorTextBytes);
  if (has_control_character(text))
    return "a control character (a line break, a tab, an escape): write one paragraph";
  return std::nullopt;
}

ParsedNote parse_note_body(std::string_view body, int64_t incident_id, int64_t now_ms) {
  ParsedNote parsed;
  auto object = body_object(body, parsed.problem);
  if (!object || !only_keys(*object, {"status", "text"}, parsed.problem)) return parsed;
  auto status = object->find("status");
  const std::string status_text =
      status != object->end() && status->is_string() ? status->get<std::string>() : "";
  if (std::find(std::begin(kNoteStatuses), std::end(kNoteStatuses), status_text) ==
      std::end(kNoteStatuses)) {
    parsed.problem = "\"status\" must be identified, monitoring or resolved";
    return parsed;
  }
  std::string text = checked_text(*object, parsed.problem);
  if (!parsed.problem.empty()) return parsed;
  parsed.note = IncidentNoteRow{0, incident_id, status_text, std::move(text), now_ms};
  return parsed;
}

ParsedNotice parse_notice_body(std::string_view body, const std::set<std::string>& known,
                               int64_t now_ms) {
  ParsedNotice parsed;
  auto object = body_object(body, parsed.problem);
  if (!object || !only_keys(*object, {"text", "components", "until_ms"}, parsed.problem))
    return parsed;
  NoticeRow notice;
  notice.at_ms = now_ms;
  notice.text = checked_text(*object, parsed.problem);
  if (!parsed.problem.empty()) return parsed;
  if (auto components = object->find("components"); components != object->end()) {
    if (!components->is_array()) {
      parsed.problem = "\"components\" must be a list of probe or job names";
      return parsed;
    }
    for (const json& name : *components) {
      if (!name.is_string() || !known.contains(name.get<std::string>())) {
        parsed.problem = fmt::format("components: {} is not a probe or job of this blip",
                                     name.is_string() ? name.get<std::string>() : name.dump());
        return parsed;
      }
      if (std::find(notice.components.begin(), notice.components.end(), name) ==
          notice.components.end())
        notice.components.push_back(name.get<std::string>());
    }
  }
  if (auto until = object->find("until_ms"); until != object->end() && !until->is_null()) {
    if (!until->is_number_integer() || until->get<int64_t>() <= now_ms) {
      parsed.problem = "\"until_ms\" must be a time (ms since 1970) after now";
      return parsed;
    }
    notice.until_ms = until->get<int64_t>();
  }
  parsed.notice = std::move(notice);
  return parsed;
}

void OperatorDesk::set_token(std::string token) { token_ = std::move(token); }

void OperatorDesk::set_components(std::set<std::string> names) {
  std::lock_guard lock(names_mutex_);
  components_ = std::move(names);
}

void OperatorDesk::connect(Store store) {
  std::lock_guard lock(mutex_);
  store_ = std::move(store);
}

void OperatorDesk::disconnect() {
  std::lock_guard lock(mutex_);
  store_.reset();
}

bool OperatorDesk::authorized(const char* authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (token_.empty() || !authorization) return false;
  const std::string_view header(authorization);
  if (!header.starts_with(kBearer)) return false;
  return constant_time_equal(header.substr(kBearer.size()), token_);
}

OperatorDesk::Answer OperatorDesk::handle(std::string_view path, std::string_view body,
                                          int64_t now_ms) {
  path.remove_prefix(kOperatorPathPrefix.size());
  if (path == "notices") return notice(body, now_ms);
  constexpr std::string_view kIncidents = "incidents/";
  constexpr std::string_view kNotes = "/notes";
  if (path.starts_with(kIncidents) && path.ends_with(kNotes) &&
      path.size() > kIncidents.size() + kNotes.size()) {
    const std::string_view id =
        path.substr(kIncidents.size(), path.size() - kIncidents.size() - kNotes.size());
    if (id.size() <= 18 &&
        std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return note(std::stoll(std::string(id)), body, now_ms);
    }
    return {400, "the incident is named by its number (blip report's #N, summary.json's number)\n"};
  }
  return {404, "not found\n"};
}

OperatorDesk::Answer OperatorDesk::note(int64_t incident_id, std::string_view body,
                                        int64_t now_ms) {
  ParsedNote parsed = parse_note_body(body, incident_id, now_ms);
  if (!parsed.note) return {400, parsed.problem + "\n"};
  std::lock_guard lock(mutex_);
  if (!store_) return {503, "blip is starting or stopping; retry\n"};
  // Opened for this one question: notes are rare, and the feed's own connection is its history's.
  if (!blip::Store(store_->db_path, blip::Store::Mode::read_only).incident_exists(incident_id))
    return {404, fmt::format("no incident {}\n", incident_id)};
  const IncidentNoteRow note = *parsed.note;
  if (!store_->save_note(std::move(*parsed.note)))
    return {503, "the database did not store it in time; it is queued, do not send it again\n"};
  {
    std::lock_guard names(names_mutex_);
    latest_notes_[incident_id] = note;
  }
  return {201, fmt::format("noted on incident {}\n", incident_id)};
}

std::optional<IncidentNoteRow> OperatorDesk::latest_note(int64_t incident_id) const {
  std::lock_guard lock(names_mutex_);
  auto found = latest_notes_.find(incident_id);
  if (found == latest_notes_.end()) return std::nullopt;
  return found->second;
}

OperatorDesk::Answer OperatorDesk::notice(std::string_view body, int64_t now_ms) {
  std::set<std::string> components;
  {
    std::lock_guard names(names_mutex_);
    components = components_;
  }
  ParsedNotice parsed = parse_notice_body(body, components, now_ms);
  if (!parsed.notice) return {400, parsed.problem + "\n"};
  std::lock_guard lock(mutex_);
  if (!store_) return {503, "blip is starting or stopping; retry\n"};
  if (!store_->save_notice(std::move(*parsed.notice)))
    return {503, "the database did not store it in time; it is queued, do not send it again\n"};
  return {201, "notice posted\n"};
}

}  // namespace blip
