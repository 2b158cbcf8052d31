#include "blip/fleet/prometheus_source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "blip/adapters/curl_easy.hpp"

namespace blip {
namespace {

constexpr int64_t kMinuteMs = 60'000;
// An answer larger than this is refused rather than parsed (a chunk of one day of
// outage points at 4 Hz for a thousand series stays far below it).
constexpr size_t kMaxAnswerBytes = 1024UL * 1024 * 1024;

int64_t minute_of(int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; }

constexpr int64_t kDayMs = 86'400'000;
// Chunks asked at once: the server evaluates each query on one core of its own.
constexpr size_t kParallelQueries = 4;

// Runs `work(i)` for i in [0, count), up to kParallelQueries at a time; the first error
// thrown is thrown again once every started one has finished.
template <typename Work>
void in_parallel(size_t count, const Work& work) {
  std::atomic<size_t> next{0};
  std::exception_ptr failed;
  std::mutex failed_mutex;
  auto worker = [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        work(i);
      } catch (...) {
        const std::lock_guard lock(failed_mutex);
        if (!failed) failed = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(count, kParallelQueries); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& thread : threads) thread.join();
  if (failed) std::rethrow_exception(failed);
}

using LabelSet = std::vector<std::pair<std::string, std::string>>;

// The chunks of (after_ms, until_ms], each at most `chunk_ms` long.
std::vector<std::pair<int64_t, int64_t>> chunks_of(int64_t after_ms, int64_t until_ms,
                                                   int64_t chunk_ms) {
  std::vector<std::pair<int64_t, int64_t>> chunks;
  for (int64_t a = after_ms; a < until_ms; a += chunk_ms)
    chunks.emplace_back(a, std::min(until_ms, a + chunk_ms));
  return chunks;
}

size_t collect_body(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * count > kMaxAnswerBytes) return 0;  // curl fails the transfer
  body->append(data, size * count);
  return size * count;
}

// Seconds with milliseconds, as the API's `time` parameter takes them.
std::string api_time(int64_t ms) {
  const int64_t seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  return fmt::format("{}.{:03}", seconds, ms - seconds * 1000);
}

std::string label_of(const Series& series, const std::string& name) {
  for (const auto& [label, value] : series.labels) {
    if (label == name) return value;
  }
  return "";
}

int64_t timestamp_ms(const nlohmann::json& value) {
  if (value.is_number()) return std::llround(value.get<double>() * 1000.0);
  if (value.is_string())
    return std::llround(std::strtod(value.get<std::string>().c_str(), nullptr) * 1000.0);
  throw FleetSourceError("a point without a timestamp");
}

SeriesPoint point_of(const nlohmann::json& pair) {
  if (!pair.is_array() || pair.size() != 2 || !pair[1].is_string())
    throw FleetSourceError("a point that is not [time, \"value\"]");
  return {timestamp_ms(pair[0]), std::strtod(pair[1].get<std::string>().c_str(), nullptr)};
}

// A reader for the answers Prometheus and VictoriaMetrics give to range selectors, which
// are most of what the report reads (a day of blip_outage points runs to megabytes): it
// builds the series as it goes. Anything it does not expect (an escape in a string, an
// error answer, a timestamp as a string) makes it give up, and the general parser below
// reads the answer instead.
class FastAnswer {
 public:
  explicit FastAnswer(std::string_view body) : p_(body.data()), end_(body.data() + body.size()) {}

  std::optional<std::vector<Series>> read() {
    bool success = false;
    if (!eat('{')) return std::nullopt;
    do {
      std::string_view key;
      if (!string(key) || !eat(':')) return std::nullopt;
      if (key == "status") {
        std::string_view status;
        if (!string(status) || status != "success") return std::nullopt;
        success = true;
      } else if (key == "data") {
        if (!data()) return std::nullopt;
      } else if (!skip()) {
        return std::nullopt;
      }
    } while (eat(','));
    if (!eat('}') || !success) return std::nullopt;
    return std::move(out_);
  }

