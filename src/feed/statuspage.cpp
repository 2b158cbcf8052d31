// Atlassian Statuspage's public v2 documents, field for field, built from
// blip's live snapshot (component states) and its history (incidents,
// uptime, the pattern), plus summary.json's `blip` object.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/version.hpp"
#include "blip/feed/status_feed.hpp"
#include "blip/report/report_json.hpp"

namespace blip {

std::string stable_id(std::string_view text) {
  uint64_t hash = 14695981039346656037ULL;  // FNV-1a
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id(12, '0');
  for (char& c : id) {
    c = kAlphabet[hash % 36];
    hash /= 36;
    hash ^= hash << 13;  // 36^12 exceeds 2^62: stir the remaining bits back in
  }
  return id;
}

namespace {

using nlohmann::json;

// In order of how bad: the page shows the worst. A maintenance window is above
// operational only (what is down during it was planned).
enum class ComponentStatus {
  operational,
  under_maintenance,
  degraded_performance,
  partial_outage,
  major_outage
};

std::string_view to_string(ComponentStatus status) {
  static constexpr std::string_view kNames[] = {
      "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"};
  return kNames[static_cast<int>(status)];
}

json time_json(int64_t wall_ms) { return format_iso8601_ms(wall_ms); }
json time_or_null(std::optional<int64_t> wall_ms) {
  return wall_ms ? time_json(*wall_ms) : json(nullptr);
}

struct Component {
  std::string id;
  std::string name;
  std::optional<std::string> description;
  ComponentStatus status = ComponentStatus::operational;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::optional<std::string> group_id;
  std::vector<std::string> children;  // groups only
  bool group = false;
};

// The page, its components in display order, and the worst status: what
// every document shares.
class Page {
 public:
  explicit Page(const FeedView& view) : view_(view) {
    id_ = stable_id("page:" + view.page.name);
    url_ = view.page.url;
    // A probe's first tag names its group; a group stands where its first member would.
    std::map<std::string, std::vector<size_t>> members;
    for (size_t i = 0; i < view.probes.size(); ++i) {
      if (!view.probes[i].tags.empty()) members[view.probes[i].tags.front()].push_back(i);
    }
    std::set<std::string> placed;
    for (size_t i = 0; i < view.probes.size(); ++i) {
      const auto& tags = view.probes[i].tags;
      if (tags.empty()) {
        add_probe(i, std::nullopt);
      } else if (placed.insert(tags.front()).second) {
        add_group(tags.front(), members[tags.front()]);
      }
    }
    updated_ms_ = view.live.started_wall_ms;
    for (const Component& component : components_) {
      worst_ = std::max(worst_, component.status);
      updated_ms_ = std::max(updated_ms_, component.updated_ms);
    }
  }

  const std::string& id() const { return id_; }
  bool is_public() const { return view_.audience == Audience::public_view; }
  const std::vector<Component>& components() const { return components_; }
  const Component* component_of_probe(const std::string& probe) const {
    auto found = probe_components_.find(probe);
    return found == probe_components_.end() ? nullptr : &components_[found->second];
  }
  bool configured(const std::string& probe) const { return probe_components_.contains(probe); }
  // What a text calls a probe: its component's name; a probe no longer configured
  // keeps its name for the operator and is no one in particular to the public.
  std::string label(const std::string& probe) const {
    if (const Component* component = component_of_probe(probe)) return component->name;
    return is_public() ? "another component" : probe;
  }
  // Why an outage happened, as this audience may read it: the public sees the
  // error class only with `[page] show_details`, and never the target's own text.
  std::string cause(const OutageRecord& outage) const {
    const std::string error(to_string(outage.error));
    if (is_public()) return view_.page.show_details ? error : "";
    return outage.detail.empty() ? error : fmt::format("{} ({})", error, outage.detail);
  }

  json page_json(int64_t updated_ms) const {
    return {{"id", id_},
            {"name", view_.page.name},
            {"url", url_},
            {"time_zone", view_.page.time_zone},
            {"updated_at", time_json(updated_ms)}};
  }
  int64_t updated_ms() const { return updated_ms_; }

  json status_json() const {
    static constexpr std::pair<std::string_view, std::string_view> kIndicators[] = {
        {"none", "All Systems Operational"},  {"maintenance", "Service Under Maintenance"},
        {"minor", "Minor Service Outage"},    {"major", "Partial System Outage"},
        {"critical", "Major Service Outage"},
    };
    const auto& [indicator, description] = kIndicators[static_cast<int>(worst_)];
    return {{"indicator", indicator}, {"description", description}};
  }

