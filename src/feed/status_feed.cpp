#include "blip/feed/status_feed.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"
#include "blip/core/logging.hpp"
#include "blip/feed/badge.hpp"

namespace blip {
namespace {

constexpr int64_t kCacheUs = 1'000'000;
// /healthz: the loop publishes a snapshot every second; older than this, it is not ticking.
constexpr int64_t kHealthyWithinUs = 2'000'000;
// The writer writes every second; queued data older than this means it is stuck (a stalled disk).
constexpr int64_t kStoreWritesWithinMs = 5'000;

constexpr std::string_view kJson = "application/json; charset=utf-8";
constexpr std::string_view kSvg = "image/svg+xml; charset=utf-8";

std::string quoted_hash(std::string_view body) { return fmt::format("\"{}\"", stable_id(body)); }

FeedResponse make_response(unsigned status, std::string_view content_type, std::string body) {
  FeedResponse response;
  response.status = status;
  response.content_type = content_type;
  response.body = std::move(body);
  return response;
}

constexpr std::string_view kText = "text/plain; charset=utf-8";

}  // namespace

StatusFeed::StatusFeed(std::vector<ComponentConfig> probes, PageConfig page,
                       const SnapshotBoard& board, std::string db_path)
    : probes_(std::move(probes)),
      page_(std::move(page)),
      board_(board),
      history_(std::move(db_path)) {
  auto page_response = std::make_shared<FeedResponse>(
      make_response(200, "text/html; charset=utf-8", std::string(kStatusPageHtml)));
  page_response->etag = quoted_hash(page_response->body);
  page_response_ = std::move(page_response);
  refresher_ = std::thread([this] { refresh_while_asked(); });
}

StatusFeed::~StatusFeed() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  asked_.notify_all();
  refresher_.join();
}

StatusFeed::Answer StatusFeed::respond(std::string_view path, Audience audience,
                                       int64_t waiting_since_us) {
  // The routes: one literal table. The public face has no /healthz or /metrics.
  enum class Special { none, page, health, metrics };
  struct Route {
    Special special;
    Document document;
    bool public_face;
  };
  static const std::map<std::string_view, Route> kRoutes{
      {"/", {Special::page, {}, true}},
      {"/index.html", {Special::page, {}, true}},
      {"/healthz", {Special::health, {}, false}},
      {"/metrics", {Special::metrics, {}, false}},
      {"/status.json", {Special::none, Document::summary, true}},
      {"/api/v2/summary.json", {Special::none, Document::summary, true}},
      {"/api/v2/status.json", {Special::none, Document::status, true}},
      {"/api/v2/components.json", {Special::none, Document::components, true}},
      {"/api/v2/incidents.json", {Special::none, Document::incidents, true}},
      {"/api/v2/incidents/unresolved.json", {Special::none, Document::unresolved, true}},
      {"/api/v2/scheduled-maintenances.json", {Special::none, Document::maintenances, true}},
  };
  using Kind = Answer::Kind;
  const auto live = board_.current();
  Key key{Document::badge, Audience::public_view, {}, 0};
  if (path.starts_with("/badge/")) {
    std::optional<Key> badge = badge_key(path, live.get());
    if (!badge) return {};
    key = std::move(*badge);
  } else {
    auto route = kRoutes.find(path);
    if (route == kRoutes.end() || (audience == Audience::public_view && !route->second.public_face))
      return {};
    switch (route->second.special) {
      case Special::page:
        return {Kind::ready, page_response_};
      case Special::health:
        return {Kind::ready, std::make_shared<FeedResponse>(health(live.get()))};
      case Special::metrics:
        return {Kind::ready, metrics(live)};
      case Special::none:
        break;
    }
    key = {route->second.document, audience, {}, 0};
  }
  const uint64_t sequence = live ? live->sequence : 0;
  const int64_t asked_us = mono_now_us();
  std::lock_guard lock(mutex_);
  const std::shared_ptr<const FeedResponse>& cached = cache_[key];
  const int64_t age_us = cached ? asked_us - cached->built_mono_us : INT64_MAX;
  // Fresh: built within the second from the snapshot the loop published last.
  if (cached && cached->sequence == sequence && age_us < kCacheUs) return {Kind::ready, cached};
  if (cached && cached->built_mono_us >= waiting_since_us) return {Kind::ready, cached};
  // While another request's rebuild runs, the last one built will do; else a fresh one is awaited.
  if (building_.contains(key) && age_us < kServeStaleUs) return {Kind::ready, cached};
  if (!stopping_ && wanted_.insert(key).second) asked_.notify_one();
  if (stopping_)
    return {Kind::ready, std::make_shared<FeedResponse>(
                             make_response(503, kText, "the feed is shutting down\n"))};
  return {Kind::building, nullptr};
}