 private:
  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool string(std::string_view& text) {
    ws();
    if (p_ >= end_ || *p_ != '"') return false;
    const char* start = ++p_;
    while (p_ < end_ && *p_ != '"') {
      if (*p_ == '\\') return false;
      ++p_;
    }
    if (p_ >= end_) return false;
    text = {start, static_cast<size_t>(p_ - start)};
    ++p_;
    return true;
  }
  bool number(double& value) {
    ws();
    const auto [next, error] = std::from_chars(p_, end_, value);
    if (error != std::errc()) return false;
    p_ = next;
    return true;
  }
  bool skip() {  // any value
    ws();
    if (p_ >= end_) return false;
    if (*p_ == '"') {
      for (++p_; p_ < end_ && *p_ != '"'; ++p_) {
        if (*p_ == '\\') ++p_;
      }
      if (p_ >= end_) return false;
      ++p_;
      return true;
    }
    if (*p_ == '{' || *p_ == '[') {
      const char close = *p_ == '{' ? '}' : ']';
      const bool object = *p_ == '{';
      ++p_;
      if (eat(close)) return true;
      do {
        if (object) {
          std::string_view key;
          if (!string(key) || !eat(':')) return false;
        }
        if (!skip()) return false;
      } while (eat(','));
      return eat(close);
    }
    while (p_ < end_ && std::string_view(",]} \n\t\r").find(*p_) == std::string_view::npos) ++p_;
    return true;
  }
  bool data() {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    do {
      std::string_view key;
      if (!string(key) || !eat(':')) return false;
      if (key == "resultType") {
        std::string_view type;
        if (!string(type) || (type != "matrix" && type != "vector")) return false;
      } else if (key == "result") {
        if (!eat('[')) return false;
        if (eat(']')) continue;
        do {
          if (!item()) return false;
        } while (eat(','));
        if (!eat(']')) return false;
      } else if (!skip()) {
        return false;
      }
    } while (eat(','));
    return eat('}');
  }
  bool point(Series& series) {
    double seconds = 0;
    std::string_view value;
    if (!eat('[') || !number(seconds) || !eat(',') || !string(value) || !eat(']')) return false;
    double parsed = 0;
    const auto [next, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (error != std::errc() || next != value.data() + value.size()) return false;
    series.points.push_back({std::llround(seconds * 1000.0), parsed});
    return true;
  }
  bool item() {
    Series& series = out_.emplace_back();
    if (!eat('{')) return false;
    do {
      std::string_view key;
      if (!string(key) || !eat(':')) return false;
      if (key == "metric") {
        if (!eat('{')) return false;
        if (eat('}')) continue;
        do {
          std::string_view name;
          std::string_view value;
          if (!string(name) || !eat(':') || !string(value)) return false;
          if (name == "__name__") {
            series.metric = value;
          } else {
            series.labels.emplace_back(name, value);
          }
        } while (eat(','));
        if (!eat('}')) return false;
      } else if (key == "values") {
        if (!eat('[')) return false;
        if (eat(']')) continue;
        do {
          if (!point(series)) return false;
        } while (eat(','));
        if (!eat(']')) return false;
      } else if (key == "value") {
        if (!point(series)) return false;
      } else if (!skip()) {
        return false;
      }
    } while (eat(','));
    std::sort(series.labels.begin(), series.labels.end());
    return eat('}');
  }

  const char* p_;
  const char* end_;
  std::vector<Series> out_;
};

// Whether `url`'s host is this machine: its answers then come uncompressed (the server
// would spend more on gzip than loopback saves).
bool loopback(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  std::string host = url.substr(start, url.find('/', start) - start);
  if (const size_t at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  return host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
}

}  // namespace

std::string promql_string(const std::string& text) { return quoted_label_value(text); }

std::string promql_alternatives(const std::vector<std::string>& names) {
  std::string regex;
  for (const std::string& name : names) {
    if (!regex.empty()) regex += '|';
    for (char c : name) {
      if (std::string_view("\\.^$|?*+()[]{}").find(c) != std::string_view::npos) regex += '\\';
      regex += c;
    }
  }
  return regex;
}

PrometheusSource::PrometheusSource(std::string base_url, long timeout_ms)
    : base_url_(std::move(base_url)), shown_(endpoint_label(base_url_)), timeout_ms_(timeout_ms) {
  if (base_url_.rfind("http://", 0) != 0 && base_url_.rfind("https://", 0) != 0) {
    throw FleetSourceError(fmt::format(
        "--prometheus: \"{}\" is not an http:// or https:// URL (like http://127.0.0.1:9090)",
        shown_));
  }
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

std::string PrometheusSource::query(const std::string& promql, int64_t at_ms) const {
  CurlEasy easy;
  if (!easy.get()) throw FleetSourceError("--prometheus: curl could not start a request");
  std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(easy.get(), promql.data(), static_cast<int>(promql.size())), &curl_free);
  const std::string url = fmt::format("{}/api/v1/query?query={}&time={}", base_url_,
                                      escaped ? escaped.get() : "", api_time(at_ms));
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, timeout_ms_);
  curl_easy_setopt(easy.get(), CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms_, 10'000L));
  curl_easy_setopt(easy.get(), CURLOPT_USERAGENT, "blip-report");
  if (!loopback(base_url_))
    curl_easy_setopt(easy.get(), CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
  curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, &collect_body);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode result = curl_easy_perform(easy.get());
  if (result != CURLE_OK) {
    throw FleetSourceError(fmt::format("--prometheus: cannot query {}: {}", shown_,
                                       error[0] ? error : curl_easy_strerror(result)));
  }
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    std::string why;
    const auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_object() && json.contains("error") && json["error"].is_string())
      why = ": " + json["error"].get<std::string>();
    throw FleetSourceError(fmt::format("--prometheus: {}/api/v1/query answered HTTP {}{}", shown_,
                                       status, why.substr(0, 500)));
  }
  return body;
}

