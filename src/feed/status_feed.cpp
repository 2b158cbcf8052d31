#include "blip/feed/status_feed.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "blip/core/clock.hpp"
#include "blip/core/duration.hpp"

namespace blip {
namespace {

constexpr int64_t kCacheUs = 1'000'000;
// /healthz: the loop publishes a snapshot every second; older than this, it is not ticking.
constexpr int64_t kHealthyWithinUs = 2'000'000;

constexpr std::string_view kJson = "application/json; charset=utf-8";

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

StatusFeed::StatusFeed(std::vector<ProbeConfig> probes, PageConfig page, const SnapshotBoard& board,
                       std::string db_path)
    : probes_(std::move(probes)), page_(std::move(page)), board_(board), history_(std::move(db_path)) {
  for (Document document : {Document::page, Document::summary, Document::status, Document::components,
                            Document::incidents, Document::unresolved, Document::maintenances, Document::metrics,
                            Document::health}) {
    cache_[document];
  }
}

std::shared_ptr<const FeedResponse> StatusFeed::respond(std::string_view path) {
  // The routes: one literal table.
  static const std::map<std::string_view, Document> kRoutes{
      {"/", Document::page},
      {"/index.html", Document::page},
      {"/status.json", Document::summary},
      {"/api/v2/summary.json", Document::summary},
      {"/api/v2/status.json", Document::status},
      {"/api/v2/components.json", Document::components},
      {"/api/v2/incidents.json", Document::incidents},
      {"/api/v2/incidents/unresolved.json", Document::unresolved},
      {"/api/v2/scheduled-maintenances.json", Document::maintenances},
      {"/metrics", Document::metrics},
      {"/healthz", Document::health},
  };
  auto route = kRoutes.find(path);
  if (route == kRoutes.end()) return nullptr;
  const auto live = board_.current();
  if (route->second == Document::health) return std::make_shared<FeedResponse>(health(live.get()));

  Cached& cached = cache_.at(route->second);
  std::lock_guard lock(cached.mutex);
  const int64_t now_us = mono_now_us();
  const uint64_t sequence = live ? live->sequence : 0;
  // A response lives for a second and for one snapshot; the page itself never changes.
  const bool fresh = cached.response && cached.response->sequence == sequence &&
                     now_us - cached.response->built_mono_us < kCacheUs;
  if (cached.response && (fresh || route->second == Document::page)) return cached.response;
  auto built = std::make_shared<FeedResponse>(build(route->second, live));
  built->sequence = sequence;
  built->built_mono_us = now_us;
  if (built->status == 200) built->etag = quoted_hash(built->body);
  cached.response = built;
  return built;
}

FeedResponse StatusFeed::build(Document document, const std::shared_ptr<const LiveSnapshot>& live) {
  if (document == Document::page) return make_response(200, "text/html; charset=utf-8", std::string(kStatusPageHtml));
  if (!live) return make_response(503, kText, "starting: no snapshot from the probe loop yet\n");
  if (document == Document::metrics) {
    return make_response(200, "text/plain; version=0.0.4; charset=utf-8",
                    prometheus_metrics(probes_, *live, outage_seconds_floor_));
  }
  const int64_t now_ms = wall_now_ms();
  std::shared_ptr<const FeedHistory> history;
  try {
    history = history_.current(now_ms, live->transitions);
  } catch (const std::exception& error) {
    spdlog::error("feed: cannot read history err={}", error.what());
    return make_response(503, kText, "the database cannot be read right now\n");
  }
  const FeedView view{probes_, page_, *live, *history, now_ms};
  switch (document) {
    case Document::summary: return make_response(200, kJson, statuspage_summary(view));
    case Document::status: return make_response(200, kJson, statuspage_status(view));
    case Document::components: return make_response(200, kJson, statuspage_components(view));
    case Document::incidents: return make_response(200, kJson, statuspage_incidents(view, false));
    case Document::unresolved: return make_response(200, kJson, statuspage_incidents(view, true));
    case Document::maintenances: return make_response(200, kJson, statuspage_scheduled_maintenances(view));
    default: return make_response(404, kText, "not found\n");
  }
}

FeedResponse StatusFeed::health(const LiveSnapshot* live) const {
  FeedResponse response = make_response(503, kText, "");
  if (!live) {
    response.body = "starting: the probe loop has not published yet\n";
    return response;
  }
  const int64_t age_us = mono_now_us() - live->taken_mono_us;
  if (age_us > kHealthyWithinUs) {
    response.body = fmt::format("loop stalled: no tick for {}\n", format_duration_brief(age_us / 1000));
  } else if (!live->last_flush_ok) {
    response.body = fmt::format("store: the last flush failed: {}\n", live->last_flush_error);
  } else {
    response.status = 200;
    response.body = "ok\n";
  }
  return response;
}

}  // namespace blip
