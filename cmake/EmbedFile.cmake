# Turns a file into a C++ source defining `const std::string_view SYMBOL` in
# namespace blip, so the binary serves it without reading any file.
# cmake -DINPUT=page.html -DOUTPUT=page.cpp -DSYMBOL=kStatusPageHtml -P EmbedFile.cmake
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${name} by cmake/EmbedFile.cmake; do not edit.
#include <string_view>
namespace blip {
namespace {
const unsigned char kBytes[] = {${bytes}};
}  // namespace
extern const std::string_view ${SYMBOL};
const std::string_view ${SYMBOL}(reinterpret_cast<const char*>(kBytes), sizeof kBytes);
}  // namespace blip
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
