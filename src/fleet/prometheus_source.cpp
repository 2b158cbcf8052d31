#include "blip/fleet/prometheus_source.hpp"

#include <endian.h>
#include <fmt/format.h>
#include <snappy.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "blip/adapters/curl_easy.hpp"
#include "remote_read.pb.h"

namespace blip {
namespace {

constexpr int64_t kMinuteMs = 60'000;
// An answer larger than this is refused rather than parsed (a chunk of one day of
// outage points at 4 Hz for a thousand series stays far below it).
constexpr size_t kMaxAnswerBytes = 1024UL * 1024 * 1024;

int64_t minute_of(int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; }

constexpr int64_t kHourMs = 3'600'000;
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

// What every request to the server sets: the answer goes to `body`, curl's words to `error`
// (CURL_ERROR_SIZE); both, and `url`, must outlive the transfer.
void configure_request(const CurlEasy& easy, const std::string& url, long timeout_ms,
                       std::string& body, char* error) {
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(easy.get(), CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10'000L));
  curl_easy_setopt(easy.get(), CURLOPT_USERAGENT, "blip-report");
  curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, &collect_body);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
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

std::string PrometheusSource::get(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& params) const {
  CurlEasy easy;
  if (!easy.get()) throw FleetSourceError("--prometheus: curl could not start a request");
  std::string url = base_url_ + path;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, value] = params[i];
    std::unique_ptr<char, decltype(&curl_free)> escaped(
        curl_easy_escape(easy.get(), value.data(), static_cast<int>(value.size())), &curl_free);
    url += fmt::format("{}{}={}", i == 0 ? '?' : '&', name, escaped ? escaped.get() : "");
  }
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  configure_request(easy, url, timeout_ms_, body, error);
  if (!loopback(base_url_))
    curl_easy_setopt(easy.get(), CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
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
    throw FleetSourceError(fmt::format("--prometheus: {}{} answered HTTP {}{}", shown_, path,
                                       status, why.substr(0, 500)));
  }
  return body;
}

std::string PrometheusSource::query(const std::string& promql, int64_t at_ms) const {
  return get("/api/v1/query", {{"query", promql}, {"time", api_time(at_ms)}});
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

namespace {

// Each chunk's series joined by metric and labels: the points in its (after, until] only (a
// point on a boundary counts once), in time order.
std::vector<Series> join_chunks(const std::vector<std::pair<int64_t, int64_t>>& chunks,
                                std::vector<std::vector<Series>>& answers) {
  auto within = [&](size_t i, const SeriesPoint& point) {
    return point.ms > chunks[i].first && point.ms <= chunks[i].second;
  };
  // Each series' points once in place: a month of outage points is hundreds of megabytes.
  std::map<std::pair<std::string, LabelSet>, size_t> sizes;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (const Series& series : answers[i]) {
      size_t& size = sizes[{series.metric, series.labels}];
      for (const SeriesPoint& point : series.points) size += within(i, point) ? 1 : 0;
    }
  }
  std::map<std::pair<std::string, LabelSet>, Series> joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (Series& series : answers[i]) {
      std::pair<std::string, LabelSet> key{series.metric, series.labels};
      Series& into = joined[key];
      if (into.metric.empty()) {
        into.metric = series.metric;
        into.labels = series.labels;
        into.points.reserve(sizes[key]);
      }
      // Prometheus 2.x includes a point at the window's start; VictoriaMetrics does not.
      for (const SeriesPoint& point : series.points) {
        if (!within(i, point)) continue;
        if (!into.points.empty() && into.points.back().ms >= point.ms) continue;
        into.points.push_back(point);
      }
      series.points = {};
    }
  }
  std::vector<Series> out;
  for (auto& [key, series] : joined) {
    if (!series.points.empty()) out.push_back(std::move(series));
  }
  return out;
}

// Reads Prometheus's tsdb bit stream: most significant bit first. A read takes the (up to)
// eight bytes that hold its bits at once: a month of outage points is tens of millions of
// reads, a few of them each.
class BitReader {
 public:
  explicit BitReader(std::string_view data) : data_(data), size_bits_(data.size() * 8) {}
  uint64_t bits(int count) {
    if (count <= 0) return 0;
    if (count > 56) {  // from inside a byte, 57 bits and more span nine bytes: two reads
      const uint64_t high = bits(count - 32);
      return (high << 32) | bits(32);
    }
    if (size_bits_ - position_ < static_cast<size_t>(count))
      throw FleetSourceError("an XOR chunk cut short");
    const size_t byte = position_ / 8;
    uint64_t word = 0;
    if (data_.size() - byte >= 8) {
      std::memcpy(&word, data_.data() + byte, sizeof word);
      word = be64toh(word);
    } else {  // the chunk's last bytes
      for (size_t i = 0; byte + i < data_.size(); ++i)
        word |= uint64_t{static_cast<unsigned char>(data_[byte + i])} << (56 - 8 * i);
    }
    const uint64_t out = (word << (position_ % 8)) >> (64 - count);
    position_ += static_cast<size_t>(count);
    return out;
  }
  bool bit() {
    if (position_ >= size_bits_) throw FleetSourceError("an XOR chunk cut short");
    const auto byte = static_cast<unsigned char>(data_[position_ / 8]);
    const bool out = ((byte >> (7 - position_ % 8)) & 1U) != 0;
    ++position_;
    return out;
  }
  uint64_t uvarint() {
    uint64_t out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint64_t byte = bits(8);
      out |= (byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return out;
    }
    throw FleetSourceError("an XOR chunk with a bad varint");
  }
  int64_t varint() {
    const uint64_t zigzag = uvarint();
    const auto value = static_cast<int64_t>(zigzag >> 1);
    return (zigzag & 1) != 0 ? ~value : value;
  }

