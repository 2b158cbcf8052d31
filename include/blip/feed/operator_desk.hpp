#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "blip/store/rows.hpp"

namespace blip {

// The operator's words, as the private face takes them (issue 21):
//   POST /api/operator/incidents/<id>/notes  {"status": "identified", "text": "…"}
//   POST /api/operator/notices               {"text": "…", "components": ["web"], "until_ms": N}
// each with `Authorization: Bearer <[page] operator_token>`.
inline constexpr std::string_view kOperatorPathPrefix = "/api/operator/";
inline constexpr size_t kMaxOperatorBodyBytes = 16384;
// What one note or notice may say: one paragraph, in bytes of UTF-8.
inline constexpr size_t kMaxOperatorTextBytes = 2000;
inline constexpr std::string_view kNoteStatuses[] = {"identified", "monitoring", "resolved"};

// Why an operator's text cannot be shown as it is (empty, too long, a control character), or
// nullopt when it can. Text is refused, never mangled: what is stored is what was written.
std::optional<std::string> operator_text_problem(std::string_view text);

// A request body read into a row, or the reason it cannot be (for a 400).
struct ParsedNote {
  std::optional<IncidentNoteRow> note;
  std::string problem;
};
struct ParsedNotice {
  std::optional<NoticeRow> notice;
  std::string problem;
};
ParsedNote parse_note_body(std::string_view body, int64_t incident_id, int64_t now_ms);
// Components must be among `known` (probe and job names); `until_ms` after `now_ms`.
ParsedNotice parse_notice_body(std::string_view body, const std::set<std::string>& known,
                               int64_t now_ms);

// Takes the operator's notes and notices from the private face's threads to the store: checks
// the token (in constant time), the incident and the body, then hands the row to the writer
// and waits until it is stored, so that a 201 means it survives a restart.
class OperatorDesk {
 public:
  struct Answer {
    unsigned status = 200;
    std::string body;  // plain text, one line
  };
  // How the desk reaches the store once it is open (the daemon's writer and database).
  struct Store {
    std::string db_path;  // read: whether an incident exists
    std::function<bool(IncidentNoteRow)> save_note;
    std::function<bool(NoticeRow)> save_notice;
  };

  // At start: the token from `[page] operator_token` (empty: every request is refused).
  void set_token(std::string token);
  // At start and on each reload: the names a notice may list.
  void set_components(std::set<std::string> names);
  void connect(Store store);
  // Before the writer stops: waits for a request in hand, then refuses the rest (503).
  void disconnect();

  // Whether `authorization` (the header's value, maybe null) carries the operator's token.
  bool authorized(const char* authorization) const;
  // `path` is below kOperatorPathPrefix; called once the body is read and the token checked.
  Answer handle(std::string_view path, std::string_view body, int64_t now_ms);
  // The latest note stored on an incident since blip started, from memory (any thread, the
  // loop's too: no disk); for notes from before the start, Store::latest_incident_note.
  // For the alerts' next message on the incident.
  std::optional<IncidentNoteRow> latest_note(int64_t incident_id) const;

 private:
  Answer note(int64_t incident_id, std::string_view body, int64_t now_ms);
  Answer notice(std::string_view body, int64_t now_ms);

  std::string token_;  // set before the faces start listening; read-only after
  // The store, held while a row is saved (up to the writer's wait); never taken by the loop.
  mutable std::mutex mutex_;
  std::optional<Store> store_;
  // Held only to read or swap what follows: the loop takes it (a reload, an alert's note).
  mutable std::mutex names_mutex_;
  std::set<std::string> components_;
  std::map<int64_t, IncidentNoteRow> latest_notes_;  // by incident: stored since start
};

}  // namespace blip
