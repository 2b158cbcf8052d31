// Badges: plain SVG written here, and shields.io's endpoint document, from
// what the Statuspage documents already show of a component.
#include "blip/feed/badge.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "blip/core/utf8.hpp"

namespace blip {
namespace {

// What XML 1.0 cannot carry at all (a control character, U+FFFE, U+FFFF), as U+FFFD.
char32_t carried_in_xml(char32_t code) {
  if ((code < 0x20 && code != '\t') || code == 0x7F || code == 0xFFFE || code == 0xFFFF)
    return kReplacementCharacter;
  return code;
}

// Advance widths at 11 px in DejaVu Sans, in hundredths of a pixel, as Chromium
// measures them (canvas measureText with font "11px DejaVu Sans", one character
// at a time; docs/feed.md, "Badges", has the page that prints them). Verdana,
// which shields.io measures, is not free to ship or to measure on Linux; DejaVu
// Sans is the font Linux browsers fall back to for it, and is about as wide.
constexpr std::array<uint16_t, 0x7F - 0x20> kAsciiWidths{
    350,  441, 506, 922, 700, 1045, 858, 302,  429, 429, 550, 922, 350, 397,  350, 371,
    700,  700, 700, 700, 700, 700,  700, 700,  700, 700, 371, 371, 922, 922,  922, 584,
    1100, 752, 755, 768, 847, 695,  633, 852,  827, 324, 324, 721, 613, 949,  823, 866,
    663,  866, 764, 698, 672, 805,  752, 1088, 754, 672, 754, 429, 371, 429,  922, 550,
    550,  674, 698, 605, 698, 677,  387, 698,  697, 306, 306, 637, 306, 1072, 697, 673,
    698,  698, 452, 573, 431, 697,  651, 900,  651, 651, 577, 700, 371, 700,  922};
// U+00A0 to U+017F: Latin-1 and Latin Extended-A.
constexpr std::array<uint16_t, 0x180 - 0xA0> kLatinWidths{
    350, 441, 700,  700,  700,  700, 371,  550, 550, 1100, 518, 673, 922,  0,    1100, 550,
    550, 922, 441,  441,  550,  700, 700,  350, 550, 441,  518, 673, 1066, 1066, 1066, 584,
    752, 752, 752,  752,  752,  752, 1072, 768, 695, 695,  695, 695, 324,  324,  324,  324,
    852, 823, 866,  866,  866,  866, 866,  922, 866, 805,  805, 805, 805,  672,  665,  693,
    674, 674, 674,  674,  674,  674, 1080, 605, 677, 677,  677, 677, 306,  306,  306,  306,
    673, 697, 673,  673,  673,  673, 673,  922, 673, 697,  697, 697, 697,  651,  698,  651,
    752, 674, 752,  674,  752,  674, 768,  605, 768, 605,  768, 605, 768,  605,  847,  698,
    852, 698, 695,  677,  695,  677, 695,  677, 695, 677,  695, 677, 852,  698,  852,  698,
    852, 698, 852,  698,  827,  697, 1008, 764, 324, 306,  324, 306, 324,  306,  324,  306,
    324, 306, 649,  611,  324,  306, 721,  637, 637, 613,  306, 613, 306,  613,  413,  613,
    376, 618, 313,  823,  697,  823, 697,  823, 697, 895,  823, 697, 866,  673,  866,  673,
    866, 673, 1177, 1125, 764,  452, 764,  452, 764, 452,  698, 573, 698,  573,  698,  573,
    698, 573, 672,  431,  672,  431, 672,  431, 805, 697,  805, 697, 805,  697,  805,  697,
    805, 697, 805,  697,  1088, 900, 672,  651, 672, 754,  577, 754, 577,  754,  577,  387};
// A short list leaves zeros at the end: each table ends on its last character's width.
static_assert(kAsciiWidths.back() == 922 && kLatinWidths.back() == 387);
// Beyond the tables: a full em for East Asian wide characters and emoji, nothing for
// combining marks, and for the rest a width on the wide side of a Latin letter
// (too wide spaces the letters out; too narrow would squeeze them).
constexpr uint16_t kWideWidth = 1100;
constexpr uint16_t kOtherWidth = 800;

uint16_t width_of(char32_t code) {
  if (code >= 0x20 && code < 0x7F) return kAsciiWidths[code - 0x20];
  if (code >= 0xA0 && code < 0x180) return kLatinWidths[code - 0xA0];
  if (code >= 0x300 && code < 0x370) return 0;
  const bool wide = (code >= 0x1100 && code < 0x1160) || (code >= 0x2E80 && code < 0xA4D0) ||
                    (code >= 0xAC00 && code < 0xD7A4) || (code >= 0xF900 && code < 0xFB00) ||
                    (code >= 0xFE30 && code < 0xFE50) || (code >= 0xFF00 && code < 0xFF61) ||
                    (code >= 0xFFE0 && code < 0xFFE7) || (code >= 0x1F300 && code < 0x1FB00) ||
                    code >= 0x20000;
  return wide ? kWideWidth : kOtherWidth;
}

constexpr int kPadding = 5;  // either side of each half's text
constexpr std::string_view kLabelGrey = "#555";

std::string latency_text(int64_t latency_us) {
  if (latency_us < 10'000) return fmt::format("{:.1f} ms", static_cast<double>(latency_us) / 1e3);
  if (latency_us < 10'000'000) return fmt::format("{} ms", (latency_us + 500) / 1000);
  return fmt::format("{:.1f} s", static_cast<double>(latency_us) / 1e6);
}

// The uptime summary.json shows for a probe over one window (none: no observed time).
std::optional<double> shown_uptime(const FeedHistory& history, const std::string& probe,
                                   BadgeKind kind) {
  auto in = [&](const std::map<std::string, ProbeSummary>& summaries) -> std::optional<double> {
    auto found = summaries.find(probe);
    return found == summaries.end() ? std::nullopt : found->second.uptime();
  };
  if (kind == BadgeKind::uptime_24h) return in(history.day);
  if (kind == BadgeKind::uptime_7d) return in(history.week);
  for (const ProbeSummary& summary : history.month.summaries) {
    if (summary.probe == probe) return summary.uptime();
  }
  return std::nullopt;
}

}  // namespace

std::string_view badge_color_hex(std::string_view color) {
  using namespace badge_color;
  static constexpr std::pair<std::string_view, std::string_view> kHex[] = {
      {kBrightGreen, "#4c1"}, {kGreen, "#97ca00"},    {kYellowGreen, "#a4a61d"},
      {kYellow, "#dfb317"},   {kOrange, "#fe7d37"},   {kRed, "#e05d44"},
      {kBlue, "#007ec6"},     {kLightGrey, "#9f9f9f"}};
  for (const auto& [name, hex] : kHex) {
    if (name == color) return hex;
  }
  return "#9f9f9f";
}

std::optional<BadgePath> parse_badge_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/badge/";
  // Longest first: "/uptime/24h.svg" before a component named "…/uptime" asks for its status.
  static constexpr std::pair<std::string_view, BadgeKind> kEndings[] = {
      {"/uptime/24h.svg", BadgeKind::uptime_24h}, {"/uptime/30d.svg", BadgeKind::uptime_30d},
      {"/uptime/7d.svg", BadgeKind::uptime_7d},   {"/shields.json", BadgeKind::shields},
      {"/latency.svg", BadgeKind::latency},       {"/status.svg", BadgeKind::status}};
  if (!path.starts_with(kPrefix)) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  for (const auto& [ending, kind] : kEndings) {
    if (path.size() > ending.size() && path.ends_with(ending))
      return BadgePath{std::string(path.substr(0, path.size() - ending.size())), kind};
  }
  return std::nullopt;
}

std::string xml_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const CodePoint point = next_code_point(text, at);
    at += point.length;
    switch (carried_in_xml(point.value)) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        append_utf8(out, carried_in_xml(point.value));
    }
  }
  return out;
}