 private:
  std::string_view data_;
  size_t size_bits_;
  size_t position_ = 0;
};

uint32_t crc32c(std::string_view data) {
  static const auto table = [] {
    std::array<uint32_t, 256> out{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int k = 0; k < 8; ++k) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
      out[i] = crc;
    }
    return out;
  }();
  uint32_t crc = 0xFFFFFFFFU;
  for (char c : data) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFU;
}

// Prometheus's stale marker: a range selector never returns it, so neither does remote read here.
bool stale_marker(double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits == 0x7ff0000000000002ULL;
}

template <typename Labels>
Series series_of_labels(const Labels& labels) {
  Series series;
  for (const auto& label : labels) {
    if (label.name() == "__name__") {
      series.metric = label.value();
    } else {
      series.labels.emplace_back(label.name(), label.value());
    }
  }
  std::sort(series.labels.begin(), series.labels.end());
  return series;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
  std::string_view line(data, size * count);
  static constexpr std::string_view kName = "content-type:";
  if (line.size() > kName.size()) {
    std::string name(line.substr(0, kName.size()));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == kName) {
      std::string_view value = line.substr(kName.size());
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n'))
        value.remove_suffix(1);
      *static_cast<std::string*>(user) = value;
    }
  }
  return size * count;
}

}  // namespace

std::string SeriesSelector::promql() const {
  std::string text = metric + "{";
  for (size_t i = 0; i < matchers.size(); ++i) {
    text += fmt::format("{}{}{}{}", i == 0 ? "" : ",", matchers[i].name,
                        matchers[i].regex ? "=~" : "=", promql_string(matchers[i].value));
  }
  return text + "}";
}

