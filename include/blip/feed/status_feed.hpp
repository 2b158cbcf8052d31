#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  std::string etag;       // quoted; empty when the response must not be cached
  uint64_t sequence = 0;  // of the snapshot it was built from
  int64_t built_mono_us = 0;
};

// Who a document is for. The operator's view (the private face, `--listen`)
// shows everything; the public view (`--public-listen`) shows only fields
// chosen one by one to be public: names, states, uptime, times, never a
// target, an error's text, job output or anything about blip itself.
enum class Audience { operator_view, public_view };

// Everything a document is built from, at one moment.
struct FeedView {
  Audience audience;
  const std::vector<ComponentConfig>& probes;  // and jobs: one component each
  const PageConfig& page;
  const LiveSnapshot& live;
  const FeedHistory& history;
  int64_t now_ms;
};

// What the feed's servers turned away, by face and reason, since start (for /metrics).
struct FeedRefusals {
  enum Reason { per_client, request_time, host, token_guesses, kReasons };
  static constexpr std::string_view kReasonNames[kReasons] = {"per_client", "request_time", "host",
                                                              "token_guesses"};
  std::atomic<uint64_t> counts[2][kReasons]{};  // [Audience][Reason]
  void count(Audience audience, Reason reason) {
    counts[static_cast<int>(audience)][reason].fetch_add(1, std::memory_order_relaxed);
  }
};

// The documents themselves: pure functions of a view (statuspage.cpp, metrics.cpp).
std::string statuspage_summary(const FeedView& view);  // with the `blip` object
std::string statuspage_status(const FeedView& view);
std::string statuspage_components(const FeedView& view);
std::string statuspage_incidents(const FeedView& view, bool unresolved_only);
std::string statuspage_scheduled_maintenances(const FeedView& view);
// Prometheus text format 0.0.4. `outage_seconds_floor` keeps each probe's
// outage-seconds counter from going back (its live part is an estimate).
std::string prometheus_metrics(const std::vector<ComponentConfig>& probes, const LiveSnapshot& live,
                               const FeedRefusals& refusals,
                               std::vector<double>& outage_seconds_floor);
// A 12-character id, stable for the same text, in the alphabet Statuspage uses.
std::string stable_id(std::string_view text);

// Builds and caches the feed's documents for the HTTP servers (one per
// face). Never makes a caller wait: the page and /healthz are answered at
// once, /metrics is built on the caller's thread from the loop's snapshot
// (cheap, and never behind a slow document), and the Statuspage documents and
// the badges (badge.hpp) are built on the feed's own refresher thread, at most
// once per second and per loop snapshot, and only when asked for. While a
// rebuild runs, the last one built is served if it is recent enough; otherwise
// the caller is told to wait, and the listeners are called when one is built.
// Reads the loop's snapshots and the store, never the loop.
class StatusFeed {
 public:
  // While a newer one is built, a document up to this old is served instead.
  static constexpr int64_t kServeStaleUs = 10'000'000;

  StatusFeed(std::vector<ComponentConfig> probes, PageConfig page, const SnapshotBoard& board,
             std::string db_path);
  StatusFeed(const StatusFeed&) = delete;
  StatusFeed& operator=(const StatusFeed&) = delete;
  ~StatusFeed();

  struct Answer {
    enum class Kind { not_found, ready, building };
    Kind kind = Kind::not_found;
    std::shared_ptr<const FeedResponse> response;  // when ready
  };
  // What `path` is on the face for `audience`. A caller that was told to wait
  // passes when it was told (`waiting_since_us`): any document built since will do.
  // Called from the servers' threads.
  Answer respond(std::string_view path, Audience audience, int64_t waiting_since_us = INT64_MAX);
  // Called (from the refresher's thread) after documents were built; the key removes it again.
  void add_built_listener(const void* key, std::function<void()> listener);
  void remove_built_listener(const void* key);
  FeedRefusals& refusals() { return refusals_; }

 private:
  enum class Document { summary, status, components, incidents, unresolved, maintenances, badge };
  // A badge's key also names its probe (never a name the request made up: only running
  // components are cached) and which badge it is. Badges look the same on both faces.
  struct Key {
    Document document;
    Audience audience;
    std::string probe;  // badges only
    int badge = 0;      // a BadgeKind
    auto operator<=>(const Key&) const = default;
  };
  // The key of a badge's path, for a component that is running now; nullopt for any other path.
  std::optional<Key> badge_key(std::string_view path, const LiveSnapshot* live) const;
  // Badges of probes a reload removed are dropped from the cache; called with `mutex_` held.
  void forget_removed_badges(const std::vector<ComponentConfig>& running);
  FeedResponse build(Key key, const LiveSnapshot* live);
  FeedResponse health(const LiveSnapshot* live) const;
  std::shared_ptr<const FeedResponse> metrics(const std::shared_ptr<const LiveSnapshot>& live);
  void refresh_while_asked();  // the refresher thread

  std::vector<ComponentConfig> probes_;
  PageConfig page_;
  const SnapshotBoard& board_;
  FeedHistoryReader history_;
  std::shared_ptr<const FeedResponse> page_response_;
  FeedRefusals refusals_;

  std::mutex metrics_mutex_;  // guards what follows
  std::vector<double> outage_seconds_floor_;
  std::shared_ptr<const FeedResponse> metrics_;

  std::mutex listeners_mutex_;
  std::map<const void*, std::function<void()>> built_listeners_;

  std::mutex mutex_;  // guards what follows
  std::condition_variable asked_;
  std::set<Key> wanted_;
  std::set<Key> building_;
  std::map<Key, std::shared_ptr<const FeedResponse>> cache_;
  bool stopping_ = false;
  std::thread refresher_;
};

// The status page (status_page.html, compiled in).
extern const std::string_view kStatusPageHtml;

}  // namespace blip