  json component_json(const Component& component, int position) const {
    json out{{"id", component.id},
             {"name", component.name},
             {"status", to_string(component.status)},
             {"created_at", time_json(component.created_ms)},
             {"updated_at", time_json(component.updated_ms)},
             {"position", position},
             {"description", component.description ? json(*component.description) : json(nullptr)},
             {"showcase", false},
             {"start_date", fmt::format("{:.10}", format_iso8601_ms(component.created_ms))},
             {"group_id", component.group_id ? json(*component.group_id) : json(nullptr)},
             {"page_id", id_},
             {"group", component.group},
             {"only_show_if_degraded", false}};
    if (component.group) out["components"] = component.children;
    return out;
  }

  json components_json() const {
    json out = json::array();
    for (size_t i = 0; i < components_.size(); ++i)
      out.push_back(component_json(components_[i], static_cast<int>(i + 1)));
    return out;
  }

  json component_json_of(const std::string& probe) const {
    auto found = probe_components_.find(probe);
    return component_json(components_[found->second], static_cast<int>(found->second + 1));
  }

  json incident_json(const Incident& incident) const;
  json notice_json(const NoticeRow& notice) const;
  // The operator's notes on an incident, oldest first (none: empty).
  const std::vector<IncidentNoteRow>& notes_of(int64_t incident_id) const {
    static const std::vector<IncidentNoteRow> kNone;
    auto found = view_.history.notes.find(incident_id);
    return found == view_.history.notes.end() ? kNone : found->second;
  }

 private:
  void add_group(const std::string& name, const std::vector<size_t>& probes) {
    const size_t group_index = components_.size();
    Component group;
    group.id = stable_id("group:" + name);
    group.name = name;
    group.group = true;
    group.created_ms = INT64_MAX;
    components_.push_back(std::move(group));
    size_t down = 0;
    ComponentStatus worst = ComponentStatus::operational;
    for (size_t probe : probes) {
      const Component child = add_probe(probe, components_[group_index].id);
      Component& stored = components_[group_index];
      stored.children.push_back(child.id);
      stored.created_ms = std::min(stored.created_ms, child.created_ms);
      stored.updated_ms = std::max(stored.updated_ms, child.updated_ms);
      worst = std::max(worst, child.status);
      down += child.status == ComponentStatus::major_outage;
    }
    components_[group_index].status = down == probes.size() ? ComponentStatus::major_outage
                                      : down > 0            ? ComponentStatus::partial_outage
                                                            : worst;
  }

  const Component& add_probe(size_t index, std::optional<std::string> group_id) {
    const ComponentConfig& config = view_.probes[index];
    const ProbeLiveState& live = view_.live.probes[index];
    Component component;
    component.id = stable_id("probe:" + config.name);
    component.name = config.shown_name();
    component.description = config.description;
    if (!component.description && !is_public())
      component.description = fmt::format("{} {}", config.type, config.target_display);
    const ConfirmedState state = live.confirmed();
    component.status = live.in_maintenance                 ? ComponentStatus::under_maintenance
                       : state == ConfirmedState::down     ? ComponentStatus::major_outage
                       : state == ConfirmedState::degraded ? ComponentStatus::degraded_performance
                                                           : ComponentStatus::operational;
    auto first_seen = view_.history.first_seen_ms.find(config.name);
    component.created_ms = first_seen != view_.history.first_seen_ms.end()
                               ? std::min(first_seen->second, view_.live.started_wall_ms)
                               : view_.live.started_wall_ms;
    component.updated_ms = std::max(component.created_ms, live.state_changed_ms);
    component.group_id = std::move(group_id);
    probe_components_[config.name] = components_.size();
    components_.push_back(std::move(component));
    return components_.back();
  }