void decode_xor_chunk(std::string_view data, std::vector<SeriesPoint>& out) {
  if (data.size() < 2) throw FleetSourceError("an XOR chunk without its header");
  const auto count = static_cast<size_t>((static_cast<unsigned char>(data[0]) << 8) |
                                         static_cast<unsigned char>(data[1]));
  BitReader in(data.substr(2));
  int64_t ms = 0;
  uint64_t delta = 0;
  uint64_t value = 0;
  int leading = 0;
  int trailing = 0;
  auto read_value = [&] {
    if (!in.bit()) return;  // the same value
    if (in.bit()) {         // a new window of meaningful bits
      leading = static_cast<int>(in.bits(5));
      int meaningful = static_cast<int>(in.bits(6));
      if (meaningful == 0) meaningful = 64;
      trailing = 64 - leading - meaningful;
      if (trailing < 0) throw FleetSourceError("an XOR chunk with a bad value window");
    }
    value ^= in.bits(64 - leading - trailing) << trailing;
  };
  auto push = [&] {
    double point = 0;
    std::memcpy(&point, &value, sizeof point);
    out.push_back({ms, point});
  };
  for (size_t i = 0; i < count; ++i) {
    if (i == 0) {
      ms = in.varint();
      value = in.bits(64);
    } else if (i == 1) {
      delta = in.uvarint();
      ms += static_cast<int64_t>(delta);
      read_value();
    } else {
      int prefix = 0;  // 0, 10, 110, 1110, 1111
      while (prefix < 4 && in.bit()) ++prefix;
      int64_t delta_of_delta = 0;
      if (prefix == 4) {
        delta_of_delta = static_cast<int64_t>(in.bits(64));
      } else if (prefix > 0) {
        static constexpr int kWidths[] = {0, 14, 17, 20};
        const int width = kWidths[prefix];
        auto raw = static_cast<int64_t>(in.bits(width));
        if (raw > (int64_t{1} << (width - 1))) raw -= int64_t{1} << width;
        delta_of_delta = raw;
      }
      delta = static_cast<uint64_t>(static_cast<int64_t>(delta) + delta_of_delta);
      ms += static_cast<int64_t>(delta);
      read_value();
    }
    push();
  }
}

std::optional<std::vector<Series>> PrometheusSource::remote_read(const SeriesSelector& selector,
                                                                 int64_t after_ms,
                                                                 int64_t until_ms) const {
  std::vector<Series> out;
  if (!remote_read_each(selector, after_ms, until_ms,
                        [&](Series& series) { out.push_back(std::move(series)); }))
    return std::nullopt;
  return out;
}

bool PrometheusSource::remote_read_each(const SeriesSelector& selector, int64_t after_ms,
                                        int64_t until_ms,
                                        const std::function<void(Series&)>& each) const {
  remote_read::ReadRequest request;
  remote_read::Query* query = request.add_queries();
  query->set_start_timestamp_ms(after_ms + 1);
  query->set_end_timestamp_ms(until_ms);
  remote_read::LabelMatcher* name = query->add_matchers();
  name->set_type(remote_read::LabelMatcher::EQ);
  name->set_name("__name__");
  name->set_value(selector.metric);
  for (const SeriesMatcher& matcher : selector.matchers) {
    remote_read::LabelMatcher* added = query->add_matchers();
    added->set_type(matcher.regex ? remote_read::LabelMatcher::RE : remote_read::LabelMatcher::EQ);
    added->set_name(matcher.name);
    added->set_value(matcher.value);
  }
  request.add_accepted_response_types(remote_read::ReadRequest::STREAMED_XOR_CHUNKS);
  request.add_accepted_response_types(remote_read::ReadRequest::SAMPLES);
  std::string compressed;
  const std::string plain = request.SerializeAsString();
  snappy::Compress(plain.data(), plain.size(), &compressed);

  CurlEasy easy;
  if (!easy.get()) throw FleetSourceError("--prometheus: curl could not start a request");
  const std::string url = base_url_ + "/api/v1/read";
  std::string body;
  std::string content_type;
  char error[CURL_ERROR_SIZE] = {};
  CurlList headers;
  for (const char* header : {"Content-Type: application/x-protobuf", "Content-Encoding: snappy",
                             "X-Prometheus-Remote-Read-Version: 0.1.0"})
    headers.append(header);
  configure_request(easy, url, timeout_ms_, body, error);
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, compressed.data());
  curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(compressed.size()));
  curl_easy_setopt(easy.get(), CURLOPT_HEADERFUNCTION, &collect_header);
  curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, &content_type);
  if (curl_easy_perform(easy.get()) != CURLE_OK) return false;
  long status = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return false;

  auto keep = [&](Series& series) {
    auto earlier = [](const SeriesPoint& a, const SeriesPoint& b) { return a.ms < b.ms; };
    if (!std::is_sorted(series.points.begin(), series.points.end(), earlier))
      std::stable_sort(series.points.begin(), series.points.end(), earlier);
    std::erase_if(series.points, [&](const SeriesPoint& point) {
      return point.ms <= after_ms || point.ms > until_ms || stale_marker(point.value);
    });
    each(series);
  };
  if (content_type.starts_with("application/x-streamed-protobuf")) {
    // Frames: the message's size (uvarint), its CRC-32C (big-endian), the message.
    std::string_view rest(body);
    remote_read::ChunkedReadResponse frame;
    std::vector<SeriesPoint> points;  // one series' at a time, its storage kept
    while (!rest.empty()) {
      uint64_t size = 0;
      size_t used = 0;
      for (int shift = 0;; shift += 7) {
        if (used >= rest.size() || shift >= 64) return false;
        const auto byte = static_cast<unsigned char>(rest[used++]);
        size |= static_cast<uint64_t>(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0) break;
      }
      if (rest.size() - used < 4 || rest.size() - used - 4 < size) return false;
      uint32_t crc = 0;
      for (int k = 0; k < 4; ++k) crc = (crc << 8) | static_cast<unsigned char>(rest[used++]);
      const std::string_view message = rest.substr(used, size);
      rest.remove_prefix(used + size);
      if (crc32c(message) != crc) return false;
      if (!frame.ParseFromArray(message.data(), static_cast<int>(message.size()))) return false;
      for (const auto& chunked : frame.chunked_series()) {
        Series series = series_of_labels(chunked.labels());
        size_t count = 0;
        for (const auto& chunk : chunked.chunks()) {
          const std::string& data = chunk.data();
          if (data.size() >= 2)
            count +=
                (static_cast<unsigned char>(data[0]) << 8) | static_cast<unsigned char>(data[1]);
        }
        points.clear();
        points.reserve(count);
        for (const auto& chunk : chunked.chunks()) {
          if (chunk.type() != remote_read::Chunk::XOR) return false;
          decode_xor_chunk(chunk.data(), points);
        }
        series.points = std::move(points);
        keep(series);
        points = std::move(series.points);  // empty if `each` took them
      }
    }
  } else if (content_type.starts_with("application/x-protobuf")) {
    std::string uncompressed;
    if (!snappy::Uncompress(body.data(), body.size(), &uncompressed)) return false;
    remote_read::ReadResponse response;
    if (!response.ParseFromString(uncompressed) || response.results_size() != 1) return false;
    for (const auto& timeseries : response.results(0).timeseries()) {
      Series series = series_of_labels(timeseries.labels());
      for (const auto& sample : timeseries.samples())
        series.points.push_back({sample.timestamp(), sample.value()});
      keep(series);
    }
  } else {
    return false;
  }
  return true;
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
  return join_chunks(chunks, answers);
}

