// Runs after every other test (a ctest cleanup fixture): searches everything blip
// said during the suite — the transcripts tests/support keeps of its logs, its
// output (reports included) and every HTTP response from its feed, metrics and
// ping endpoints — for the secrets the tests gave it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> secrets() {
  std::vector<std::string> out;
  std::ifstream in(std::string(BLIP_TESTDATA) + "/secrets.txt");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') out.push_back(line);
  }
  return out;
}

// The line of `text` around `at`, for the failure message.
std::string line_at(const std::string& text, size_t at) {
  const size_t begin = text.rfind('\n', at);
  const size_t end = text.find('\n', at);
  return text.substr(begin == std::string::npos ? 0 : begin + 1,
                     end == std::string::npos ? std::string::npos
                                              : end - (begin == std::string::npos ? 0 : begin + 1));
}

// The "==== Suite.Test: what" header a transcript entry starts with.
std::string entry_at(const std::string& text, size_t at) {
  const size_t header = text.rfind("==== ", at);
  return header == std::string::npos ? "?" : line_at(text, header);
}

TEST(SecurityScan, EverySecretIsStillUsedByATest) {
  std::string sources;
  // The suites, in their folders under tests/ (not support/: a secret there is used by no test
  // yet).
  for (const auto& entry : std::filesystem::recursive_directory_iterator(BLIP_TEST_SOURCES)) {
    if (entry.path().parent_path().filename() == "support") continue;
    if (entry.path().extension() == ".cpp") sources += read_all(entry.path());
  }
  const std::vector<std::string> list = secrets();
  ASSERT_GE(list.size(), 10u);
  for (const std::string& secret : list) {
    EXPECT_NE(sources.find(secret), std::string::npos)
        << secret << " is in secrets.txt but no test uses it";
  }
}

TEST(SecurityScan, NoSecretInAnythingBlipSaidDuringTheSuite) {
  const char* dir = std::getenv("BLIP_TEST_TRANSCRIPTS");
  ASSERT_TRUE(dir && *dir) << "run through ctest, which sets BLIP_TEST_TRANSCRIPTS";
  // A subset of the suite (ctest -R) whose tests never started blip leaves nothing; the whole
  // suite always does, and the count printed below says how much was searched.
  if (!std::filesystem::is_directory(dir) || std::filesystem::is_empty(dir)) {
    GTEST_SKIP() << "no test that ran left a transcript in " << dir;
  }
  size_t files = 0, bytes = 0, responses = 0, outputs = 0;
  const std::vector<std::string> list = secrets();
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string text = read_all(entry.path());
    ++files;
    bytes += text.size();
    for (size_t at = text.find(": http response\n"); at != std::string::npos;
         at = text.find(": http response\n", at + 1)) {
      ++responses;
    }
    for (size_t at = text.find(": blip output "); at != std::string::npos;
         at = text.find(": blip output ", at + 1)) {
      ++outputs;
    }
    for (const std::string& secret : list) {
      for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 1)) {
        ADD_FAILURE() << secret << " in " << entry.path().filename().string() << ", "
                      << entry_at(text, at) << "\n  " << line_at(text, at);
      }
    }
  }
  EXPECT_GT(outputs + responses, 0u) << "transcripts with no entry in " << dir;
  std::cout << "searched " << files << " test binaries' transcripts: " << outputs
            << " blip logs and outputs, " << responses << " HTTP responses, " << bytes / 1024
            << " KiB, for " << list.size() << " secrets\n";
}

}  // namespace
