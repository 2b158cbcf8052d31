#include "blip/core/local_time.hpp"

#include <string>

#include "blip/core/clock.hpp"

namespace blip {

const date::time_zone* locate_time_zone(std::string_view name) {
  const std::string zone(name);
  if (!known_time_zone(zone)) return nullptr;
  try {
    return date::locate_zone(zone);
  } catch (...) {  // unknown to date, or no readable tzdata at all
    return nullptr;
  }
}

date::sys_seconds resolve_local_time(const date::time_zone& zone, date::local_seconds local) {
  const date::local_info info = zone.get_info(local);
  switch (info.result) {
    case date::local_info::nonexistent:
      return info.first.end;           // the transition: the gap's end in local time
    case date::local_info::ambiguous:  // `first` is the period before the fall-back
    case date::local_info::unique:
    default:
      return date::sys_seconds{local.time_since_epoch() - info.first.offset};
  }
}

}  // namespace blip