std::vector<Series> PrometheusSource::raw_points(const SeriesSelector& selector, int64_t after_ms,
                                                 int64_t until_ms, int64_t chunk_ms) const {
  const auto chunks = chunks_of(after_ms, until_ms, chunk_ms);
  std::vector<std::vector<Series>> answers(chunks.size());
  const std::string promql = selector.promql();
  in_parallel(chunks.size(), [&](size_t i) {
    const auto [chunk_after, chunk_until] = chunks[i];
    if (remote_read_enabled()) {
      std::optional<std::vector<Series>> read;
      try {
        read = remote_read(selector, chunk_after, chunk_until);
      } catch (const FleetSourceError&) {
        read.reset();  // an answer blip cannot read: the query API below instead
      }
      if (read) {
        answers[i] = std::move(*read);
        return;
      }
      disable_remote_read();
    }
    answers[i] = parse_query_answer(
        query(fmt::format("{}[{}ms]", promql, chunk_until - chunk_after), chunk_until), shown_);
  });
  return join_chunks(chunks, answers);
}

namespace {

// One chunk of a series as runs: runs_from_points on its points (a point not after the one
// before it dropped, as join_chunks does), and what joining it to the chunk before needs.
struct ChunkRuns {
  std::optional<int64_t> leading_zero_ms;  // a 0 before its first 1: ends a run still open
  bool starts_with_one = false;            // its first run goes on from an open one
  bool open = false;                       // its last run has no 0 yet
  bool any = false;                        // it holds points
  std::vector<PointRun> runs;
};

ChunkRuns chunk_runs(const std::vector<SeriesPoint>& points, int64_t after_ms, int64_t until_ms) {
  ChunkRuns out;
  int64_t last_ms = 0;
  for (const SeriesPoint& point : points) {
    if (point.ms <= after_ms || point.ms > until_ms) continue;
    if (out.any && point.ms <= last_ms) continue;
    if (!out.any) out.starts_with_one = point.value != 0;
    out.any = true;
    last_ms = point.ms;
    if (point.value != 0) {
      if (!out.open) out.runs.push_back({point.ms, std::nullopt, 0, point.ms});
      out.open = true;
      ++out.runs.back().ones;
      out.runs.back().last_ms = point.ms;
    } else if (out.open) {
      out.runs.back().end_ms = point.ms;
      out.open = false;
    } else if (out.runs.empty() && !out.leading_zero_ms) {
      out.leading_zero_ms = point.ms;
    }
  }
  return out;
}

}  // namespace