std::vector<Series> parse_query_answer(const std::string& body, const std::string& shown) {
  if (auto series = FastAnswer(body).read()) return std::move(*series);
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("status")) {
    throw FleetSourceError(
        fmt::format("--prometheus: {} answered, but not as the Prometheus HTTP API does", shown));
  }
  if (json["status"] != "success") {
    throw FleetSourceError(fmt::format("--prometheus: {} answered status {}: {}", shown,
                                       json["status"].dump(), json.value("error", "")));
  }
  std::vector<Series> out;
  try {
    const nlohmann::json& data = json.at("data");
    const std::string type = data.at("resultType").get<std::string>();
    if (type != "matrix" && type != "vector") {
      throw FleetSourceError(fmt::format("a {} answer where series were expected", type));
    }
    for (const nlohmann::json& item : data.at("result")) {
      Series& series = out.emplace_back();
      for (const auto& [name, value] : item.at("metric").items()) {
        if (name == "__name__") {
          series.metric = value.get<std::string>();
        } else {
          series.labels.emplace_back(name, value.get<std::string>());
        }
      }
      std::sort(series.labels.begin(), series.labels.end());
      if (type == "vector") {
        series.points.push_back(point_of(item.at("value")));
      } else {
        for (const nlohmann::json& pair : item.at("values"))
          series.points.push_back(point_of(pair));
      }
    }
  } catch (const nlohmann::json::exception& error) {
    throw FleetSourceError(
        fmt::format("--prometheus: {} answered JSON blip cannot read: {}", shown, error.what()));
  } catch (const FleetSourceError& error) {
    throw FleetSourceError(fmt::format("--prometheus: {} answered {}", shown, error.what()));
  }
  return out;
}

std::vector<Series> PrometheusSource::raw_points(const std::string& selector, int64_t after_ms,
                                                 int64_t until_ms, int64_t chunk_ms) const {
  const auto chunks = chunks_of(after_ms, until_ms, chunk_ms);
  std::vector<std::vector<Series>> answers(chunks.size());
  in_parallel(chunks.size(), [&](size_t i) {
    const auto [chunk_after, chunk_until] = chunks[i];
    const std::string promql = fmt::format("{}[{}ms]", selector, chunk_until - chunk_after);
    answers[i] = parse_query_answer(query(promql, chunk_until), shown_);
  });
  std::map<std::pair<std::string, LabelSet>, Series> joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto [chunk_after, chunk_until] = chunks[i];
    for (Series& series : answers[i]) {
      Series& into = joined[{series.metric, series.labels}];
      if (into.metric.empty()) {
        into.metric = series.metric;
        into.labels = series.labels;
      }
      // Prometheus 2.x includes a point at the window's start; VictoriaMetrics does not.
      for (const SeriesPoint& point : series.points) {
        if (point.ms <= chunk_after || point.ms > chunk_until) continue;
        if (!into.points.empty() && into.points.back().ms >= point.ms) continue;
        into.points.push_back(point);
      }
    }
  }
  std::vector<Series> out;
  for (auto& [key, series] : joined) {
    if (!series.points.empty()) out.push_back(std::move(series));
  }
  return out;
}

