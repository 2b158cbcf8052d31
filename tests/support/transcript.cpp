#include "support/transcript.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace blip::test {

void keep_transcript(std::string_view what, std::string_view text) {
  const char* dir = std::getenv("BLIP_TEST_TRANSCRIPTS");
  if (!dir || !*dir || text.empty()) return;
  static std::mutex mutex;  // responses can come from several client threads
  const std::lock_guard lock(mutex);
  const testing::TestInfo* test = testing::UnitTest::GetInstance()->current_test_info();
  const std::string name =
      test ? std::string(test->test_suite_name()) + "." + test->name() : "(no test)";
  std::error_code ignored;
  std::filesystem::create_directories(dir, ignored);
  std::ofstream out(std::string(dir) + "/" + program_invocation_short_name + ".txt", std::ios::app);
  out << "==== " << name << ": " << what << "\n" << text << "\n";
}

}  // namespace blip::test