  const FeedView& view_;
  std::string id_;
  std::string url_;
  std::vector<Component> components_;
  std::map<std::string, size_t> probe_components_;
  ComponentStatus worst_ = ComponentStatus::operational;
  int64_t updated_ms_ = 0;
};

// "web-health went down: timeout." — the cause left out where this audience may not read it.
std::string with_cause(std::string text, const std::string& cause) {
  return cause.empty() ? text + "." : fmt::format("{}: {}.", text, cause);
}

// "web-health outage" or "db-write outage, then web-health, streaming +1 more"
std::string incident_name(const Incident& incident, const Page& page) {
  std::vector<std::string> probes;
  for (const OutageRecord& outage : incident.outages) {
    const std::string label = page.label(outage.probe);
    if (std::find(probes.begin(), probes.end(), label) == probes.end()) probes.push_back(label);
  }
  std::string name = probes.front() + " outage";
  for (size_t i = 1; i < probes.size() && i < 3; ++i)
    name += (i == 1 ? ", then " : ", ") + probes[i];
  if (probes.size() > 3) name += fmt::format(" +{} more", probes.size() - 3);
  return name;
}

// One of Statuspage's incident_updates.
json update_json(const std::string& incident_id, const std::string& key, int64_t at_ms,
                 std::string_view status, const std::string& body, json affected) {
  return {{"id", stable_id(fmt::format("update:{}:{}", incident_id, key))},
          {"status", status},
          {"body", body},
          {"incident_id", incident_id},
          {"created_at", time_json(at_ms)},
          {"updated_at", time_json(at_ms)},
          {"display_at", time_json(at_ms)},
          {"affected_components", std::move(affected)},
          {"deliver_notifications", false},
          {"custom_tweet", nullptr},
          {"tweet_id", nullptr}};
}

// An operator's note and notice are public on purpose (issue 21): their status, text and
// times are written for the status page, so both faces show them as they were stored.
json Page::incident_json(const Incident& incident) const {
  auto label_of = [&](const std::string& probe) { return label(probe); };
  const std::string id = stable_id(fmt::format("incident:{}:{}", id_, incident.id));
  struct Update {
    int64_t at_ms;
    std::string key;
    std::string status;
    std::string body;
    const OutageRecord* outage;  // null: an operator's note
    bool opened;
  };
  std::vector<Update> updates;
  std::set<std::string> probes;
  for (const OutageRecord& outage : incident.outages) {
    probes.insert(outage.probe);
    const bool first = &outage == &incident.outages.front();
    const std::string label = label_of(outage.probe);
    updates.push_back(
        {outage.start_ms, fmt::format("{}:open", outage.id), "investigating",
         with_cause(first ? fmt::format("{} went down", label)
                          : fmt::format("{} went down too, {} after {}", label,
                                        format_duration_brief(outage.start_ms - incident.start_ms),
                                        label_of(incident.first_down_probe())),
                    cause(outage)),
         &outage, true});
    if (outage.end_ms) {
      const bool seen = outage.end_reason == "recovered";
      updates.push_back(
          {*outage.end_ms, fmt::format("{}:close", outage.id), "investigating",
           seen
               ? fmt::format("{} answers again after {}.", label,
                             format_duration_brief(*outage.end_ms - outage.start_ms))
               : fmt::format("The monitor stopped while {} was down; the end was not seen.", label),
           &outage, false});
    }
  }
  // While it lasts, the incident says what the operator last said of it short of "resolved":
  // only the probes answering again resolve it.
  std::string status = incident.end_ms ? "resolved" : "investigating";
  std::optional<int64_t> monitoring_ms;
  for (const IncidentNoteRow& note : notes_of(incident.id)) {
    updates.push_back(
        {note.at_ms, fmt::format("note:{}", note.id), note.status, note.text, nullptr, false});
    if (!incident.end_ms && note.status != "resolved") status = note.status;
    if (note.status == "monitoring" && !monitoring_ms) monitoring_ms = note.at_ms;
  }
  // Newest first; at the same moment the operator's words come after blip's own.
  std::stable_sort(updates.begin(), updates.end(), [](const Update& a, const Update& b) {
    return a.at_ms != b.at_ms ? a.at_ms > b.at_ms : (a.outage == nullptr) < (b.outage == nullptr);
  });
  auto last_automatic =
      std::find_if(updates.begin(), updates.end(), [](const Update& u) { return u.outage; });
  if (incident.end_ms && last_automatic != updates.end()) {
    last_automatic->status = "resolved";
    last_automatic->body = fmt::format("Resolved after {}. {}",
                                       format_duration_brief(*incident.end_ms - incident.start_ms),
                                       last_automatic->body);
  }
  json update_list = json::array();
  for (const Update& update : updates) {
    json affected = json::array();
    if (const Component* component =
            update.outage ? component_of_probe(update.outage->probe) : nullptr) {
      affected.push_back({{"code", component->id},
                          {"name", component->name},
                          {"old_status", update.opened ? "operational" : "major_outage"},
                          {"new_status", update.opened ? "major_outage" : "operational"}});
    }
    update_list.push_back(
        update_json(id, update.key, update.at_ms, update.status, update.body, affected));
  }
  json components = json::array();
  for (const std::string& probe : probes) {
    if (configured(probe)) components.push_back(component_json_of(probe));
  }
  const int64_t updated_ms = updates.empty() ? incident.start_ms : updates.front().at_ms;
  return {{"id", id},
          {"name", incident_name(incident, *this)},
          {"status", status},
          {"impact", probes.size() > 1 ? "critical" : "major"},
          {"created_at", time_json(incident.start_ms)},
          {"updated_at", time_json(updated_ms)},
          {"started_at", time_json(incident.start_ms)},
          {"monitoring_at", time_or_null(monitoring_ms)},
          {"resolved_at", time_or_null(incident.end_ms)},
          {"shortlink", url_.empty() ? json(nullptr) : json(url_ + "#incident-" + id)},
          {"page_id", id_},
          {"components", components},
          {"incident_updates", update_list}};
}

// At most `limit` bytes of `text`, cut at a space when one is near and never inside a UTF-8
// character, with an ellipsis when cut.
std::string shortened(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  if (const size_t space = text.rfind(' ', cut); space != std::string::npos && space > limit / 2)
    cut = space;
  return text.substr(0, cut) + "…";
}

std::string notice_id(const Page& page, const NoticeRow& notice) {
  return stable_id(fmt::format("notice:{}:{}", page.id(), notice.id));
}

// A notice is an incident of its own with impact "none": words from the operator, nothing
// blip saw fail. Status "identified" (the operator knows what it is about) until it ends.
json Page::notice_json(const NoticeRow& notice) const {
  const std::string id = notice_id(*this, notice);
  json components = json::array();
  json affected = json::array();
  for (const std::string& probe : notice.components) {
    const Component* component = component_of_probe(probe);
    if (!component) continue;
    components.push_back(component_json_of(probe));
    affected.push_back({{"code", component->id},
                        {"name", component->name},
                        {"old_status", to_string(component->status)},
                        {"new_status", to_string(component->status)}});
  }
  json updates = json::array();
  updates.push_back(update_json(id, "notice", notice.at_ms, "identified", notice.text, affected));
  return {{"id", id},
          {"name", shortened(notice.text, 100)},
          {"status", "identified"},
          {"impact", "none"},
          {"created_at", time_json(notice.at_ms)},
          {"updated_at", time_json(notice.at_ms)},
          {"started_at", time_json(notice.at_ms)},
          {"monitoring_at", nullptr},
          {"resolved_at", nullptr},
          {"shortlink", url_.empty() ? json(nullptr) : json(url_ + "#incident-" + id)},
          {"page_id", id_},
          {"components", components},
          {"incident_updates", updates}};
}

// Incidents that touch a configured probe (a probe removed from probes.d is history, not status).
std::vector<const Incident*> visible_incidents(const Page& page, const FeedView& view,
                                               bool unresolved_only) {
  std::vector<const Incident*> out;
  for (const Incident& incident : view.history.recent_incidents) {
    if (unresolved_only && incident.end_ms) continue;
    if (std::any_of(incident.outages.begin(), incident.outages.end(),
                    [&](const OutageRecord& outage) { return page.configured(outage.probe); })) {
      out.push_back(&incident);
    }
  }
  return out;
}

int64_t page_updated_ms(const Page& page, const std::vector<const Incident*>& incidents,
                        const FeedView& view) {
  int64_t updated = page.updated_ms();
  for (const Incident* incident : incidents) {
    updated = std::max(updated, incident->end_ms.value_or(incident->outages.back().start_ms));
    for (const IncidentNoteRow& note : page.notes_of(incident->id))
      updated = std::max(updated, note.at_ms);
  }
  for (const NoticeRow& notice : view.history.notices) updated = std::max(updated, notice.at_ms);
  return updated;
}

// Incidents and the notices shown now, newest first (a notice is listed while it is shown,
// so it is as unresolved as it is recent).
json incidents_array(const Page& page, const std::vector<const Incident*>& incidents,
                     const FeedView& view) {
  std::vector<std::pair<int64_t, json>> listed;
  for (const Incident* incident : incidents)
    listed.emplace_back(incident->start_ms, page.incident_json(*incident));
  for (const NoticeRow& notice : view.history.notices)
    listed.emplace_back(notice.at_ms, page.notice_json(notice));
  std::stable_sort(listed.begin(), listed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  json out = json::array();
  for (auto& [at_ms, incident] : listed) out.push_back(std::move(incident));
  return out;
}

// What both faces' `blip` objects carry of the operator's words (public on purpose, like the
// incident_updates): an incident's notes, and the notices shown now.
json notes_json(const Page& page, int64_t incident_id) {
  json out = json::array();
  for (const IncidentNoteRow& note : page.notes_of(incident_id))
    out.push_back({{"status", note.status}, {"body", note.text}, {"at", time_json(note.at_ms)}});
  return out;
}

json notices_json(const Page& page, const FeedView& view) {
  json out = json::array();
  for (const NoticeRow& notice : view.history.notices) {
    json components = json::array();
    for (const std::string& probe : notice.components) {
      if (const Component* component = page.component_of_probe(probe))
        components.push_back(component->name);
    }
    out.push_back({{"id", notice_id(page, notice)},
                   {"body", notice.text},
                   {"components", components},
                   {"start", time_json(notice.at_ms)},
                   {"until", time_or_null(notice.until_ms)}});
  }
  return out;
}

json uptime_json(const std::map<std::string, ProbeSummary>& summaries, const std::string& probe) {
  auto found = summaries.find(probe);
  if (found == summaries.end() || !found->second.uptime()) return nullptr;
  return *found->second.uptime();
}

// As the documents name it: "unknown" before the probe's first sample.
std::string_view probe_state(const ProbeLiveState& live) {
  const ConfirmedState state = live.confirmed();
  return state == ConfirmedState::up && !live.last_sample ? "unknown" : to_string(state);
}

// What both faces show of a probe's past: uptime over 24 h, 7 and 30 days, when it
// was first seen, and its 90-day strip.
struct ProbeHistoryJson {
  const FeedHistory& history;
  std::map<std::string, ProbeSummary> month_by_probe;
  explicit ProbeHistoryJson(const FeedHistory& feed_history) : history(feed_history) {
    for (const ProbeSummary& summary : history.month.summaries)
      month_by_probe[summary.probe] = summary;
  }
  json uptime(const std::string& probe) const {
    return {{"24h", uptime_json(history.day, probe)},
            {"7d", uptime_json(history.week, probe)},
            {"30d", uptime_json(month_by_probe, probe)}};
  }
  json first_seen(const std::string& probe) const {
    auto seen = history.first_seen_ms.find(probe);
    return seen == history.first_seen_ms.end() ? json(nullptr) : time_json(seen->second);
  }
  // Adds "days" when the probe has a strip.
  void add_days(json& out, const std::string& probe) const {
    auto strip = history.days.find(probe);
    if (strip == history.days.end()) return;
    std::string states;
    for (DayStrip::State state : strip->second.states) states += static_cast<char>(state);
    out["days"] = {{"states", states}, {"down_ms", strip->second.down_ms}};
  }
};

json brownout_json(const ProbeLiveState& live, int64_t now_ms) {
  if (!live.open_brownout_start_ms) return nullptr;
  return {{"start", time_json(*live.open_brownout_start_ms)},
          {"duration_ms", now_ms - *live.open_brownout_start_ms}};
}

// summary.json's `blip` object for the operator: everything blip knows.
json operator_blip_object(const FeedView& view, const Page& page) {
  const FeedHistory& history = view.history;
  const Report& month = history.month;
  const ProbeHistoryJson past(history);

  json probes = json::array();
  for (size_t i = 0; i < view.probes.size(); ++i) {
    const ComponentConfig& config = view.probes[i];
    const ProbeLiveState& live = view.live.probes[i];
    json probe{{"probe", config.name},
               {"type", config.type},
               {"target", config.target_display},
               {"tags", config.tags},
               {"component_id", page.component_of_probe(config.name)->id},
               {"state", probe_state(live)},
               {"interval_ms", config.interval_ms},
               {"uptime", past.uptime(config.name)},
               {"first_seen_at", past.first_seen(config.name)},
               {"last_sample_at", nullptr},
               {"outage", nullptr},
               {"brownout", brownout_json(live, view.now_ms)}};
    if (live.last_sample) {
      const Sample& sample = *live.last_sample;
      probe["last_sample_at"] = time_json(sample.sent_ms);
      probe["last_result"] = to_string(sample.status);
      probe["latency_ms"] = static_cast<double>(sample.latency_us) / 1000.0;
      probe["phases_ms"] = {
          {"resolve", static_cast<double>(sample.phases.dns_us) / 1000.0},
          {"connect", static_cast<double>(sample.phases.connect_us) / 1000.0},
          {"tls", static_cast<double>(sample.phases.tls_us) / 1000.0},
          {"processing", static_cast<double>(sample.phases.first_byte_us) / 1000.0}};
      probe["error"] = sample.status == Status::down ? json(std::string(to_string(sample.error)))
                                                     : json(nullptr);
      probe["detail"] = sample.detail;
    }
    if (live.open_outage) {
      probe["outage"] = {{"start", time_json(live.open_outage->start_ms)},
                         {"duration_ms", view.now_ms - live.open_outage->start_ms},
                         {"error", to_string(live.open_outage->error)},
                         {"detail", live.open_outage->detail}};
    }
    past.add_days(probe, config.name);
    if (live.job) {
      // A job: its state, the last runs and the trend of their durations (the last 30 days'
      // report).
      json job = {{"state", live.job->state},
                  {"due_at", live.job->due_ms ? time_json(live.job->due_ms) : json(nullptr)},
                  {"running_since", time_or_null(live.job->running_since_ms)}};
      for (const JobSummary& summary : month.jobs) {
        if (summary.job == config.name) job.update(job_json(summary));
      }
      probe["job"] = std::move(job);
    }
    probes.push_back(std::move(probe));
  }

  auto visible = [&](const OutageRecord& outage) { return page.configured(outage.probe); };
  json recent = json::array();
  for (auto it = month.outages.rbegin(); it != month.outages.rend() && recent.size() < 20; ++it) {
    if (visible(*it)) recent.push_back(outage_json(*it, month));
  }
  // The last 24 hours, to the millisecond, for the page's timeline.
  const int64_t day_from = view.now_ms - 86'400'000;
  auto timeline_rows = [&](const std::vector<OutageRecord>& rows) {
    json out = json::array();
    for (const OutageRecord& row : rows) {
      if (!visible(row) || effective_end(row, month.range) <= day_from) continue;
      out.push_back(
          {{"probe", row.probe},
           {"component_id", page.component_of_probe(row.probe)->id},
           {"start", time_json(row.start_ms)},
           {"end", time_or_null(row.end_ms)},
           {"error", row.kind == OutageKind::outage ? json(std::string(to_string(row.error)))
                                                    : json(nullptr)},
           {"detail", row.detail}});
      if (out.size() >= 500) break;
    }
    return out;
  };
  json blind = json::array();
  for (const BlindWindow& window : month.blind) {
    if (window.end_ms > day_from) blind.push_back(blind_window_json(window));
  }
  json incidents = json::array();
  for (const Incident& incident : history.recent_incidents) {
    if (incidents.size() >= 10) break;
    if (!std::any_of(incident.outages.begin(), incident.outages.end(), visible)) continue;
    json order = json::array();
    for (const OutageRecord& outage : incident.outages) {
      order.push_back({{"probe", outage.probe}, {"after_ms", outage.start_ms - incident.start_ms}});
    }
    incidents.push_back({{"id", stable_id(fmt::format("incident:{}:{}", page.id(), incident.id))},
                         {"number", incident.id},  // what `blip incident note` takes
                         {"name", incident_name(incident, page)},
                         {"start", time_json(incident.start_ms)},
                         {"end", time_or_null(incident.end_ms)},
                         {"first_down_probe", incident.first_down_probe()},
                         {"first_down", page.label(incident.first_down_probe())},
                         {"order", order},
                         {"notes", notes_json(page, incident.id)}});
  }
  json patterns = json::object();
  for (const auto& [probe, pattern] : month.probe_patterns) {
    if (page.configured(probe)) patterns[probe] = pattern_json(pattern, false);
  }
  return {{"version", kBlipVersion},
          {"generated_at", time_json(view.now_ms)},
          {"started_at", time_json(view.live.started_wall_ms)},
          {"vantage", view.live.vantage},
          {"loop_lag_ms", static_cast<double>(view.live.loop_lag_us) / 1000.0},
          {"probes", probes},
          {"recent_outages", recent},
          {"recent_incidents", incidents},
          {"notices", notices_json(page, view)},
          {"blind_windows", blind},
          {"days_from", fmt::format("{:.10}", format_iso8601_ms(history.days_from_ms))},
          {"timeline",
           {{"from", time_json(day_from)},
            {"to", time_json(view.now_ms)},
            {"outages", timeline_rows(month.outages)},
            {"brownouts", timeline_rows(month.brownouts)}}},
          {"minute_of_hour",
           {{"from", time_json(month.range.from_ms)}, {"outage_starts", month.outage_starts.bins}}},
          {"hour_of_week",
           {{"from", time_json(month.range.from_ms)},
            {"days", DayOfWeekHourHistogram::kDayNames},
            {"outage_starts", month.hour_of_week.bins}}},
          {"pattern",
           {{"incidents", pattern_json(month.incident_pattern, false)}, {"probes", patterns}}}};
}

// A pattern finding as the public may read it: when outages recur, in words and numbers.
json public_pattern_json(const PatternResult& pattern) {
  static const char* kOutcomes[] = {"pattern", "no_pattern", "not_enough_data"};
  json finding = nullptr;
  if (pattern.finding) {
    const PeriodFinding& found = *pattern.finding;
    finding = {{"period", period_name(found.period_ms)},
               {"period_ms", found.period_ms},
               {"phase_ms", found.phase_ms},
               {"phase", found.phase_words},
               {"window_ms", found.window_ms},
               {"within_ms", found.within_ms},
               {"spread_ms", found.spread_ms},
               {"share", found.share},
               {"in_cluster", found.in_cluster},
               {"outages", found.outages},
               {"words", found.words}};
  }
  return {{"outcome", kOutcomes[static_cast<int>(pattern.outcome)]},
          {"verdict", pattern.verdict},
          {"finding", finding}};
}

// summary.json's `blip` object for the public face. Built field by field from
// what is chosen to be public (a new field is private until someone adds it
// here): component names and states, uptime, the day strip, the timeline,
// incidents with their times, components and the operator's notes (status, text,
// time), the operator's notices (text, components, times), the minute-of-hour strip, the
// day-of-week × hour grid and the finding. Never a probe's target, an error's
// detail, job output, a blind window's reason, or blip's version and start.
json public_blip_object(const FeedView& view, const Page& page) {
  const FeedHistory& history = view.history;
  const Report& month = history.month;
  const bool details = view.page.show_details;
  const ProbeHistoryJson past(history);

  json components = json::array();
  for (size_t i = 0; i < view.probes.size(); ++i) {
    const ComponentConfig& config = view.probes[i];
    const ProbeLiveState& live = view.live.probes[i];
    json component{{"component_id", page.component_of_probe(config.name)->id},
                   {"name", config.shown_name()},
                   {"state", probe_state(live)},
                   {"uptime", past.uptime(config.name)},
                   {"first_seen_at", past.first_seen(config.name)},
                   {"outage", nullptr},
                   {"brownout", brownout_json(live, view.now_ms)}};
    if (live.open_outage) {
      component["outage"] = {{"start", time_json(live.open_outage->start_ms)},
                             {"duration_ms", view.now_ms - live.open_outage->start_ms}};
      if (details) component["outage"]["error"] = to_string(live.open_outage->error);
    }
    past.add_days(component, config.name);
    components.push_back(std::move(component));
  }

  const int64_t day_from = view.now_ms - 86'400'000;
  auto timeline_rows = [&](const std::vector<OutageRecord>& rows, bool with_error) {
    json out = json::array();
    for (const OutageRecord& row : rows) {
      if (!page.configured(row.probe) || effective_end(row, month.range) <= day_from) continue;
      json entry{{"component_id", page.component_of_probe(row.probe)->id},
                 {"start", time_json(row.start_ms)},
                 {"end", time_or_null(row.end_ms)}};
      if (with_error) entry["error"] = to_string(row.error);
      out.push_back(std::move(entry));
      if (out.size() >= 500) break;
    }
    return out;
  };
  json unwatched = json::array();
  for (const BlindWindow& window : month.blind) {
    if (window.end_ms > day_from)
      unwatched.push_back(
          {{"start", time_json(window.start_ms)}, {"end", time_json(window.end_ms)}});
  }
  json incidents = json::array();
  for (const Incident& incident : history.recent_incidents) {
    if (incidents.size() >= 10) break;
    if (!std::any_of(incident.outages.begin(), incident.outages.end(),
                     [&](const OutageRecord& outage) { return page.configured(outage.probe); })) {
      continue;
    }
    json order = json::array();
    for (const OutageRecord& outage : incident.outages) {
      order.push_back({{"component", page.label(outage.probe)},
                       {"after_ms", outage.start_ms - incident.start_ms}});
    }
    incidents.push_back({{"id", stable_id(fmt::format("incident:{}:{}", page.id(), incident.id))},
                         {"name", incident_name(incident, page)},
                         {"start", time_json(incident.start_ms)},
                         {"end", time_or_null(incident.end_ms)},
                         {"first_down", page.label(incident.first_down_probe())},
                         {"order", order},
                         {"notes", notes_json(page, incident.id)}});
  }
  json patterns = json::object();
  for (const auto& [probe, pattern] : month.probe_patterns) {
    if (const Component* component = page.component_of_probe(probe))
      patterns[component->id] = public_pattern_json(pattern);
  }
  return {{"generated_at", time_json(view.now_ms)},
          {"probes", components},
          {"recent_incidents", incidents},
          {"notices", notices_json(page, view)},
          {"blind_windows", unwatched},
          {"days_from", fmt::format("{:.10}", format_iso8601_ms(history.days_from_ms))},
          {"timeline",
           {{"from", time_json(day_from)},
            {"to", time_json(view.now_ms)},
            {"outages", timeline_rows(month.outages, details)},
            {"brownouts", timeline_rows(month.brownouts, false)}}},
          {"minute_of_hour",
           {{"from", time_json(month.range.from_ms)}, {"outage_starts", month.outage_starts.bins}}},
          // Plain counts of outage starts per weekday and hour: no probe in them.
          {"hour_of_week",
           {{"from", time_json(month.range.from_ms)},
            {"days", DayOfWeekHourHistogram::kDayNames},
            {"outage_starts", month.hour_of_week.bins}}},
          {"pattern",
           {{"incidents", public_pattern_json(month.incident_pattern)}, {"components", patterns}}}};
}

}  // namespace

namespace {

// The `[[maintenance]]` windows active now or in the next 7 days, as Statuspage lists them.
json scheduled_maintenances_json(const FeedView& view, const Page& page) {
  json windows = json::array();
  for (const MaintenanceWindow& window : view.live.maintenance) {
    const bool in_progress = window.start_ms <= view.live.taken_wall_ms;
    json components = json::array();
    for (const ComponentConfig& probe : view.probes) {
      if (window.selector.matches(probe)) {
        components.push_back(
            {{"id", stable_id("probe:" + probe.name)}, {"name", probe.shown_name()}});
      }
    }
    windows.push_back(
        {{"id", stable_id(fmt::format("maintenance:{}:{}", window.name, window.start_ms))},
         {"name", window.name},
         {"status", in_progress ? "in_progress" : "scheduled"},
         {"impact", "maintenance"},
         {"scheduled_for", time_json(window.start_ms)},
         {"scheduled_until", time_json(window.end_ms)},
         {"page_id", page.id()},
         {"components", std::move(components)},
         {"incident_updates", json::array()}});
  }
  return windows;
}

}  // namespace

std::string statuspage_summary(const FeedView& view) {
  Page page(view);
  const auto unresolved = visible_incidents(page, view, true);
  json out{{"page", page.page_json(page_updated_ms(page, unresolved, view))},
           {"status", page.status_json()},
           {"components", page.components_json()},
           {"incidents", incidents_array(page, unresolved, view)},
           {"scheduled_maintenances", scheduled_maintenances_json(view, page)},
           {"blip",
            page.is_public() ? public_blip_object(view, page) : operator_blip_object(view, page)}};
  return out.dump();
}

std::string statuspage_status(const FeedView& view) {
  Page page(view);
  const auto unresolved = visible_incidents(page, view, true);
  return json{{"page", page.page_json(page_updated_ms(page, unresolved, view))},
              {"status", page.status_json()}}
      .dump();
}

std::string statuspage_components(const FeedView& view) {
  Page page(view);
  const auto unresolved = visible_incidents(page, view, true);
  return json{{"page", page.page_json(page_updated_ms(page, unresolved, view))},
              {"components", page.components_json()}}
      .dump();
}

std::string statuspage_incidents(const FeedView& view, bool unresolved_only) {
  Page page(view);
  const auto incidents = visible_incidents(page, view, unresolved_only);
  return json{{"page", page.page_json(page_updated_ms(page, incidents, view))},
              {"incidents", incidents_array(page, incidents, view)}}
      .dump();
}

std::string statuspage_scheduled_maintenances(const FeedView& view) {
  Page page(view);
  return json{{"page", page.page_json(page.updated_ms())},
              {"scheduled_maintenances", scheduled_maintenances_json(view, page)}}
      .dump();
}

}  // namespace blip
