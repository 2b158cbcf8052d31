#pragma once
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "blip/config/config.hpp"
#include "blip/feed/history.hpp"
#include "blip/recorder/live_state.hpp"

namespace blip {

// One document the feed serves, with what HTTP needs to cache it.
struct FeedResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string etag;        // quoted; empty when the response must not be cached
  uint64_t sequence = 0;   // of the snapshot it was built from
  int64_t built_mono_us = 0;
};

// Everything a document is built from, at one moment.
struct FeedView {
  const std::vector<ProbeConfig>& probes;
  const PageConfig& page;
  const LiveSnapshot& live;
  const FeedHistory& history;
  int64_t now_ms;
};

// The documents themselves: pure functions of a view (statuspage.cpp, metrics.cpp).
std::string statuspage_summary(const FeedView& view);  // with the `blip` object
std::string statuspage_status(const FeedView& view);
std::string statuspage_components(const FeedView& view);
std::string statuspage_incidents(const FeedView& view, bool unresolved_only);
std::string statuspage_scheduled_maintenances(const FeedView& view);
// Prometheus text format 0.0.4. `outage_seconds_floor` keeps each probe's
// outage-seconds counter from going back (its live part is an estimate).
std::string prometheus_metrics(const std::vector<ProbeConfig>& probes, const LiveSnapshot& live,
                               std::vector<double>& outage_seconds_floor);
// A 12-character id, stable for the same text, in the alphabet Statuspage uses.
std::string stable_id(std::string_view text);

// Builds and caches the feed's documents for the HTTP server. Documents are
// built on the feed's own refresher thread, at most once per second and per
// loop snapshot, and only when asked for; while one is being rebuilt, other
// requests get the last one built (at most a few seconds old) rather than
// queueing behind the rebuild. Reads the loop's snapshots and the store,
// never the loop.
class StatusFeed {
 public:
  StatusFeed(std::vector<ProbeConfig> probes, PageConfig page, const SnapshotBoard& board, std::string db_path);
  StatusFeed(const StatusFeed&) = delete;
  StatusFeed& operator=(const StatusFeed&) = delete;
  ~StatusFeed();
  // Null for a path the feed does not serve. Called from the server's threads.
  std::shared_ptr<const FeedResponse> respond(std::string_view path);

 private:
  enum class Document { summary, status, components, incidents, unresolved, maintenances, metrics };
  FeedResponse build(Document document, const LiveSnapshot* live);
  FeedResponse health(const LiveSnapshot* live) const;
  void refresh_while_asked();  // the refresher thread

  std::vector<ProbeConfig> probes_;
  PageConfig page_;
  const SnapshotBoard& board_;
  FeedHistoryReader history_;
  std::shared_ptr<const FeedResponse> page_response_;
  std::vector<double> outage_seconds_floor_;  // the refresher's own

  std::mutex mutex_;  // guards what follows
  std::condition_variable asked_;
  std::condition_variable built_;
  std::set<Document> wanted_;
  std::set<Document> building_;
  std::map<Document, std::shared_ptr<const FeedResponse>> cache_;
  bool stopping_ = false;
  std::thread refresher_;
};

// The status page (status_page.html, compiled in).
extern const std::string_view kStatusPageHtml;

}  // namespace blip
