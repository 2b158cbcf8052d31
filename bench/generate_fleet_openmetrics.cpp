// Writes the OpenMetrics a fleet of blips would ship over D days, without the raw
// samples: blip_outage, blip_minute_samples, blip_hour_samples and blip_blind only, for V vantages
// × P probes probing at 4 Hz (bench/fleet_report.sh). One file per 18 hours (part-NNN.om in
// --out, each for `promtool tsdb create-blocks-from openmetrics --max-block-duration=24h`:
// promtool cuts blocks of 18 h then, 2 h × 3^k, aligned to the epoch, and reads its input
// once per block; a file that fills one block is read once and no blocks overlap). The text is
// blip's own (openmetrics_text, include/blip/remote/series.hpp), a series at a time.
//
// Per vantage and probe: one blip_minute_samples point (240) at each minute's end, one
// blip_hour_samples point (14,400) at each hour's end;
// blip_outage 1 at each sample (every 250 ms, on the vantage's own phase) inside an
// outage and 0 at its end. Outages: an hourly incident of the first --incident-probes
// probes (a 40 s stall, as bench/generate_history's), seen by each vantage with
// probability 0.8, and local ones of each (probe, vantage), --local-per-day on average,
// 20–120 s. blip_blind{reason="loop_stall"}: --blind windows per vantage, 30–300 s.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "blip/remote/series.hpp"

namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 86'400'000;
constexpr int64_t kInterval = 250;
constexpr int64_t kFile = 18 * 3'600'000;

struct Span {
  int64_t start = 0;
  int64_t end = 0;
};

