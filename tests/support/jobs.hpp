#pragma once
#include <string>

#include "blip/config/config.hpp"

namespace blip::test {

// A job as the job suites build one: "nightly", confirmed by one sample, with
// `settings` and the check-in `token`.
JobConfig job_config(JobSettings settings, const std::string& token);

}  // namespace blip::test
