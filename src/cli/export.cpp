// `blip export`: the stored raw samples of a range, as JSON lines, CSV, or the OpenMetrics
// series the remote-write sender ships (for `promtool tsdb create-blocks-from openmetrics`).
// The samples are read through the sender's SpanReader, a bounded chunk at a time.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <ostream>

#include "blip/cli/commands.hpp"
#include "blip/cli/common.hpp"
#include "blip/core/clock.hpp"
#include "blip/remote/series.hpp"
#include "blip/store/store.hpp"

namespace blip {
namespace {

// Samples read at a time (whole minutes: at 4 Hz about 40 minutes of a probe).
constexpr size_t kChunkSamples = 10'000;

double ms_of(int64_t us) { return static_cast<double>(us) / 1000.0; }

std::string error_text(const Sample& sample) {
  return sample.error == ErrorClass::none ? std::string() : std::string(to_string(sample.error));
}

void append_jsonl(std::string& text, const StoredComponent& probe, const std::string& vantage,
                  const Sample& sample) {
  const std::string error = error_text(sample);
  nlohmann::ordered_json line{
      {"sent_at", format_iso8601_ms(sample.sent_ms)},
      {"sent_ms", sample.sent_ms},
      {"probe", probe.name},
      {"type", probe.type},
      {"vantage", vantage},
      {"status", to_string(sample.status)},
      {"latency_ms", ms_of(sample.latency_us)},
      {"phases",
       {{"dns_ms", ms_of(sample.phases.dns_us)},
        {"connect_ms", ms_of(sample.phases.connect_us)},
        {"tls_ms", ms_of(sample.phases.tls_us)},
        {"first_byte_ms", ms_of(sample.phases.first_byte_us)}}},
      {"error", error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(error)},
      {"detail", sample.detail}};
  // Stored details are clean UTF-8 (sanitize_target_text); replace rather than fail if not.
  text += line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  text += '\n';
}

constexpr const char* kCsvHeader =
    "sent_at,sent_ms,probe,type,vantage,status,latency_ms,dns_ms,connect_ms,tls_ms,"
    "first_byte_ms,error,detail\n";

void append_csv(std::string& text, const StoredComponent& probe, const std::string& vantage,
                const Sample& sample) {
  text +=
      fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", format_iso8601_ms(sample.sent_ms),
                  sample.sent_ms, csv_field(probe.name), csv_field(probe.type), csv_field(vantage),
                  to_string(sample.status), ms_of(sample.latency_us), ms_of(sample.phases.dns_us),
                  ms_of(sample.phases.connect_us), ms_of(sample.phases.tls_us),
                  ms_of(sample.phases.first_byte_us), error_text(sample), csv_field(sample.detail));
}

// Reads one probe's range a chunk at a time, handing each span to `each` (which returns false
// to stop).
template <typename Each>
void read_range(const SpanReader& reader, const StoredComponent& probe, const ReportRange& range,
                bool with_details, Each&& each) {
  int64_t after_ms = range.from_ms - 1;
  while (true) {
    ProbeSpan span = reader.read(probe, after_ms, range.to_ms, kChunkSamples, 0, with_details);
    if (span.next_after_ms == span.after_ms || !each(span)) return;
    after_ms = span.next_after_ms;
  }
}

}  // namespace

int run_export(const ExportOptions& options, std::ostream& out, std::ostream& err) {
  if (options.format != "jsonl" && options.format != "csv" && options.format != "openmetrics") {
    err << fmt::format("--format: expected jsonl, csv or openmetrics, got \"{}\"\n",
                       options.format);
    return kExitUsage;
  }
  auto range = resolve_range(options.since, options.from, options.to, err);
  if (!range) return kExitUsage;
  try {
    Store store(options.db_path, Store::Mode::read_only);
    if (!options.probe.empty() &&
        !known_probe_or_report(store, options.probe, options.db_path, err))
      return kExitUsage;
    const std::string vantage = store.vantage();
    const SpanReader reader(store);
    std::vector<StoredComponent> probes;
    for (StoredComponent& probe : store.components()) {
      if (options.probe.empty() || probe.name == options.probe) probes.push_back(std::move(probe));
    }
    if (options.format == "openmetrics") {
      // A family's series must stand together: the whole range is held, then written.
      std::vector<Series> series;
      for (const StoredComponent& probe : probes) {
        read_range(reader, probe, *range, false, [&](const ProbeSpan& span) {
          append_probe_series(span, vantage, series);
          return true;
        });
      }
      append_blind_series(store.blind_windows(range->from_ms, range->to_ms), vantage, series);
      write_openmetrics(series, out);
    } else {
      const bool csv = options.format == "csv";
      if (csv) out << kCsvHeader;
      std::string text;
      for (const StoredComponent& probe : probes) {
        // A reader gone (a closed pipe) or a full disk: no need to read the rest.
        if (!out) break;
        read_range(reader, probe, *range, true, [&](const ProbeSpan& span) {
          text.clear();
          for (const Sample& sample : span.samples) {
            if (csv) {
              append_csv(text, probe, vantage, sample);
            } else {
              append_jsonl(text, probe, vantage, sample);
            }
          }
          out << text;
          return static_cast<bool>(out);
        });
      }
    }
    out.flush();
    if (!out) {
      // A reader that went away (`| head`) knows why; anything else (a full disk) is said.
      if (errno != EPIPE) err << "cannot write the export: " << std::strerror(errno) << '\n';
      return kExitUsage;
    }
  } catch (const StoreError& error) {
    err << error.what() << '\n';
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace blip