// `series`' text without the family header when one was written already, and without
// `# EOF` (written once at the file's end).
void append_series(const blip::Series& series, bool& header_written, std::string& out) {
  std::string text = blip::openmetrics_text({series});
  text.resize(text.size() - std::string_view("# EOF\n").size());
  if (header_written) {
    size_t body = 0;
    for (int line = 0; line < 2; ++line) body = text.find('\n', body) + 1;
    text.erase(0, body);
  }
  header_written = true;
  out += text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"the OpenMetrics of a fleet's D days: outages, minute counts, blind windows"};
  int days = 30;
  int vantages = 10;
  int probes = 100;
  double local_per_day = 1.0;
  int incident_probes = 5;
  int blind = 3;
  unsigned seed = 1;
  int64_t end_s = 0;
  std::string out_dir;
  app.add_option("--days", days)->check(CLI::Range(1, 366));
  app.add_option("--vantages", vantages)->check(CLI::Range(1, 100));
  app.add_option("--probes", probes)->check(CLI::Range(1, 10'000));
  app.add_option("--local-per-day", local_per_day, "local outages per (probe, vantage) and day");
  app.add_option("--incident-probes", incident_probes, "probes hit by the hourly incident");
  app.add_option("--blind", blind, "blind windows per vantage");
  app.add_option("--seed", seed);
  app.add_option("--end", end_s, "the range's end, Unix seconds (default: today's 00:00 UTC)");
  app.add_option("--out", out_dir, "directory for day-NN.om")->required();
  CLI11_PARSE(app, argc, argv);

  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t end = end_s > 0 ? end_s * 1000 - (end_s * 1000) % kDay : now_ms - now_ms % kDay;
  const int64_t begin = end - days * kDay;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  struct One {
    std::string probe;
    std::string vantage;
    int64_t phase = 0;
    std::vector<Span> outages;
  };
  std::vector<One> all;
  for (int p = 0; p < probes; ++p) {
    for (int v = 0; v < vantages; ++v) {
      One one{fmt::format("p{:03}", p),
              fmt::format("v{:02}", v),
              static_cast<int64_t>(rng() % kInterval),
              {}};
      // The first sample at or after `ms` on this vantage's grid.
      auto on_grid = [&](int64_t ms) {
        const int64_t k = (ms - one.phase + kInterval - 1) / kInterval;
        return one.phase + k * kInterval;
      };
      std::vector<Span> spans;
      if (p < incident_probes) {
        for (int64_t hour = begin; hour < end; hour += 3'600'000) {
          if (unit(rng) >= 0.8) continue;
          spans.push_back({on_grid(hour + 5'000 + p * 800), on_grid(hour + 45'000 + p * 800)});
        }
      }
      std::exponential_distribution<double> gap(local_per_day / static_cast<double>(kDay));
      for (int64_t at = begin + static_cast<int64_t>(gap(rng)); local_per_day > 0 && at < end;
           at += static_cast<int64_t>(gap(rng))) {
        const int64_t length = 20'000 + static_cast<int64_t>(unit(rng) * 100'000);
        spans.push_back({on_grid(at), on_grid(at + length)});
      }
      std::sort(spans.begin(), spans.end(),
                [](const Span& a, const Span& b) { return a.start < b.start; });
      for (const Span& span : spans) {  // overlapping ones are one outage
        if (!one.outages.empty() && span.start <= one.outages.back().end) {
          one.outages.back().end = std::max(one.outages.back().end, span.end);
        } else {
          one.outages.push_back(span);
        }
      }
      all.push_back(std::move(one));
    }
  }
  std::vector<blip::Series> blind_series;
  for (int v = 0; v < vantages; ++v) {
    std::vector<blip::BlindWindow> windows;
    for (int w = 0; w < blind; ++w) {
      const int64_t start = begin + static_cast<int64_t>(unit(rng) * (end - begin - kDay));
      windows.push_back(
          {start, start + 30'000 + static_cast<int64_t>(unit(rng) * 270'000), "loop_stall"});
    }
    std::sort(windows.begin(), windows.end(),
              [](const auto& a, const auto& b) { return a.start_ms < b.start_ms; });
    blip::append_blind_series(windows, fmt::format("v{:02}", v), blind_series);
  }

  std::filesystem::create_directories(out_dir);
  size_t points = 0;
  int files = 0;
  for (int64_t day = begin - begin % kFile; day <= end; day += kFile) {
    std::string text;
    auto labels = [](const One& one) {
      return std::vector<std::pair<std::string, std::string>>{
          {"probe", one.probe}, {"type", "http"}, {"vantage", one.vantage}};
    };
    bool header = false;
    for (const One& one : all) {
      blip::Series series{"blip_outage", labels(one), {}};
      for (const Span& span : one.outages) {
        if (span.end < day || span.start >= day + kFile) continue;
        int64_t ms = span.start;
        if (ms < day) ms += (day - ms + kInterval - 1) / kInterval * kInterval;
        for (; ms < span.end && ms < day + kFile; ms += kInterval) series.points.push_back({ms, 1});
        if (span.end >= day && span.end < day + kFile) series.points.push_back({span.end, 0});
      }
      points += series.points.size();
      if (!series.points.empty()) append_series(series, header, text);
    }
    header = false;
    for (const One& one : all) {
      blip::Series series{"blip_minute_samples", labels(one), {}};
      // Each minute's count at its end: (begin, end].
      for (int64_t ms = std::max(day, begin + kMinute); ms < day + kFile && ms <= end;
           ms += kMinute)
        series.points.push_back({ms, 240});
      points += series.points.size();
      if (!series.points.empty()) append_series(series, header, text);
    }
    header = false;
    for (const One& one : all) {
      // Each hour's samples at its end, as the sender ships them: every hour here is whole.
      blip::Series series{"blip_hour_samples", labels(one), {}};
      for (int64_t ms = std::max(day, begin + kHour); ms < day + kFile && ms <= end; ms += kHour)
        series.points.push_back({ms, 240 * 60});
      points += series.points.size();
      if (!series.points.empty()) append_series(series, header, text);
    }
    header = false;
    for (const blip::Series& whole : blind_series) {
      blip::Series series{whole.metric, whole.labels, {}};
      for (const blip::SeriesPoint& point : whole.points) {
        if (point.ms >= day && point.ms < day + kFile) series.points.push_back(point);
      }
      points += series.points.size();
      if (!series.points.empty()) append_series(series, header, text);
    }
    text += "# EOF\n";
    std::ofstream(fmt::format("{}/part-{:03}.om", out_dir, files++), std::ios::binary) << text;
  }
  fmt::print("{} {} {} {}\n", begin, end, all.size(), points);
  return 0;
}
