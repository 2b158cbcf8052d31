// The config loader on one probes.d file's text: TOML (toml++), then every
// table's keys validated into probes, jobs, alerts, maintenance windows,
// remote writes and the page, with ${ENV} expansion, durations, cron schedules and times. Any
// text gives a config or errors with a position, never a crash; a config
// without errors holds only what validation promises.
#include <cstdlib>
#include <set>
#include <string>

#include "blip/config/config.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("BLIP_FUZZ_HOST", "127.0.0.1", 1);
  setenv("BLIP_FUZZ_EMPTY", "", 1);
  // No PGSERVICE or PGHOST from the machine: the same input, the same result.
  unsetenv("PGSERVICE");
  unsetenv("PGHOST");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = blip::fuzz::as_text(data, size);
  // In a directory that does not exist, so a relative password_file or ca_file reads nothing.
  const blip::LoadedConfig loaded =
      blip::load_config_text(text, "/nonexistent/blip-fuzz/probes.d/fuzz.toml");
  for (const blip::ConfigError& error : loaded.errors) {
    if (error.message.empty()) blip::fuzz::contract_broken("an error without a message");
    error.to_string();
  }
  if (!loaded.ok()) return 0;
  std::set<std::string> names;
  for (const blip::ComponentRef& component : loaded.components()) {
    if (component->name.empty() || !names.insert(component->name).second)
      blip::fuzz::contract_broken("probe names");
    if (const blip::ProbeConfig* probe = component.probe()) {
      if (probe->interval_ms < blip::kMinimumIntervalMs)
        blip::fuzz::contract_broken("interval below the minimum");
      if (probe->timeout_ms <= 0 || probe->timeout_ms > blip::kMaximumTimeoutMs)
        blip::fuzz::contract_broken("timeout");
      if (probe->attempts_in_flight() > blip::kMaxAttemptsInFlight)
        blip::fuzz::contract_broken("attempts in flight");
    }
    if (component->confirm < 1 || component->confirm > 1000)
      blip::fuzz::contract_broken("confirm out of range");
  }
  std::set<std::string> remote_write_urls;
  for (const blip::RemoteWriteConfig& remote : loaded.remote_writes) {
    if (!remote.url.starts_with("http://") && !remote.url.starts_with("https://"))
      blip::fuzz::contract_broken("remote_write url scheme");
    if (!remote_write_urls.insert(remote.url).second)
      blip::fuzz::contract_broken("remote_write urls");
    if (remote.timeout_ms <= 0 || remote.timeout_ms > 60'000)
      blip::fuzz::contract_broken("remote_write timeout");
  }
  return 0;
}
