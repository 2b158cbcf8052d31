#pragma once
#include <cstdint>
#include <string_view>

namespace blip {

// Raises the soft limit on open files to the hard limit; returns the limit now in force.
int64_t raise_open_files_limit();

// Descriptors the process has open now (-1 when it cannot even look: itself a sign it has none
// left).
int64_t open_descriptor_count();

// True when a failed attempt's detail says blip itself ran out of descriptors
// (EMFILE/ENFILE) and blip is at its limit: then the attempt says nothing about
// the target (a server's own "Too many open files" is not blip's).
bool out_of_descriptors(std::string_view detail);

}  // namespace blip
