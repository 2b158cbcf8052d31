// The period finder's false-discovery rate: thousands of outage histories
// without any schedule (Poisson starts over 6 h to 35 d of observed time, 5 to
// 500 outages, blind windows), each run through find_period, counting the
// histories in which it claims a period and, per candidate period, the tests
// it calls significant against what Bonferroni allows. The test suite runs a
// few thousand of the same (tests/analysis/pattern_test.cpp); this is the full run.
//   build-bench/bench/pattern_false_discovery [--histories N] [--seed S] [--significance A]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <iostream>

#include "blip/analysis/pattern_null.hpp"
#include "blip/core/duration.hpp"

namespace {

// A 95% interval for a binomial rate (Wilson).
std::pair<double, double> wilson(int64_t hits, int64_t trials) {
  if (trials == 0) return {0, 0};
  const double z = 1.96;
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(hits) / n;
  const double centre = (p + z * z / (2 * n)) / (1 + z * z / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
  return {std::max(0.0, centre - half), centre + half};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"measure the period finder's false-discovery rate on random outage histories"};
  int64_t histories = 100'000;
  uint64_t seed = 2026;
  double significance = 0.01;
  blip::NullHistorySettings settings;
  app.add_option("--histories", histories)->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--significance", significance)->capture_default_str();
  app.add_option("--min-outages", settings.min_outages)->capture_default_str();
  app.add_option("--max-outages", settings.max_outages)->capture_default_str();
  std::string min_range = "6h";
  std::string max_range = "35d";
  app.add_option("--min-range", min_range, "shortest range (log-uniform between)")
      ->capture_default_str();
  app.add_option("--max-range", max_range, "longest range")->capture_default_str();
  app.add_option("--min-blind-windows", settings.min_blind_windows)->capture_default_str();
  app.add_option("--max-blind-windows", settings.max_blind_windows)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (auto [text, into] : {std::pair{&min_range, &settings.min_range_ms},
                            std::pair{&max_range, &settings.max_range_ms}}) {
    std::string problem;
    auto parsed = blip::parse_duration_ms(*text, &problem);
    if (!parsed) {
      std::cerr << *text << ": " << problem << '\n';
      return 2;
    }
    *into = *parsed;
  }

  const auto started = std::chrono::steady_clock::now();
  const blip::FalseDiscoveryTally tally =
      blip::count_false_discoveries(histories, seed, significance, settings);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const auto [low, high] = wilson(tally.with_finding, tally.histories);
  std::cout << fmt::format(
      "histories={} seed={} significance={} seconds={:.1f}\n"
      "false discoveries: {} of {} histories = {:.3f}% (95% interval {:.3f}%-{:.3f}%), claimed at "
      "most {:.3f}%\n\n",
      tally.histories, seed, significance, seconds, tally.with_finding, tally.histories,
      100 * tally.rate(), 100 * low, 100 * high, 100 * significance);
  std::cout << fmt::format("{:<8} {:>8} {:>11} {:>10} {:>9}\n", "period", "tests", "significant",
                           "allowed", "ratio");
  for (const auto& [period, count] : tally.by_period) {
    std::cout << fmt::format(
        "{:<8} {:>8} {:>11} {:>10.1f} {:>9.2f}\n", blip::period_name(period), count.tests,
        count.significant, count.allowed,
        count.allowed > 0 ? static_cast<double>(count.significant) / count.allowed : 0.0);
  }
  std::cout << fmt::format("\n{:<12} {:>8} {:>11} {:>10} {:>9}\n", "p-value", "tests",
                           "significant", "allowed", "ratio");
  for (const auto& [method, count] : tally.by_method) {
    std::cout << fmt::format(
        "{:<12} {:>8} {:>11} {:>10.1f} {:>9.2f}\n", method, count.tests, count.significant,
        count.allowed,
        count.allowed > 0 ? static_cast<double>(count.significant) / count.allowed : 0.0);
  }
  std::cout << fmt::format("\n{:<12} {:>9} {:>9} {:>8}\n", "outages", "histories", "findings",
                           "rate");
  for (size_t band = 0; band < tally.band_histories.size(); ++band) {
    const std::string label =
        band + 1 < tally.kBandStarts.size()
            ? fmt::format("{}-{}", tally.kBandStarts[band], tally.kBandStarts[band + 1] - 1)
            : fmt::format("{}+", tally.kBandStarts[band]);
    const int64_t runs = tally.band_histories[band];
    std::cout << fmt::format(
        "{:<12} {:>9} {:>9} {:>7.3f}%\n", label, runs, tally.band_findings[band],
        runs ? 100.0 * static_cast<double>(tally.band_findings[band]) / static_cast<double>(runs)
             : 0.0);
  }
  return 0;
}