double badge_text_width(std::string_view text) {
  int64_t hundredths = 0;
  for (size_t at = 0; at < text.size();) {
    const CodePoint point = next_code_point(text, at);
    at += point.length;
    hundredths += width_of(carried_in_xml(point.value));
  }
  return static_cast<double>(hundredths) / 100.0;
}

std::string badge_svg(const Badge& badge) {
  const double label_text = badge_text_width(badge.label);
  const double message_text = badge_text_width(badge.message);
  const int label_width = static_cast<int>(std::ceil(label_text)) + 2 * kPadding;
  const int message_width = static_cast<int>(std::ceil(message_text)) + 2 * kPadding;
  const int width = label_width + message_width;
  const std::string label = xml_escaped(badge.label);
  const std::string message = xml_escaped(badge.message);
  // Each text twice: a faint shadow a pixel lower, then the white text. textLength holds the
  // text to the measured width in whatever font the reader has.
  return fmt::format(
      R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="20" role="img" aria-label="{3}: {4}">)svg"
      R"svg(<title>{3}: {4}</title>)svg"
      R"svg(<clipPath id="r"><rect width="{0}" height="20" rx="3" fill="#fff"/></clipPath>)svg"
      R"svg(<g clip-path="url(#r)"><rect width="{1}" height="20" fill="{5}"/>)svg"
      R"svg(<rect x="{1}" width="{2}" height="20" fill="{6}"/></g>)svg"
      R"svg(<g fill="#fff" text-anchor="middle" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11">)svg"
      R"svg(<text x="{7}" y="15" fill="#010101" fill-opacity=".3" textLength="{8}" aria-hidden="true">{3}</text>)svg"
      R"svg(<text x="{7}" y="14" textLength="{8}" class="label">{3}</text>)svg"
      R"svg(<text x="{9}" y="15" fill="#010101" fill-opacity=".3" textLength="{10}" aria-hidden="true">{4}</text>)svg"
      R"svg(<text x="{9}" y="14" textLength="{10}" class="message">{4}</text>)svg"
      R"svg(</g></svg>)svg"
      "\n",
      width, label_width, message_width, label, message, kLabelGrey, badge_color_hex(badge.color),
      label_width / 2.0, label_text, label_width + message_width / 2.0, message_text);
}

