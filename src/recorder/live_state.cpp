#include "blip/recorder/live_state.hpp"

namespace blip {

std::string_view to_string(ConfirmedState state) {
  constexpr std::array<std::string_view, 3> kNames{"up", "degraded", "down"};
  return kNames[static_cast<size_t>(state)];
}

ConfirmedState ProbeLiveState::confirmed() const {
  if (open_outage) return ConfirmedState::down;
  if (open_brownout_start_ms) return ConfirmedState::degraded;
  return ConfirmedState::up;
}

void ProbeLiveState::observe(const Sample& sample) {
  last_sample = sample;
  ++samples_by_status[static_cast<size_t>(sample.status)];
  // Kept from the last handshake that showed a chain: a failed or blind attempt says nothing new.
  if (sample.cert_expiry_ms) cert_expiry_ms = sample.cert_expiry_ms;
  if (sample.status == Status::blind) return;
  const Phases& phases = sample.phases;
  const int64_t phase_us[] = {phases.dns_us, phases.connect_us, phases.tls_us,
                              phases.first_byte_us};
  int64_t before_transfer_us = 0;
  for (size_t i = 0; i < std::size(phase_us); ++i) {
    before_transfer_us += phase_us[i];
    if (phase_us[i] > 0) durations[i].observe(static_cast<double>(phase_us[i]) / 1e6);
  }
  // The answer's body arrived after its first byte; a probe without phases has no transfer to speak
  // of.
  if (sample.status != Status::down && phases.first_byte_us > 0 &&
      sample.latency_us > before_transfer_us) {
    durations[4].observe(static_cast<double>(sample.latency_us - before_transfer_us) / 1e6);
  }
  durations[5].observe(static_cast<double>(sample.latency_us) / 1e6);
}

}  // namespace blip