std::vector<Series> PrometheusSource::per_series(const std::string& function,
                                                 const std::string& selector, int64_t after_ms,
                                                 int64_t until_ms, int64_t chunk_ms) const {
  const auto chunks = chunks_of(after_ms, until_ms, chunk_ms);
  std::vector<std::vector<Series>> answers(chunks.size());
  in_parallel(chunks.size(), [&](size_t i) {
    const auto [chunk_after, chunk_until] = chunks[i];
    const std::string promql =
        fmt::format("{}({}[{}ms])", function, selector, chunk_until - chunk_after);
    answers[i] = parse_query_answer(query(promql, chunk_until), shown_);
  });
  std::map<LabelSet, Series> joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (Series& series : answers[i]) {
      Series& into = joined[series.labels];
      into.labels = series.labels;
      for (const SeriesPoint& point : series.points)
        into.points.push_back({chunks[i].second, point.value});
    }
  }
  std::vector<Series> out;
  for (auto& [labels, series] : joined) out.push_back(std::move(series));
  return out;
}

namespace {

// Each (probe, vantage)'s minutes with samples in (after_ms, until_ms] (each minute's
// count sits at its end), without reading every minute: per day, the server's
// count_over_time and sum_over_time of each series; a day that holds every one of its
// minutes is one run, and only the other days' minute points are read. Chunk edges sit
// 1 ms before a minute's end, so that no point lies on the left edge of a window, which
// Prometheus 2.x includes and VictoriaMetrics does not.
std::map<std::pair<std::string, std::string>, std::vector<MinuteCount>> read_minutes(
    const PrometheusSource& source, const std::string& matchers, int64_t after_ms,
    int64_t until_ms) {
  const std::string selector = fmt::format("blip_minute_samples{{{}}}", matchers);
  const auto counts = source.per_series("count_over_time", selector, after_ms, until_ms, kDayMs);
  const auto sums = source.per_series("sum_over_time", selector, after_ms, until_ms, kDayMs);
  std::map<LabelSet, std::map<int64_t, double>> sum_of;
  for (const Series& series : sums) {
    for (const SeriesPoint& point : series.points) sum_of[series.labels][point.ms] = point.value;
  }
  // The chunk that ends at `chunk_until`, as chunks_of cut (after_ms, until_ms).
  auto chunk_start = [&](int64_t chunk_until) {
    return after_ms + (chunk_until - after_ms - 1) / kDayMs * kDayMs;
  };
  using Key = std::pair<std::string, std::string>;
  std::map<Key, std::vector<MinuteCount>> runs;
  std::map<int64_t, std::set<LabelSet>> partial;  // by chunk end: series to read point by point
  std::map<std::pair<Key, int64_t>, int> series_per_key;
  for (const Series& series : counts) {
    for (const SeriesPoint& point : series.points)
      ++series_per_key[{{label_of(series, "probe"), label_of(series, "vantage")}, point.ms}];
  }
  for (const Series& series : counts) {
    const Key key{label_of(series, "probe"), label_of(series, "vantage")};
    for (const SeriesPoint& point : series.points) {
      const int64_t chunk_until = point.ms;
      const int64_t chunk_after = chunk_start(chunk_until);
      // The minute ends in (chunk_after, chunk_until].
      const int64_t expected = (minute_of(chunk_until) - minute_of(chunk_after)) / kMinuteMs;
      const auto sum = sum_of[series.labels].find(chunk_until);
      // Blip ships a minute only when it holds samples (its count is at least 1).
      if (std::llround(point.value) == expected && expected > 0 &&
          sum != sum_of[series.labels].end() && series_per_key[{key, chunk_until}] == 1) {
        runs[key].push_back({minute_of(chunk_after), std::llround(sum->second), expected});
      } else {
        partial[chunk_until].insert(series.labels);
      }
    }
  }
  // The days not whole: their minutes' points, for the series concerned.
  std::vector<std::pair<int64_t, std::set<LabelSet>>> to_read(partial.begin(), partial.end());
  std::vector<std::vector<Series>> read(to_read.size());
  in_parallel(to_read.size(), [&](size_t i) {
    const auto& [chunk_until, labels] = to_read[i];
    std::vector<std::string> probes;
    std::vector<std::string> vantages;
    for (const LabelSet& set : labels) {
      Series named{"", set, {}};
      probes.push_back(label_of(named, "probe"));
      vantages.push_back(label_of(named, "vantage"));
    }
    std::sort(probes.begin(), probes.end());
    probes.erase(std::unique(probes.begin(), probes.end()), probes.end());
    std::sort(vantages.begin(), vantages.end());
    vantages.erase(std::unique(vantages.begin(), vantages.end()), vantages.end());
    const std::string narrowed = fmt::format(
        "blip_minute_samples{{{}{}probe=~{},vantage=~{}}}", matchers, matchers.empty() ? "" : ",",
        promql_string(promql_alternatives(probes)), promql_string(promql_alternatives(vantages)));
    const int64_t chunk_after = chunk_start(chunk_until);
    for (Series& series : source.raw_points(narrowed, chunk_after, chunk_until, kDayMs)) {
      if (labels.contains(series.labels)) read[i].push_back(std::move(series));
    }
  });
  for (size_t i = 0; i < to_read.size(); ++i) {
    for (const Series& series : read[i]) {
      auto& of_key = runs[{label_of(series, "probe"), label_of(series, "vantage")}];
      for (const SeriesPoint& point : series.points)
        of_key.push_back({point.ms - kMinuteMs, std::llround(point.value), 1});
    }
  }
  // Whole days and single minutes in time order, joined into runs where they follow on.
  std::map<Key, std::vector<MinuteCount>> out;
  for (auto& [key, ordered] : runs) {
    std::sort(ordered.begin(), ordered.end(),
              [](const MinuteCount& a, const MinuteCount& b) { return a.minute_ms < b.minute_ms; });
    auto& joined = out[key];
    for (const MinuteCount& minute : ordered) {
      if (!joined.empty() && joined.back().samples > 0 && minute.samples > 0 &&
          joined.back().end_ms() == minute.minute_ms) {
        joined.back().samples += minute.samples;
        joined.back().span += minute.span;
      } else {
        joined.push_back(minute);
      }
    }
  }
  return out;
}

}  // namespace