std::optional<StatusFeed::Key> StatusFeed::badge_key(std::string_view path,
                                                     const LiveSnapshot* live) const {
  const std::optional<BadgePath> badge = parse_badge_path(path);
  if (!badge) return std::nullopt;
  // A component by its public name or its component id, as components.json lists them; never by
  // a probe's own name when it has a display_name (that name is the operator's).
  const std::vector<ComponentConfig>& probes = live && live->configs ? *live->configs : probes_;
  for (const ComponentConfig& probe : probes) {
    if (probe.shown_name() == badge->component ||
        stable_id("probe:" + probe.name) == badge->component)
      return Key{Document::badge, Audience::public_view, probe.name, static_cast<int>(badge->kind)};
  }
  return std::nullopt;
}

void StatusFeed::add_built_listener(const void* key, std::function<void()> listener) {
  std::lock_guard lock(listeners_mutex_);
  built_listeners_[key] = std::move(listener);
}

void StatusFeed::remove_built_listener(const void* key) {
  std::lock_guard lock(listeners_mutex_);
  built_listeners_.erase(key);
}

std::shared_ptr<const FeedResponse> StatusFeed::metrics(
    const std::shared_ptr<const LiveSnapshot>& live) {
  if (!live)
    return std::make_shared<FeedResponse>(
        make_response(503, kText, "starting: no snapshot from the probe loop yet\n"));
  std::lock_guard lock(metrics_mutex_);
  if (metrics_ && metrics_->sequence == live->sequence &&
      mono_now_us() - metrics_->built_mono_us < kCacheUs)
    return metrics_;
  // After a reload the snapshot carries the probes now running.
  const std::vector<ComponentConfig>& probes = live->configs ? *live->configs : probes_;
  auto response = std::make_shared<FeedResponse>(
      make_response(200, "text/plain; version=0.0.4; charset=utf-8",
                    prometheus_metrics(probes, *live, refusals_, outage_seconds_floor_)));
  response->sequence = live->sequence;
  response->built_mono_us = mono_now_us();
  response->etag = quoted_hash(response->body);
  metrics_ = response;
  return response;
}

void StatusFeed::refresh_while_asked() {
  // Building documents yields to the probe loop when the cores are busy.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  std::unique_lock lock(mutex_);
  while (true) {
    asked_.wait(lock, [&] { return stopping_ || !wanted_.empty(); });
    if (stopping_) return;
    const std::set<Key> keys = std::exchange(wanted_, {});
    building_ = keys;
    lock.unlock();
    const auto live = board_.current();
    std::vector<std::pair<Key, std::shared_ptr<FeedResponse>>> done;
    for (const Key& key : keys) {
      const int64_t began_us = mono_now_us();
      std::shared_ptr<FeedResponse> response;
      try {
        response = std::make_shared<FeedResponse>(build(key, live.get()));
      } catch (const std::exception& error) {
        log_error("feed: building a document failed err={}", error.what());
        response = std::make_shared<FeedResponse>(make_response(500, kText, "internal error\n"));
      }
      response->sequence = live ? live->sequence : 0;
      response->built_mono_us = began_us;
      if (response->status == 200) response->etag = quoted_hash(response->body);
      done.emplace_back(key, std::move(response));
    }
    lock.lock();
    for (auto& [key, response] : done) cache_[key] = std::move(response);
    building_.clear();
    if (live && live->configs) forget_removed_badges(*live->configs);
    lock.unlock();
    {
      std::lock_guard listeners(listeners_mutex_);
      for (auto& [owner, listener] : built_listeners_) listener();
    }
    lock.lock();
  }
}