std::vector<PrometheusSource::SeriesRuns> PrometheusSource::raw_runs(const SeriesSelector& selector,
                                                                     int64_t after_ms,
                                                                     int64_t until_ms,
                                                                     int64_t chunk_ms) const {
  const auto chunks = chunks_of(after_ms, until_ms, chunk_ms);
  using Key = std::pair<std::string, LabelSet>;
  std::vector<std::vector<std::pair<Key, ChunkRuns>>> answers(chunks.size());
  in_parallel(chunks.size(), [&](size_t i) {
    const auto [chunk_after, chunk_until] = chunks[i];
    // One chunk's points at a time, as raw_points reads them (chunk_runs keeps the points
    // in (chunk_after, chunk_until] and drops one not after the one before, as it joins).
    auto add = [&](const Series& series) {
      answers[i].emplace_back(Key{series.metric, series.labels},
                              chunk_runs(series.points, chunk_after, chunk_until));
    };
    if (remote_read_enabled()) {
      bool read = false;
      try {
        read = remote_read_each(selector, chunk_after, chunk_until, add);
      } catch (const FleetSourceError&) {
        read = false;
      }
      if (read) return;
      answers[i].clear();  // what came before the answer turned out unreadable
      disable_remote_read();
    }
    for (Series& series : parse_query_answer(
             query(fmt::format("{}[{}ms]", selector.promql(), chunk_until - chunk_after),
                   chunk_until),
             shown_)) {
      add(series);
      series.points = {};
    }
  });
  struct Joined {
    std::vector<PointRun> runs;
    bool open = false;
    bool any = false;
  };
  std::map<Key, Joined> joined;
  for (auto& answer : answers) {
    for (auto& [key, chunk] : answer) {
      if (!chunk.any) continue;
      Joined& into = joined[key];
      auto next = chunk.runs.begin();
      if (into.open) {
        if (chunk.leading_zero_ms) {
          into.runs.back().end_ms = *chunk.leading_zero_ms;
        } else if (chunk.starts_with_one && next != chunk.runs.end()) {
          PointRun& run = into.runs.back();
          run.ones += next->ones;
          run.last_ms = next->last_ms;
          run.end_ms = next->end_ms;
          ++next;
        }
      }
      into.runs.insert(into.runs.end(), next, chunk.runs.end());
      into.open = chunk.open;
      into.any = true;
    }
  }
  std::vector<SeriesRuns> out;
  for (auto& [key, series] : joined) {
    if (series.any) out.push_back({key.first, key.second, std::move(series.runs)});
  }
  return out;
}

std::vector<Series> PrometheusSource::series_of(const SeriesSelector& selector, int64_t from_ms,
                                                int64_t to_ms) const {
  const std::string body =
      get("/api/v1/series",
          {{"match[]", selector.promql()}, {"start", api_time(from_ms)}, {"end", api_time(to_ms)}});
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object() || json.value("status", "") != "success" || !json.contains("data") ||
      !json["data"].is_array()) {
    throw FleetSourceError(
        fmt::format("--prometheus: {} answered /api/v1/series, but not as the Prometheus HTTP API "
                    "does",
                    shown_));
  }
  std::vector<Series> out;
  for (const nlohmann::json& item : json["data"]) {
    if (!item.is_object()) continue;
    Series& series = out.emplace_back();
    for (const auto& [name, value] : item.items()) {
      if (!value.is_string()) continue;
      if (name == "__name__") {
        series.metric = value.get<std::string>();
      } else {
        series.labels.emplace_back(name, value.get<std::string>());
      }
    }
    std::sort(series.labels.begin(), series.labels.end());
  }
  return out;
}

