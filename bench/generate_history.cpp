// Writes a realistic history into a blip database through blip's own
// SampleRecorder and Store (the code `blip run` uses): N probes sampling at
// R Hz for D days ending now, with an hourly incident (a backup's disk lock:
// the db probes first, the web probes a little later) and random
// single-probe outages. Used by bench/report_speed.sh and for the README's
// example of the pattern finding (--end and --seed make a history repeatable).
// An answered sample's phases are drawn on their own (log-normal each, as
// network times are) and its latency is their sum plus the rest of the
// attempt (a body read, a Postgres login), so no phase follows from another.
//
// The daemon flushes every second and rewrites the open minute's block each
// time; this flushes once a simulated minute, which leaves the same rows.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <random>

#include "blip/core/clock.hpp"
#include "blip/recorder/sample_recorder.hpp"
#include "blip/store/store.hpp"

int main(int argc, char** argv) {
  CLI::App app{"generate a blip history database"};
  std::string db_path = "history.db";
  int probes = 20;
  int rate_hz = 4;
  int days = 30;
  int incident_probes = 5;
  std::string end_text;
  uint64_t seed = 7;
  app.add_option("--db", db_path)->capture_default_str();
  app.add_option("--probes", probes)->capture_default_str();
  app.add_option("--rate", rate_hz, "samples per second per probe")->capture_default_str();
  app.add_option("--days", days)->capture_default_str();
  int minutes = 0;
  app.add_option("--minutes", minutes, "instead of --days: this many minutes");
  // Below 1 Hz: the feed reads rollups, hour totals and outages, whose number does not
  // depend on the rate, so a fleet's month is written in minutes at a sample a minute.
  int64_t interval_ms = 0;
  app.add_option("--interval-ms", interval_ms, "instead of --rate: the time between samples");
  int64_t stall_every_s = 3600;
  int64_t stall_for_s = 40;
  app.add_option("--stall-every", stall_every_s, "seconds between the stalls of the first probes")
      ->capture_default_str();
  app.add_option("--stall-for", stall_for_s, "how long each stall lasts, in seconds")
      ->capture_default_str();
  std::string vantage;
  app.add_option("--vantage", vantage, "the vantage name stored in the database");
  app.add_option("--incident-probes", incident_probes, "probes hit by the hourly stall")
      ->capture_default_str();
  app.add_option("--end", end_text, "when the history ends, ISO-8601 UTC (default: now)");
  app.add_option("--seed", seed, "for the random outages and latencies")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (interval_ms <= 0) interval_ms = 1000 / rate_hz;
  int64_t end_ms = blip::wall_now_ms();
  if (!end_text.empty() && !blip::parse_iso8601_ms(end_text, end_ms)) {
    std::cerr << "--end: cannot read \"" << end_text << "\" as an ISO-8601 UTC time\n";
    return 2;
  }

  std::vector<blip::ProbeConfig> configs(static_cast<size_t>(probes));
  for (int i = 0; i < probes; ++i) {
    auto& config = configs[static_cast<size_t>(i)];
    config.name = fmt::format("probe-{:02}", i);
    config.type = i % 2 ? "http" : "postgres";
    config.interval_ms = interval_ms;
    config.target_display = fmt::format("synthetic-{}", i);
  }
  blip::Store store(db_path, blip::Store::Mode::read_write);
  if (!vantage.empty()) store.set_vantage(vantage);
  blip::SampleRecorder recorder(store, configs, /*log_transitions=*/false);

  std::mt19937_64 random(seed);
  // Medians in ms: a fresh lookup and connection each time (blip's default), TLS for
  // the http probes; a Postgres probe's rest is its login. About 2 ms in all, as before.
  // The phases draw from their own generator; the outages' keeps the draws it always had
  // (one latency per answered sample, unused now), so a seed's outages and the README's
  // example history stay what they were.
  std::lognormal_distribution<double> legacy_latency_ms(std::log(2.0), 0.4);
  std::mt19937_64 phase_random(seed ^ 0x9e3779b97f4a7c15);
  std::lognormal_distribution<double> dns_ms(std::log(0.15), 0.5);
  std::lognormal_distribution<double> connect_ms(std::log(0.3), 0.4);
  std::lognormal_distribution<double> tls_ms(std::log(0.8), 0.3);
  std::lognormal_distribution<double> first_byte_ms(std::log(0.6), 0.5);
  std::lognormal_distribution<double> http_rest_ms(std::log(0.05), 0.5);
  std::lognormal_distribution<double> login_ms(std::log(0.8), 0.3);
  auto us = [](double ms) { return static_cast<int64_t>(ms * 1000.0); };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t start_ms = end_ms - (minutes > 0 ? static_cast<int64_t>(minutes) * 60'000
                                                 : static_cast<int64_t>(days) * 86'400'000);
  // Per probe: the end of its current random outage (one a day on average, 20-120 s).
  std::vector<int64_t> random_outage_until(static_cast<size_t>(probes), 0);
  const double outage_chance = static_cast<double>(interval_ms) / 86'400'000.0;
  // At a long --interval-ms an outage lasts at least three samples, so that each one is
  // stored as an outage (confirm = 2) whatever the rate.
  const int64_t shortest_down_ms = 3 * interval_ms;
  const int64_t stall_ms = std::max(stall_for_s * 1000, shortest_down_ms);

  const auto started = std::chrono::steady_clock::now();
  int64_t samples = 0;
  int64_t next_flush_ms = start_ms - start_ms % 60'000 + 60'000;
  for (int64_t t = start_ms; t < end_ms; t += interval_ms) {
    const int64_t into_period_ms = t % (stall_every_s * 1000);
    for (int i = 0; i < probes; ++i) {
      auto index = static_cast<size_t>(i);
      // Hourly (by default): at +00:05 the first probes stall for 40 s, each a little later
      // than the one before.
      const bool hourly = i < incident_probes && into_period_ms >= 5'000 + i * 800 &&
                          into_period_ms < 5'000 + stall_ms + i * 800;
      if (random_outage_until[index] < t && unit(random) < outage_chance) {
        random_outage_until[index] =
            t + std::max(20'000 + static_cast<int64_t>(unit(random) * 100'000), shortest_down_ms);
      }
      const bool down = hourly || random_outage_until[index] >= t;
      blip::Sample sample;
      sample.sent_ms =
          t + i * interval_ms / probes;  // probes spread over the interval, as the scheduler does
      if (down) {
        sample.status = blip::Status::down;
        sample.error = blip::ErrorClass::timeout;
        sample.detail = "no answer within 1s";
        sample.latency_us = 1'000'000;
      } else {
        legacy_latency_ms(random);
        blip::Phases& p = sample.phases;
        const bool http = configs[index].type == "http";
        p.dns_us = us(dns_ms(phase_random));
        p.connect_us = us(connect_ms(phase_random));
        p.tls_us = http ? us(tls_ms(phase_random)) : 0;
        p.first_byte_us = us(first_byte_ms(phase_random));
        const int64_t rest_us = us(http ? http_rest_ms(phase_random) : login_ms(phase_random));
        sample.latency_us = p.dns_us + p.connect_us + p.tls_us + p.first_byte_us + rest_us;
      }
      recorder.record(index, sample);
      ++samples;
    }
    if (t >= next_flush_ms) {
      store.flush(t);
      next_flush_ms += 60'000;
    }
  }
  store.flush(end_ms);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << fmt::format(
      "samples={} probes={} days={} seconds={:.1f} samples_per_second={:.0f}\n", samples, probes,
      days, seconds, static_cast<double>(samples) / seconds);
  return 0;
}
