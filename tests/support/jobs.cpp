#include "support/jobs.hpp"

namespace blip::test {

ProbeConfig job_config(JobSettings settings, const std::string& token) {
  ProbeConfig config;
  config.name = "nightly";
  config.type = "job";
  config.confirm = 1;
  settings.token = token;
  config.settings = settings;
  return config;
}

}  // namespace blip::test
