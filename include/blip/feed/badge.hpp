#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "blip/feed/status_feed.hpp"

// Badges for README files and profile pages: one component's state, uptime or
// latency as a small SVG written here (no font files, no renderer), and the
// same as a shields.io endpoint document. A badge shows only what the public
// face shows, whichever face serves it, but for one field chosen for it: the
// latency badge's last sample time, which the public summary.json leaves out
// (docs/feed.md, "Badges").

namespace blip {

// What a badge says: the label on grey, the message on its colour.
struct Badge {
  std::string label;
  std::string message;
  std::string_view color;  // one of the named colours below
};

// shields.io's named colours; the SVG paints their hex values.
namespace badge_color {
inline constexpr std::string_view kBrightGreen = "brightgreen";
inline constexpr std::string_view kGreen = "green";
inline constexpr std::string_view kYellowGreen = "yellowgreen";
inline constexpr std::string_view kYellow = "yellow";
inline constexpr std::string_view kOrange = "orange";
inline constexpr std::string_view kRed = "red";
inline constexpr std::string_view kBlue = "blue";
inline constexpr std::string_view kLightGrey = "lightgrey";
}  // namespace badge_color
// "#4c1" for "brightgreen"; the grey for a name it does not know.
std::string_view badge_color_hex(std::string_view color);

// The badges there are, as their paths end.
enum class BadgeKind { status, uptime_24h, uptime_7d, uptime_30d, latency, shields };

// `/badge/<component>/status.svg`, `/badge/<component>/uptime/<24h|7d|30d>.svg`,
// `/badge/<component>/latency.svg`, `/badge/<component>/shields.json`, the path
// already unescaped: the component is everything between "/badge/" and the ending,
// so a name may hold a slash. Nullopt for any other path.
struct BadgePath {
  std::string component;
  BadgeKind kind;
};
std::optional<BadgePath> parse_badge_path(std::string_view path);

// Text as SVG and HTML carry it: `<`, `>`, `&`, `"` and `'` as entities, control
// characters and broken UTF-8 as U+FFFD (either would break the XML).
std::string xml_escaped(std::string_view text);

// How wide `text` is at 11 px in DejaVu Sans, the badge's first font, in px:
// advance widths per character from a table (no kerning).
double badge_text_width(std::string_view text);

// The SVG: flat, 20 px high, each half as wide as its text plus 5 px either side.
std::string badge_svg(const Badge& badge);
// shields.io's endpoint schema: {"schemaVersion":1,"label":…,"message":…,"color":…}.
std::string badge_shields_json(const Badge& badge);

// An uptime fraction as a badge writes it, never rounded up: "100%" only when
// nothing was down, else two decimals ("99.95%").
std::string badge_uptime_text(double uptime);
// Green from 99.9 %, lighter green from 99, yellow-green from 98, yellow from 95, orange from
// 90, red below.
std::string_view badge_uptime_color(double uptime);

// The badge of `view.probes[index]` from what the documents show of it: its state
// as components.json has it, its uptime as summary.json has it, its last
// latency. The label is the component's public name.
Badge component_badge(const FeedView& view, size_t index, BadgeKind kind);

}  // namespace blip
