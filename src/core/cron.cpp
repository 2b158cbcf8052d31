#include "blip/core/cron.hpp"

#include <fmt/format.h>

#include <array>
#include <bit>
#include <charconv>
#include <vector>

#include "blip/core/local_time.hpp"

namespace blip {

// Each field as a bit set of the values it allows (bit n: value n).
struct CronSchedule::Fields {
  uint64_t minutes = 0;  // 0-59
  uint32_t hours = 0;    // 0-23
  uint32_t days = 0;     // 1-31
  uint16_t months = 0;   // 1-12
  uint8_t weekdays = 0;  // 0-6, 0 = Sunday
  // Vixie cron's rule: a day field written starting with "*" (also "*/2") does
  // not count as restricted, and then a day must match both fields; when both
  // are restricted it must match either.
  bool days_star = false;
  bool weekdays_star = false;
  const date::time_zone* zone = nullptr;
};

namespace {

struct FieldSpec {
  std::string_view label;
  int min;
  int max;
  const std::array<std::string_view, 12>* names;  // value min + i, or null
  int name_count;
};

constexpr std::array<std::string_view, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> kWeekdayNames{"sun", "mon", "tue", "wed",
                                                         "thu", "fri", "sat"};

// Day of week allows 7 as another Sunday; it is folded into 0 after parsing.
const std::array<FieldSpec, 5> kFieldSpecs{{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, &kMonthNames, 12},
    {"day-of-week", 0, 7, &kWeekdayNames, 7},
}};

struct Macro {
  std::string_view name;
  std::string_view fields;
};
constexpr std::array<Macro, 7> kMacros{{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

constexpr int kSearchYears = 5;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Parses one field into a bit set; on failure sets `error` to
// `<label> field "<bad part>": <problem>`.
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string* error) : spec_(spec), error_(error) {}

  std::optional<uint64_t> parse(std::string_view field) {
    uint64_t bits = 0;
    size_t start = 0;
    while (true) {
      size_t comma = field.find(',', start);
      std::string_view item = field.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (item.empty()) return fail(field, "empty list item");
      auto item_bits = parse_item(item);
      if (!item_bits) return std::nullopt;
      bits |= *item_bits;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return bits;
  }

 private:
  std::nullopt_t fail(std::string_view part, std::string_view problem) {
    if (error_) *error_ = fmt::format("{} field \"{}\": {}", spec_.label, part, problem);
    return std::nullopt;
  }

  std::string range_text() const { return fmt::format("out of range {}-{}", spec_.min, spec_.max); }

  // A number or (in the month and day-of-week fields) a three-letter name.
  std::optional<int> parse_value(std::string_view text, std::string_view item) {
    if (text.empty()) return fail(item, "missing number");
    if (is_letter(text.front())) {
      if (spec_.names == nullptr) return fail(text, "not a number");
      for (int i = 0; i < spec_.name_count; ++i) {
        if (equals_ignoring_case(text, (*spec_.names)[static_cast<size_t>(i)]))
          return spec_.min + i;
      }
      return fail(text, fmt::format("unknown name (use {}-{})", (*spec_.names)[0],
                                    (*spec_.names)[static_cast<size_t>(spec_.name_count - 1)]));
    }
    int value = 0;
    auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (problem == std::errc::result_out_of_range) return fail(text, range_text());
    if (problem != std::errc() || end != text.data() + text.size())
      return fail(text, "not a number");
    if (value < spec_.min || value > spec_.max) return fail(text, range_text());
    return value;
  }

  // "*", "N", "N-M", each with an optional "/STEP"; "N/STEP" means N through the maximum.
  std::optional<uint64_t> parse_item(std::string_view item) {
    std::string_view range = item;
    int step = 1;
    bool stepped = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      std::string_view step_text = item.substr(slash + 1);
      const int max_step = spec_.max - spec_.min + 1;
      auto [end, problem] =
          std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || problem != std::errc() ||
          end != step_text.data() + step_text.size() || step < 1 || step > max_step) {
        return fail(item, fmt::format("bad step, must be a number 1-{}", max_step));
      }
      stepped = true;
    }
    int first = spec_.min;
    int last = spec_.max;
    if (range != "*") {
      size_t dash = range.find('-');
      auto low = parse_value(range.substr(0, dash), item);
      if (!low) return std::nullopt;
      first = *low;
      if (dash != std::string_view::npos) {
        auto high = parse_value(range.substr(dash + 1), item);
        if (!high) return std::nullopt;
        last = *high;
        if (last < first) return fail(range, "range goes backwards");
      } else if (!stepped) {
        last = first;
      }
    }
    uint64_t bits = 0;
    for (int value = first; value <= last; value += step) bits |= uint64_t{1} << value;
    return bits;
  }

  const FieldSpec& spec_;
  std::string* error_;
};

// The lowest allowed value >= `from`, or -1.
int next_allowed(uint64_t bits, int from) {
  if (from > 63) return -1;
  uint64_t rest = bits & (~uint64_t{0} << from);
  return rest == 0 ? -1 : std::countr_zero(rest);
}

}  // namespace

