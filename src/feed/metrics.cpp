// /metrics: Prometheus text exposition format 0.0.4, from the live snapshot only.
#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <array>

#include "blip/core/logging.hpp"
#include "blip/core/version.hpp"
#include "blip/feed/status_feed.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

// Label values escape backslash, double quote and newline.
std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double value) { return fmt::format("{}", value); }

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, const std::string& labels, double value) {
    out_ += labels.empty() ? fmt::format("{} {}\n", name, number(value))
                           : fmt::format("{}{{{}}} {}\n", name, labels, number(value));
  }
  void histogram(std::string_view name, const std::string& labels,
                 const MetricHistogram& histogram) {
    const std::string prefix = labels.empty() ? "" : labels + ",";
    uint64_t cumulative = 0;
    const auto bounds = histogram.upper_bounds();
    const auto& counts = histogram.bucket_counts();
    for (size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      const std::string le = i < bounds.size() ? number(bounds[i]) : "+Inf";
      out_ += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, prefix, le, cumulative);
    }
    sample(fmt::format("{}_sum", name), labels, histogram.sum());
    sample(fmt::format("{}_count", name), labels, static_cast<double>(histogram.count()));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string prometheus_metrics(const std::vector<ComponentConfig>& probes, const LiveSnapshot& live,
                               const FeedRefusals& refusals,
                               std::vector<double>& outage_seconds_floor) {
  outage_seconds_floor.resize(probes.size(), 0.0);
  std::vector<std::string> labels;
  for (const ComponentConfig& probe : probes) {
    labels.push_back(
        fmt::format("probe=\"{}\",type=\"{}\"", label_value(probe.name), label_value(probe.type)));
  }
  Exposition out;
  auto per_probe = [&](std::string_view name, std::string_view type, std::string_view help,
                       auto value_of) {
    out.family(name, type, help);
    for (size_t i = 0; i < probes.size(); ++i) {
      if (auto value = value_of(live.probes[i], i)) out.sample(name, labels[i], *value);
    }
  };
  using Value = std::optional<double>;

  out.family("blip_build_info", "gauge", "Always 1; the version label says which blip is running.");
  out.sample("blip_build_info", fmt::format("version=\"{}\"", label_value(kBlipVersion)), 1);
  per_probe("blip_probe_up", "gauge",
            "Whether the probe's last sample was answered (1) or down (0).",
            [](const ProbeLiveState& state, size_t) -> Value {
              if (!state.last_sample) return std::nullopt;
              return state.last_sample->status == Status::down ? 0.0 : 1.0;
            });
  per_probe("blip_probe_state", "gauge",
            "The probe's confirmed state: 0 up, 1 degraded (in a brownout), 2 down (in an outage).",
            [](const ProbeLiveState& state, size_t) -> Value {
              return static_cast<double>(state.confirmed());
            });
  per_probe("blip_last_sample_timestamp_seconds", "gauge",
            "When the probe's last sample was sent, Unix time.",
            [](const ProbeLiveState& state, size_t) -> Value {
              if (!state.last_sample) return std::nullopt;
              return static_cast<double>(state.last_sample->sent_ms) / 1000.0;
            });
  per_probe("blip_probe_tls_cert_expiry_timestamp_seconds", "gauge",
            "When the earliest certificate of the peer's chain expires (notAfter), Unix time, as "
            "of the probe's "
            "last TLS handshake.",
            [](const ProbeLiveState& state, size_t) -> Value {
              if (!state.cert_expiry_ms) return std::nullopt;
              return static_cast<double>(*state.cert_expiry_ms) / 1000.0;
            });
  per_probe("blip_job_running", "gauge",
            "Jobs only: 1 while a run the job reported as started has not ended.",
            [](const ProbeLiveState& state, size_t) -> Value {
              if (!state.job) return std::nullopt;
              return state.job->running_since_ms ? 1.0 : 0.0;
            });
  per_probe(
      "blip_job_last_run_duration_seconds", "gauge",
      "Jobs only: how long the last finished run took.",
      [](const ProbeLiveState& state, size_t) -> Value {
        if (!state.job || !state.job->last_run || !state.job->last_run->start_ms)
          return std::nullopt;
        return static_cast<double>(*state.job->last_run->end_ms - *state.job->last_run->start_ms) /
               1000.0;
      });
  per_probe("blip_probe_in_maintenance", "gauge",
            "1 while a maintenance window covers the probe (alerts held).",
            [](const ProbeLiveState& state, size_t) -> Value {
              return state.in_maintenance ? 1.0 : 0.0;
            });
  per_probe(
      "blip_outage_open", "gauge", "1 while the probe is in an outage.",
      [](const ProbeLiveState& state, size_t) -> Value { return state.open_outage ? 1.0 : 0.0; });
  per_probe("blip_outages_total", "counter",
            "Outages of the probe, ever, as stored (survives restarts).",
            [](const ProbeLiveState& state, size_t) -> Value {
              return static_cast<double>(state.outages_total);
            });
  per_probe("blip_outage_seconds_total", "counter",
            "Seconds the probe spent in outages, ever, as stored (survives restarts), including an "
            "open outage so far.",
            [&](const ProbeLiveState& state, size_t i) -> Value {
              double ms = static_cast<double>(state.closed_outage_ms);
              if (state.open_outage)
                ms += static_cast<double>(
                    std::max<int64_t>(0, live.taken_wall_ms - state.open_outage->start_ms));
              // An outage ends at its first answer, which may precede the snapshot that counted it
              // open.
              outage_seconds_floor[i] = std::max(outage_seconds_floor[i], ms / 1000.0);
              return outage_seconds_floor[i];
            });

  out.family("blip_probe_samples_total", "counter",
             "Samples by result since this blip process started.");
  // blind: in flight while blip itself stalled, so neither up nor down.
  static constexpr std::array<std::string_view, 4> kResults{"up", "degraded", "down", "blind"};
  for (size_t i = 0; i < probes.size(); ++i) {
    for (size_t result = 0; result < kResults.size(); ++result) {
      out.sample("blip_probe_samples_total",
                 fmt::format("{},result=\"{}\"", labels[i], kResults[result]),
                 static_cast<double>(live.probes[i].samples_by_status[result]));
    }
  }
  out.family("blip_probe_duration_seconds", "histogram",
             "Duration of each phase of the probe's attempts since this blip process started "
             "(blackbox_exporter's "
             "phase names; total includes timeouts).");
  for (size_t i = 0; i < probes.size(); ++i) {
    for (size_t phase = 0; phase < kMetricPhases.size(); ++phase) {
      out.histogram("blip_probe_duration_seconds",
                    fmt::format("{},phase=\"{}\"", labels[i], kMetricPhases[phase]),
                    live.probes[i].durations[phase]);
    }
  }

  out.family("blip_loop_lag_seconds", "histogram",
             "How late the event loop's 100 ms watch tick fired, since this blip process started.");
  out.histogram("blip_loop_lag_seconds", "", live.loop_lag);
  out.family("blip_blind_seconds_total", "counter",
             "Time blip could not see, by reason, ever, as stored (survives restarts).");
  std::map<std::string, double> blind = live.blind_seconds;
  for (const char* reason : {"not_running", "loop_stall", "clock_jump"})
    blind.try_emplace(reason, 0.0);
  for (const auto& [reason, seconds] : blind) {
    out.sample("blip_blind_seconds_total", fmt::format("reason=\"{}\"", label_value(reason)),
               seconds);
  }
  out.family("blip_store_pending_samples", "gauge",
             "Samples queued for the writer thread, not yet in the database.");
  out.sample("blip_store_pending_samples", "", static_cast<double>(live.store.queued_samples));
  out.family("blip_store_pending_bytes", "gauge", "About how much memory the queued samples take.");
  out.sample("blip_store_pending_bytes", "", static_cast<double>(live.store.queued_bytes));
  out.family("blip_store_dropped_samples_total", "counter",
             "Samples dropped, oldest first, because the queue was full while the database could "
             "not be written, "
             "since this blip process started (stored as store_dropped blind windows).");
  out.sample("blip_store_dropped_samples_total", "",
             static_cast<double>(live.store.dropped_samples));
  out.family("blip_store_flush_seconds", "histogram",
             "Duration of each write of the writer thread (one transaction), since this blip "
             "process started.");
  out.histogram("blip_store_flush_seconds", "", live.store.write_seconds);
  out.family(
      "blip_store_set_aside_timestamp_seconds", "gauge",
      "When this blip found its database damaged at start-up and moved it aside to begin a new one "
      "(Unix time; 0: it did not).");
  out.sample("blip_store_set_aside_timestamp_seconds", "",
             static_cast<double>(live.store.set_aside_at_ms) / 1000.0);
  out.family("blip_store_damaged_blocks_total", "counter",
             "Sample blocks found damaged while writing and begun anew (what they held of their "
             "minute is lost), "
             "since this blip process started.");
  out.sample("blip_store_damaged_blocks_total", "", static_cast<double>(live.store.damaged_blocks));
  // glibc's count over all its arenas, SQLite's share included (under sanitizers their allocator's,
  // not counted).
  const struct mallinfo2 heap = mallinfo2();
  out.family("blip_heap_in_use_bytes", "gauge",
             "Heap this blip process has allocated and not freed.");
  out.sample("blip_heap_in_use_bytes", "", static_cast<double>(heap.uordblks + heap.hblkhd));
  const SqliteMemory sqlite = sqlite_memory();
  out.family(
      "blip_store_sqlite_memory_bytes", "gauge",
      "Heap SQLite holds in this process (its page caches are bounded, 2 MiB a connection).");
  out.sample("blip_store_sqlite_memory_bytes", "", static_cast<double>(sqlite.used_bytes));
  out.family("blip_store_sqlite_page_cache_bytes", "gauge", "Of that, cached database pages.");
  out.sample("blip_store_sqlite_page_cache_bytes", "",
             static_cast<double>(sqlite.page_cache_bytes));
  out.family("blip_alerts_total", "counter",
             "Alert messages by kind and outcome (sent, failed, retried, dropped, held in "
             "maintenance, suppressed by a "
             "flapping rule) since this blip process started.");
  for (const AlertCountRow& row : live.alert_counts) {
    out.sample(
        "blip_alerts_total",
        fmt::format("kind=\"{}\",result=\"{}\"", label_value(row.kind), label_value(row.result)),
        static_cast<double>(row.count));
  }
  out.family("blip_heartbeats_total", "counter",
             "[[heartbeat]] beats by outcome: sent (a 2xx answer), failed (another answer, a "
             "network error, the last beat unanswered), withheld (blip not well: the store not "
             "writing).");
  for (const auto& [result, count] : live.heartbeat_counts)
    out.sample("blip_heartbeats_total", fmt::format("result=\"{}\"", label_value(result)),
               static_cast<double>(count));
  out.family("blip_remote_write_samples_total", "counter",
             "Points shipped to each remote-write endpoint by result: sent (acknowledged), "
             "retried (in a request that failed and is tried again), rejected (refused with a "
             "4xx: dropped), expired (pruned by --retain before they were sent).");
  for (const RemoteWriteStats& remote : live.remote_writes) {
    const std::pair<const char*, uint64_t> results[] = {{"sent", remote.sent},
                                                        {"retried", remote.retried},
                                                        {"rejected", remote.rejected},
                                                        {"expired", remote.expired}};
    for (const auto& [result, count] : results) {
      out.sample("blip_remote_write_samples_total",
                 fmt::format("url=\"{}\",result=\"{}\"", label_value(remote.endpoint), result),
                 static_cast<double>(count));
    }
  }
  // One value per endpoint each.
  struct EndpointFamily {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const RemoteWriteStats&);
  };
  static constexpr EndpointFamily kEndpointFamilies[] = {
      {"blip_remote_write_cpu_seconds_total", "counter",
       "CPU time each endpoint's sender thread has used (reading the store, encoding, sending).",
       [](const RemoteWriteStats& remote) { return remote.cpu_seconds; }},
      {"blip_remote_write_lag_seconds", "gauge",
       "How old the oldest stored sample not yet acknowledged by the endpoint is.",
       [](const RemoteWriteStats& remote) { return remote.lag_seconds; }},
      {"blip_remote_write_pending_samples", "gauge",
       "Stored samples the endpoint has not acknowledged yet (about: counted per minute).",
       [](const RemoteWriteStats& remote) { return static_cast<double>(remote.pending_samples); }}};
  for (const EndpointFamily& family : kEndpointFamilies) {
    out.family(family.name, family.type, family.help);
    for (const RemoteWriteStats& remote : live.remote_writes) {
      out.sample(family.name, fmt::format("url=\"{}\"", label_value(remote.endpoint)),
                 family.value(remote));
    }
  }
  out.family("blip_feed_refused_total", "counter",
             "Requests and connections the feed turned away, by face and reason: over the "
             "per-client connection "
             "limit, over the time a request may take, a Host not allowed on the private face, "
             "unknown-token guesses "
             "beyond their rate.");
  for (const Audience audience : {Audience::operator_view, Audience::public_view}) {
    for (int reason = 0; reason < FeedRefusals::kReasons; ++reason) {
      out.sample("blip_feed_refused_total",
                 fmt::format("face=\"{}\",reason=\"{}\"",
                             audience == Audience::public_view ? "public" : "private",
                             FeedRefusals::kReasonNames[reason]),
                 static_cast<double>(refusals.counts[static_cast<int>(audience)][reason].load(
                     std::memory_order_relaxed)));
    }
  }
  out.family("blip_log_dropped_total", "counter",
             "Log lines dropped because stderr did not take them in time (the queue in front of it "
             "was full, or "
             "writing failed), since this blip process started.");
  out.sample("blip_log_dropped_total", "", static_cast<double>(log_dropped_lines()));
  return out.take();
}

}  // namespace blip
