#pragma once

namespace blip {

// "0.1.0-g6c9f4b2": scripts/version at configure time, or BLIP_VERSION_OVERRIDE
// (the container build, which has no .git). Shown by --version, /metrics'
// blip_build_info and summary.json.
extern const char* const kBlipVersion;

}  // namespace blip
