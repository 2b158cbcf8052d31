#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blip {

// `blind`: blip itself stalled while the attempt was in flight, so the
// result says nothing about the target: neither up nor down, no latency.
enum class Status : uint8_t { up = 0, degraded = 1, down = 2, blind = 3 };

// Why a sample was down. Stored as a number: append only, never renumber.
enum class ErrorClass : uint8_t {
  none = 0,
  timeout = 1,
  refused = 2,
  dns = 3,
  tls = 4,
  http_status = 5,
  body_mismatch = 6,
  body_too_large = 7,
  redirects = 8,
  reset = 9,
  protocol = 10,
  auth = 11,
  lag = 12,
  query = 13,
  unreachable = 14,
  internal = 15,
  replication = 16,  // not a streaming standby, or too few replicas
  late = 17,         // a job: no start by its schedule plus grace
  overrunning = 18,  // a job: a run longer than max_run
  failed = 19,       // a job: its last run ended with a non-zero exit status
};
inline constexpr uint8_t kErrorClassCount = 20;

std::string_view to_string(Status status);
std::string_view to_string(ErrorClass error);
std::optional<Status> parse_status(std::string_view text);
std::optional<ErrorClass> parse_error_class(std::string_view text);

// Text a target sent (a server's error message, a Redis reply) made safe for a
// terminal, a log line, JSON and a report: control characters (C0, DEL, C1,
// so no ANSI escape) become spaces or go, invalid UTF-8 becomes U+FFFD, and at
// most `max_bytes` are kept (cut on a character boundary, marked with "…").
inline constexpr size_t kMaxDetailBytes = 300;
// Takes its text by value: a clean detail (the usual case) is returned as it came.
std::string sanitize_target_text(std::string text, size_t max_bytes = kMaxDetailBytes);

// Durations of the phases of one attempt, in microseconds (0 when a phase did not happen).
struct Phases {
  int64_t dns_us = 0;
  int64_t connect_us = 0;
  int64_t tls_us = 0;
  int64_t first_byte_us = 0;  // request sent until the first response byte
};

// What a probe reports about one attempt; the scheduler adds the timing.
struct ProbeResult {
  bool ok = false;
  ErrorClass error = ErrorClass::none;
  Phases phases;
  std::string detail;  // short, human-readable, never a secret
  // Answered, but with a warning of the probe's own (a certificate close to
  // its expiry): the sample is degraded whatever its latency.
  bool degraded = false;
  // The earliest notAfter of the peer's certificate chain (Unix ms), when the
  // attempt spoke TLS; for the live state and /metrics, never stored.
  std::optional<int64_t> cert_expiry_ms;
  // blip itself had no descriptor for the attempt (socket() failed with EMFILE or ENFILE): the
  // attempt says nothing about the target, whatever the descriptor count is by the time it is read.
  bool no_socket = false;

  static ProbeResult success(Phases phases = {}, std::string detail = {}) {
    return {true, ErrorClass::none, phases, std::move(detail), false, std::nullopt};
  }
  static ProbeResult failure(ErrorClass error, std::string detail, Phases phases = {}) {
    return {false, error, phases, std::move(detail), false, std::nullopt};
  }
};

// One probe attempt as stored.
struct Sample {
  int64_t sent_ms = 0;     // wall clock when the attempt started
  int64_t latency_us = 0;  // monotonic time from start to answer (or to the timeout)
  Status status = Status::up;
  ErrorClass error = ErrorClass::none;
  Phases phases;
  std::string detail;
  // As in ProbeResult: the live state and /metrics read it; the sample codec does not store it.
  std::optional<int64_t> cert_expiry_ms;
  // Monotonic send time (µs), in memory only (0: unknown): an outage's length when the wall clock
  // stepped back.
  int64_t sent_mono_us = 0;

  // When the answer came (wall clock), which is what ends an outage.
  int64_t completed_ms() const { return sent_ms + latency_us / 1000; }
};

}  // namespace blip

namespace blip {

// A span of time in which blip could not see: it was not running, its event
// loop stalled, or the wall clock jumped. Never counted as up or as down.
struct BlindWindow {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::string reason;  // "not_running", "loop_stall", "clock_jump"
};

}  // namespace blip