namespace {

// A reload may have removed the probe since the request found it: then there is no badge.
FeedResponse badge_response(const FeedView& view, const std::string& probe, BadgeKind kind) {
  for (size_t i = 0; i < view.probes.size() && i < view.live.probes.size(); ++i) {
    if (view.probes[i].name != probe) continue;
    const Badge badge = component_badge(view, i, kind);
    if (kind == BadgeKind::shields) return make_response(200, kJson, badge_shields_json(badge));
    return make_response(200, kSvg, badge_svg(badge));
  }
  return make_response(404, kText, "not found\n");
}

}  // namespace

void StatusFeed::forget_removed_badges(const std::vector<ComponentConfig>& running) {
  std::erase_if(cache_, [&](const auto& entry) {
    const Key& key = entry.first;
    return key.document == Document::badge &&
           std::none_of(running.begin(), running.end(),
                        [&](const ComponentConfig& probe) { return probe.name == key.probe; });
  });
}

FeedResponse StatusFeed::build(Key key, const LiveSnapshot* live) {
  if (!live) return make_response(503, kText, "starting: no snapshot from the probe loop yet\n");
  // After a reload the snapshot carries the probes now running.
  const std::vector<ComponentConfig>& probes = live->configs ? *live->configs : probes_;
  const int64_t now_ms = wall_now_ms();
  std::shared_ptr<const FeedHistory> history;
  try {
    std::set<std::string> shown;
    for (const ComponentConfig& probe : probes) shown.insert(probe.name);
    history = history_.current(now_ms, live->transitions, shown);
  } catch (const std::exception& error) {
    log_error("feed: cannot read history err={}", error.what());
    return make_response(503, kText, "the database cannot be read right now\n");
  }
  const FeedView view{key.audience, probes, page_, *live, *history, now_ms};
  switch (key.document) {
    case Document::summary:
      return make_response(200, kJson, statuspage_summary(view));
    case Document::status:
      return make_response(200, kJson, statuspage_status(view));
    case Document::components:
      return make_response(200, kJson, statuspage_components(view));
    case Document::incidents:
      return make_response(200, kJson, statuspage_incidents(view, false));
    case Document::unresolved:
      return make_response(200, kJson, statuspage_incidents(view, true));
    case Document::maintenances:
      return make_response(200, kJson, statuspage_scheduled_maintenances(view));
    case Document::badge:
      return badge_response(view, key.probe, static_cast<BadgeKind>(key.badge));
  }
  return make_response(500, kText, "internal error\n");
}

FeedResponse StatusFeed::health(const LiveSnapshot* live) const {
  FeedResponse response = make_response(503, kText, "");
  if (!live) {
    response.body = "starting: the probe loop has not published yet\n";
    return response;
  }
  const int64_t age_us = mono_now_us() - live->taken_mono_us;
  if (age_us > kHealthyWithinUs) {
    response.body =
        fmt::format("loop stalled: no tick for {}\n", format_duration_brief(age_us / 1000));
  } else if (!live->store.last_write_ok) {
    response.body = fmt::format("store: the last write failed ({} samples queued): {}\n",
                                live->store.queued_samples, live->store.last_error);
  } else if (live->store.unwritten_for_ms > kStoreWritesWithinMs) {
    response.body = fmt::format("store: nothing written for {} ({} samples queued)\n",
                                format_duration_brief(live->store.unwritten_for_ms),
                                live->store.queued_samples);
  } else {
    response.status = 200;
    response.body = "ok\n";
    // Healthy (probing, writing), but the operator should know: a 503 would only restart it in a
    // loop.
    if (live->store.set_aside_at_ms != 0) {
      response.body += fmt::format(
          "store: the database was damaged ({}) and set aside at {}; blip writes a new one\n",
          live->store.set_aside_reason, format_iso8601_ms(live->store.set_aside_at_ms));
    }
  }
  return response;
}

}  // namespace blip
