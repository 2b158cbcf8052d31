#include "support/jobs.hpp"

namespace blip::test {

JobConfig job_config(JobSettings settings, const std::string& token) {
  JobConfig config;
  config.name = "nightly";
  config.confirm = 1;
  settings.token = token;
  config.settings = settings;
  return config;
}

}  // namespace blip::test