std::optional<CronSchedule> CronSchedule::parse(std::string_view expression,
                                                std::string_view time_zone, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<CronSchedule> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  std::vector<std::string_view> fields = split_fields(expression);
  if (fields.empty()) return fail("empty cron expression (like \"30 2 * * *\" or \"@daily\")");
  if (fields.front().front() == '@') {
    const Macro* macro = nullptr;
    for (const Macro& candidate : kMacros) {
      if (equals_ignoring_case(fields.front(), candidate.name)) macro = &candidate;
    }
    if (macro == nullptr) {
      return fail(
          fmt::format("unknown macro \"{}\" (use @hourly, @daily, @midnight, @weekly, @monthly, "
                      "@yearly or @annually)",
                      fields.front()));
    }
    if (fields.size() > 1) return fail(fmt::format("\"{}\" takes no other fields", fields.front()));
    fields = split_fields(macro->fields);
  }
  if (fields.size() != 5) {
    return fail(fmt::format(
        "expected 5 fields (minute hour day-of-month month day-of-week), got {}", fields.size()));
  }
  auto parsed = std::make_shared<Fields>();
  std::array<uint64_t, 5> bits{};
  for (size_t i = 0; i < 5; ++i) {
    auto field_bits = FieldParser(kFieldSpecs[i], error).parse(fields[i]);
    if (!field_bits) return std::nullopt;
    bits[i] = *field_bits;
  }
  parsed->minutes = bits[0];
  parsed->hours = static_cast<uint32_t>(bits[1]);
  parsed->days = static_cast<uint32_t>(bits[2]);
  parsed->months = static_cast<uint16_t>(bits[3]);
  uint64_t weekdays = bits[4];
  if (weekdays & (uint64_t{1} << 7)) weekdays = (weekdays | 1) & 0x7f;  // 7 is Sunday too
  parsed->weekdays = static_cast<uint8_t>(weekdays);
  parsed->days_star = fields[2].front() == '*';
  parsed->weekdays_star = fields[4].front() == '*';
  parsed->zone = locate_time_zone(time_zone);
  if (parsed->zone == nullptr) {
    return fail(fmt::format("unknown time zone \"{}\" (like Europe/Berlin or Etc/UTC)", time_zone));
  }
  return CronSchedule(std::string(expression), std::move(parsed));
}

std::optional<int64_t> CronSchedule::next_after(int64_t wall_ms) const {
  using namespace std::chrono;
  const Fields& f = *fields_;
  const date::time_zone& zone = *f.zone;
  const auto wall = sys_time<milliseconds>{milliseconds{wall_ms}};
  // Local times map to instants in order (a gap's times to its end, a repeated
  // hour's to their first occurrence), so no local minute before this one can
  // map after `wall`; later ones may still map before it (a repeated hour).
  const date::local_seconds local_now = zone.to_local(floor<seconds>(wall));
  date::local_days day = floor<days>(local_now);
  const auto time_of_day = local_now - day;
  int hour = static_cast<int>(duration_cast<hours>(time_of_day).count());
  int minute = static_cast<int>(duration_cast<minutes>(time_of_day).count() % 60);
  const date::local_days last_day = day + days{kSearchYears * 366};

  auto next_day = [&] {
    day += days{1};
    hour = 0;
    minute = 0;
  };
  while (day <= last_day) {
    const date::year_month_day date{day};
    const auto month = static_cast<int>(static_cast<unsigned>(date.month()));
    if (!(f.months & (1u << month))) {
      day =
          date::local_days{date::year_month_day{date.year() / date.month() / 1} + date::months{1}};
      hour = 0;
      minute = 0;
      continue;
    }
    const bool day_allowed = f.days & (1u << static_cast<unsigned>(date.day()));
    const bool weekday_allowed = f.weekdays & (1u << date::weekday{day}.c_encoding());
    const bool matches = (f.days_star || f.weekdays_star) ? (day_allowed && weekday_allowed)
                                                          : (day_allowed || weekday_allowed);
    if (!matches) {
      next_day();
      continue;
    }
    const int allowed_hour = next_allowed(f.hours, hour);
    if (allowed_hour < 0) {
      next_day();
      continue;
    }
    if (allowed_hour != hour) {
      hour = allowed_hour;
      minute = 0;
    }
    const int allowed_minute = next_allowed(f.minutes, minute);
    if (allowed_minute < 0) {
      minute = 0;
      if (++hour > 23) next_day();
      continue;
    }
    minute = allowed_minute;
    const date::local_seconds candidate = day + hours{hour} + minutes{minute};
    const date::sys_seconds instant = resolve_local_time(zone, candidate);
    if (instant > wall) return duration_cast<milliseconds>(instant.time_since_epoch()).count();
    if (++minute > 59) {
      minute = 0;
      if (++hour > 23) next_day();
    }
  }
  return std::nullopt;
}

}  // namespace blip