namespace {

using Key = std::pair<std::string, std::string>;  // (probe, vantage)
// What tells a series apart within a key (several types of one probe name).
using Projection = std::tuple<std::string, std::string, std::string>;  // (probe, type, vantage)

Key key_of(const Series& series) {
  return {label_of(series, "probe"), label_of(series, "vantage")};
}
Projection projection_of(const Series& series) {
  return {label_of(series, "probe"), label_of(series, "type"), label_of(series, "vantage")};
}

int64_t floor_to(int64_t ms, int64_t unit) { return ms - ((ms % unit) + unit) % unit; }

// `base` narrowed to the probes and vantages of `keys`: a superset of them (every probe
// with every vantage), so answers are filtered by key.
SeriesSelector narrowed(const SeriesSelector& base, const std::set<Key>& keys) {
  std::set<std::string> probes;
  std::set<std::string> vantages;
  for (const auto& [probe, vantage] : keys) {
    probes.insert(probe);
    vantages.insert(vantage);
  }
  SeriesSelector out = base;
  out.matchers.push_back({"probe", promql_alternatives({probes.begin(), probes.end()}), true});
  out.matchers.push_back(
      {"vantage", promql_alternatives({vantages.begin(), vantages.end()}), true});
  return out;
}

// A stretch of minutes [from_ms, to_ms) to read from the minute series, for `keys` (all:
// every series the selector matches).
struct MinuteStretch {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  bool all = false;
  std::set<Key> keys;
};

// The stretch's minutes of each key: the server's count_over_time and sum_over_time of each
// series over it; a series that holds every minute is one run, the others' minute points
// are read. Each minute's count sits at its end: the points in (from + 1m - 1 ms, to].
void read_stretch(const PrometheusSource& source, const SeriesSelector& base,
                  const MinuteStretch& stretch, std::vector<std::pair<Key, MinuteCount>>& out) {
  const SeriesSelector selector = stretch.all ? base : narrowed(base, stretch.keys);
  const std::string promql = selector.promql();
  const int64_t after_ms = stretch.from_ms + kMinuteMs - 1;
  const int64_t until_ms = stretch.to_ms;
  const auto counts = parse_query_answer(
      source.query(fmt::format("count_over_time({}[{}ms])", promql, until_ms - after_ms), until_ms),
      source.shown());
  const auto sums = parse_query_answer(
      source.query(fmt::format("sum_over_time({}[{}ms])", promql, until_ms - after_ms), until_ms),
      source.shown());
  auto wanted = [&](const Key& key) { return stretch.all || stretch.keys.contains(key); };
  std::map<LabelSet, double> sum_of;
  for (const Series& series : sums) {
    if (!series.points.empty()) sum_of[series.labels] = series.points.back().value;
  }
  std::map<Key, int> series_per_key;
  for (const Series& series : counts) ++series_per_key[key_of(series)];
  const int64_t expected = (stretch.to_ms - stretch.from_ms) / kMinuteMs;
  std::set<Projection> partial;
  std::set<Key> partial_keys;
  for (const Series& series : counts) {
    const Key key = key_of(series);
    if (!wanted(key) || series.points.empty()) continue;
    const auto sum = sum_of.find(series.labels);
    // Blip ships a minute only when it holds samples (its count is at least 1).
    if (std::llround(series.points.back().value) == expected && expected > 0 &&
        sum != sum_of.end() && series_per_key[key] == 1) {
      out.push_back({key, {stretch.from_ms, std::llround(sum->second), expected}});
    } else {
      partial.insert(projection_of(series));
      partial_keys.insert(key);
    }
  }
  if (partial.empty()) return;
  for (const Series& series :
       source.raw_points(narrowed(base, partial_keys), after_ms, until_ms, until_ms - after_ms)) {
    if (!partial.contains(projection_of(series))) continue;
    for (const SeriesPoint& point : series.points)
      out.push_back({key_of(series), {point.ms - kMinuteMs, std::llround(point.value), 1}});
  }
}

// The point at `ms` of points in time order, if there is one.
const SeriesPoint* hour_point(const std::vector<SeriesPoint>& points, int64_t ms) {
  const auto found =
      std::lower_bound(points.begin(), points.end(), ms,
                       [](const SeriesPoint& point, int64_t at) { return point.ms < at; });
  return found != points.end() && found->ms == ms ? &*found : nullptr;
}

// Each (probe, vantage)'s minutes with samples in [first_minute_ms, end_minute_ms) (by
// their start), without reading every minute: by the hour from blip_hour_samples where it
// vouches for them, by the minute series' count and sum elsewhere (read_stretch).
//
// The range is cut at hours: its uneven head and tail, then days from its first whole hour.
// In a day, an hour counts from blip_hour_samples when the series has that hour's point and
// the point before it: the first says each of the hour's minutes holds samples (and how
// many), the second that the sender was shipping when the hour began, so that every one of
// its minutes is in the engine too (a sender that starts in the middle of an hour, or a
// request refused, leaves the hour's point without the one before it). The hours of a
// series that do not count make one stretch of minutes per day, from the first such hour to
// the end of the last, read for every series that has one.
std::map<Key, std::vector<MinuteCount>> read_minutes(const PrometheusSource& source,
                                                     const std::vector<SeriesMatcher>& matchers,
                                                     int64_t first_minute_ms,
                                                     int64_t end_minute_ms) {
  const SeriesSelector minute_selector{"blip_minute_samples", matchers};
  const int64_t first_hour = floor_to(first_minute_ms + kHourMs - 1, kHourMs);
  const int64_t last_hour = floor_to(end_minute_ms, kHourMs);
  struct Piece {
    int64_t from_ms;
    int64_t to_ms;
    bool whole_hours;
  };
  std::vector<Piece> pieces;
  if (first_hour < last_hour) {
    if (first_minute_ms < first_hour) pieces.push_back({first_minute_ms, first_hour, false});
    for (int64_t a = first_hour; a < last_hour; a += kDayMs)
      pieces.push_back({a, std::min(a + kDayMs, last_hour), true});
    if (last_hour < end_minute_ms) pieces.push_back({last_hour, end_minute_ms, false});
  } else {
    for (int64_t a = first_minute_ms; a < end_minute_ms; a += kDayMs)
      pieces.push_back({a, std::min(a + kDayMs, end_minute_ms), false});
  }

  // The hours' points, from the end of the hour before the first whole one.
  // By key: the points in time order (raw_points keeps one a time).
  std::map<Key, std::vector<SeriesPoint>> hours;
  std::set<Key> universe;
  if (first_hour < last_hour) {
    std::map<Key, std::set<LabelSet>> hour_series;
    for (Series& series : source.raw_points(SeriesSelector{"blip_hour_samples", matchers},
                                            first_hour - 1, last_hour, 10 * kDayMs)) {
      const Key key = key_of(series);
      hour_series[key].insert(series.labels);
      hours[key] = std::move(series.points);
    }
    // Two series of one key (two types of one probe name): read by the minute, as before.
    for (const auto& [key, labels] : hour_series) {
      if (labels.size() > 1) hours.erase(key);
    }
    // Every series that may have minutes: those without hours are read by the minute.
    if (!hours.empty()) {
      for (const Series& series : source.series_of(minute_selector, first_minute_ms, end_minute_ms))
        universe.insert(key_of(series));
    }
  }

  std::vector<std::pair<Key, MinuteCount>> found;
  std::vector<MinuteStretch> stretches;
  for (const Piece& piece : pieces) {
    if (!piece.whole_hours || hours.empty()) {
      stretches.push_back({piece.from_ms, piece.to_ms, true, {}});
      continue;
    }
    MinuteStretch stretch{piece.to_ms, piece.from_ms, false, {}};
    for (const Key& key : universe) {
      const auto of_key = hours.find(key);
      // The hours that do not count: [bad_from, bad_to).
      int64_t bad_from = piece.to_ms;
      int64_t bad_to = piece.from_ms;
      for (int64_t hour = piece.from_ms; hour < piece.to_ms; hour += kHourMs) {
        const bool counts = of_key != hours.end() && hour_point(of_key->second, hour) &&
                            hour_point(of_key->second, hour + kHourMs);
        if (counts) continue;
        bad_from = std::min(bad_from, hour);
        bad_to = std::max(bad_to, hour + kHourMs);
      }
      if (bad_from < bad_to) {
        stretch.keys.insert(key);
        stretch.from_ms = std::min(stretch.from_ms, bad_from);
        stretch.to_ms = std::max(stretch.to_ms, bad_to);
      }
    }
    for (const Key& key : universe) {
      // Runs of counted hours before and after the stretch (all of the day without one).
      const bool in_stretch = stretch.keys.contains(key);
      for (const auto& [from_ms, to_ms] :
           {std::pair{piece.from_ms, in_stretch ? stretch.from_ms : piece.to_ms},
            std::pair{in_stretch ? stretch.to_ms : piece.to_ms, piece.to_ms}}) {
        if (from_ms >= to_ms) continue;
        int64_t samples = 0;
        const auto& points = hours.at(key);
        for (int64_t hour = from_ms; hour < to_ms; hour += kHourMs)
          samples += std::llround(hour_point(points, hour + kHourMs)->value);
        found.push_back({key, {from_ms, samples, (to_ms - from_ms) / kMinuteMs}});
      }
    }
    if (!stretch.keys.empty()) stretches.push_back(std::move(stretch));
  }
  std::vector<std::vector<std::pair<Key, MinuteCount>>> read(stretches.size());
  in_parallel(stretches.size(),
              [&](size_t i) { read_stretch(source, minute_selector, stretches[i], read[i]); });
  for (auto& one : read) found.insert(found.end(), one.begin(), one.end());

  std::map<Key, std::vector<MinuteCount>> runs;
  for (const auto& [key, minute] : found) runs[key].push_back(minute);
  // Whole stretches and single minutes in time order, joined into runs where they follow on.
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
  std::vector<SeriesMatcher> vantage_matcher;
  if (!query.vantages.empty())
    vantage_matcher.push_back({"vantage", promql_alternatives(query.vantages), true});
  std::vector<SeriesMatcher> probe_matchers;
  if (!query.probe.empty()) probe_matchers.push_back({"probe", query.probe, false});
  probe_matchers.insert(probe_matchers.end(), vantage_matcher.begin(), vantage_matcher.end());
  // Each minute's count sits at its end: the minutes from the one holding `from` to the
  // one holding the range's last moment. Read beside the outages (the server answers each
  // request on a core of its own; blip decodes on another).
  std::map<Key, std::vector<MinuteCount>> minutes;
  std::exception_ptr minutes_failed;
  std::thread minute_reader([&] {
    try {
      minutes = read_minutes(source, probe_matchers, minute_of(range.from_ms),
                             minute_of(range.to_ms - 1) + kMinuteMs);
    } catch (...) {
      minutes_failed = std::current_exception();
    }
  });
  std::vector<PrometheusSource::SeriesRuns> outages;
  std::vector<Series> blind;
  try {
    outages = source.raw_runs(SeriesSelector{"blip_outage", probe_matchers},
                              range.from_ms - kFleetLookbackMs, range.to_ms);
    // Blind windows are few: one request (a request costs the server tens of ms however
    // little it reads).
    blind = source.raw_points(SeriesSelector{"blip_blind", vantage_matcher},
                              range.from_ms - kFleetLookbackMs, range.to_ms,
                              range.to_ms - range.from_ms + kFleetLookbackMs);
  } catch (...) {
    minute_reader.join();
    throw;
  }
  minute_reader.join();
  if (minutes_failed) std::rethrow_exception(minutes_failed);

  std::set<std::string> vantages(query.vantages.begin(), query.vantages.end());
  std::set<std::string> probes;
  for (auto& [key, counts] : minutes) {
    if (counts.empty()) continue;
    probes.insert(key.first);
    if (query.vantages.empty()) vantages.insert(key.second);
    fleet.minutes[key] = std::move(counts);
  }
  for (const auto& series : outages) {
    const Series named{series.metric, series.labels, {}};
    const std::string probe = label_of(named, "probe");
    const std::string vantage = label_of(named, "vantage");
    probes.insert(probe);
    if (query.vantages.empty()) vantages.insert(vantage);
    for (const PointRun& run : series.runs)
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