std::string badge_shields_json(const Badge& badge) {
  const nlohmann::json document{{"schemaVersion", 1},
                                {"label", badge.label},
                                {"message", badge.message},
                                {"color", badge.color}};
  return document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view badge_uptime_color(double uptime) {
  using namespace badge_color;
  if (uptime >= 0.999) return kBrightGreen;
  if (uptime >= 0.99) return kGreen;
  if (uptime >= 0.98) return kYellowGreen;
  if (uptime >= 0.95) return kYellow;
  if (uptime >= 0.90) return kOrange;
  return kRed;
}

std::string badge_uptime_text(double uptime) {
  if (uptime >= 1.0) return "100%";
  // Floored to the hundredth of a percent: 99.999% is not 100%. The millionth keeps 0.9995, held
  // as 0.99949999…, at 99.95%.
  const double hundredths = std::floor(std::max(uptime, 0.0) * 10'000.0 + 1e-6);
  return fmt::format("{:.2f}%", hundredths / 100.0);
}

Badge component_badge(const FeedView& view, size_t index, BadgeKind kind) {
  using namespace badge_color;
  const ComponentConfig& config = view.probes[index];
  const ProbeLiveState& live = view.live.probes[index];
  const std::string& name = config.shown_name();
  const ConfirmedState state = live.confirmed();
  switch (kind) {
    case BadgeKind::status:
    case BadgeKind::shields:
      // summary.json's state ("unknown" before the first sample), maintenance first as
      // components.json has it.
      if (live.in_maintenance) return {name, "maintenance", kBlue};
      if (state == ConfirmedState::down) return {name, "down", kRed};
      if (state == ConfirmedState::degraded) return {name, "degraded", kYellow};
      if (!live.last_sample) return {name, "unknown", kLightGrey};
      return {name, "up", kBrightGreen};
    case BadgeKind::uptime_24h:
    case BadgeKind::uptime_7d:
    case BadgeKind::uptime_30d: {
      const std::string_view window = kind == BadgeKind::uptime_24h  ? "24h"
                                      : kind == BadgeKind::uptime_7d ? "7d"
                                                                     : "30d";
      const std::string label = fmt::format("{} uptime {}", name, window);
      const std::optional<double> uptime = shown_uptime(view.history, config.name, kind);
      if (!uptime) return {label, "no data", kLightGrey};
      return {label, badge_uptime_text(*uptime), badge_uptime_color(*uptime)};
    }
    case BadgeKind::latency: {
      const std::string label = name + " latency";
      // A failed attempt's time is how long it took to fail, not a latency; a job has none.
      if (state == ConfirmedState::down) return {label, "down", kRed};
      if (config.kind == ComponentKind::job || !live.last_sample ||
          live.last_sample->status == Status::down)
        return {label, "n/a", kLightGrey};
      return {label, latency_text(live.last_sample->latency_us),
              state == ConfirmedState::degraded ? kYellow : kBrightGreen};
    }
  }
  return {name, "unknown", kLightGrey};
}

}  // namespace blip
