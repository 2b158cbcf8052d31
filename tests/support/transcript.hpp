#pragma once

#include <string>
#include <string_view>

namespace blip::test {

// What blip said to the outside during a test — its log and output, the feed's
// and ping endpoints' responses — appended to $BLIP_TEST_TRANSCRIPTS/<test binary>.txt
// when that variable is set (ctest sets it), so that security_scan_test can search
// everything the whole suite saw for the test's secrets. Does nothing otherwise.
void keep_transcript(std::string_view what, std::string_view text);

}  // namespace blip::test