FleetSeries read_fleet_series(const PrometheusSource& source, const FleetQuery& query) {
  const ReportRange& range = query.range;
  FleetSeries fleet;
  fleet.range = range;
  fleet.source = source.shown();
  std::string vantage_matcher;
  if (!query.vantages.empty())
    vantage_matcher = "vantage=~" + promql_string(promql_alternatives(query.vantages));
  std::string probe_matchers = vantage_matcher;
  if (!query.probe.empty()) {
    probe_matchers = "probe=" + promql_string(query.probe) + (vantage_matcher.empty() ? "" : ",") +
                     vantage_matcher;
  }
  // Each minute's count sits at its end: the minutes from the one holding `from` to the
  // one holding the range's last moment.
  auto minutes = read_minutes(source, probe_matchers, minute_of(range.from_ms) + kMinuteMs - 1,
                              minute_of(range.to_ms - 1) + kMinuteMs);
  const auto outages = source.raw_points(fmt::format("blip_outage{{{}}}", probe_matchers),
                                         range.from_ms - kFleetLookbackMs, range.to_ms);
  // Blind windows are few: one query (a query costs the server tens of ms however little
  // it reads).
  const auto blind = source.raw_points(fmt::format("blip_blind{{{}}}", vantage_matcher),
                                       range.from_ms - kFleetLookbackMs, range.to_ms,
                                       range.to_ms - range.from_ms + kFleetLookbackMs);

  std::set<std::string> vantages(query.vantages.begin(), query.vantages.end());
  std::set<std::string> probes;
  for (auto& [key, counts] : minutes) {
    if (counts.empty()) continue;
    probes.insert(key.first);
    if (query.vantages.empty()) vantages.insert(key.second);
    fleet.minutes[key] = std::move(counts);
  }
  for (const Series& series : outages) {
    const std::string probe = label_of(series, "probe");
    const std::string vantage = label_of(series, "vantage");
    probes.insert(probe);
    if (query.vantages.empty()) vantages.insert(vantage);
    for (const PointRun& run : runs_from_points(series.points))
      fleet.outages.push_back({probe, vantage, run.start_ms, run.end_ms, run.ones, run.last_ms});
  }
  for (const Series& series : blind) {
    const std::string vantage = label_of(series, "vantage");
    if (query.vantages.empty()) vantages.insert(vantage);
    auto& windows = fleet.blind[vantage];
    for (BlindWindow& window :
         blind_windows_from_points(series.points, label_of(series, "reason"), range.to_ms))
      windows.push_back(std::move(window));
  }
  for (auto& [vantage, windows] : fleet.blind) {
    std::sort(windows.begin(), windows.end(),
              [](const BlindWindow& a, const BlindWindow& b) { return a.start_ms < b.start_ms; });
  }
  fleet.vantages.assign(vantages.begin(), vantages.end());
  fleet.probes.assign(probes.begin(), probes.end());
  return fleet;
}

}  // namespace blip
