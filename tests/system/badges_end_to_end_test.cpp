// Badges from a real `blip run`, rendered by headless Chromium: a page on
// another origin loads each badge as an image (it decodes, its size is the
// SVG's, its halves are painted in the colour the state calls for) and as
// inline SVG (the text reads back as the component's name, state and uptime
// that summary.json shows, and the width table matches the font Chromium
// draws with). Also: unknown components are 404, the probe's own name is
// not a component, and the answers cache like the documents.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "blip/feed/badge.hpp"
#include "support/chromium.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Daemon;
using test::TempDir;
using test::wait_until;

constexpr const char* kHostileName = R"(Tom & Jerry's <script>alert("x")</script>)";
// The hostile name as a URL path carries it.
constexpr const char* kHostilePath =
    "Tom%20%26%20Jerry's%20%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E";

json public_summary(const Daemon& blip) {
  const auto response = test::http_request(blip.public_url("/api/v2/summary.json"));
  return response.status == 200 ? json::parse(response.body) : json();
}

// The public `blip` object's entry for a component (an empty object when there is none yet).
json component_named(const json& summary, const std::string& name) {
  const json probes = summary.is_object()
                          ? summary.value("/blip/probes"_json_pointer, json::array())
                          : json::array();
  for (const json& component : probes) {
    if (component.value("name", "") == name) return component;
  }
  return json::object();
}

// What the public summary.json said of each component while a badge page was loaded, polled
// every 100 ms: a badge built at any moment in between shows one of these. (Uptime is not
// monotonic: on a busy machine a stalled loop is a blind window, which takes observed time
// away, and a late answer can be another outage.)
class SummaryWatch {
 public:
  explicit SummaryWatch(const Daemon& blip)
      : poller_([this, &blip] {
          while (!done_) {
            see(public_summary(blip));
            std::this_thread::sleep_for(100ms);
          }
        }) {}
  ~SummaryWatch() { stop(); }
  void stop() {
    done_ = true;
    if (poller_.joinable()) poller_.join();
  }
  void see(const json& summary) {
    if (!summary.is_object()) return;
    std::lock_guard lock(mutex_);
    for (const json& component : summary["blip"]["probes"]) {
      const std::string name = component["name"];
      states_[name].insert(component["state"].get<std::string>());
      if (component["uptime"]["24h"].is_number())
        uptimes_[name].insert(badge_uptime_text(component["uptime"]["24h"].get<double>()));
    }
  }
  std::set<std::string> states(const std::string& name) {
    std::lock_guard lock(mutex_);
    return states_[name];
  }
  std::set<std::string> uptimes(const std::string& name) {
    std::lock_guard lock(mutex_);
    return uptimes_[name];
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::set<std::string>> states_, uptimes_;
  std::atomic<bool> done_ = false;
  std::thread poller_;
};

// "99.95%" as a number of hundredths of a percent; -1 when it is not one.
int64_t hundredths(const std::string& text) {
  std::smatch match;
  if (!std::regex_match(text, match, std::regex(R"((\d+)(?:\.(\d\d))?%)"))) return -1;
  return std::stoll(match[1]) * 100 + (match[2].matched ? std::stoll(match[2]) : 0);
}

// The page Chromium loads: each badge as an image drawn into a canvas (its size
// and two pixels), and as inline SVG (its texts, their boxes, the font's own
// width of each text). The results go into <pre id="results"> as JSON with <, >
// and & escaped, so the DOM dump carries them as they are.
std::string probe_page(const std::vector<std::string>& urls) {
  return fmt::format(R"html(<!doctype html><html><body><pre id="results">pending</pre>
<div id="inline"></div>
<script>
const urls = {0};
const font = document.createElement("canvas").getContext("2d");
font.font = "11px DejaVu Sans";
function loadImage(url) {{
  return new Promise((resolve, reject) => {{
    const image = new Image();
    image.crossOrigin = "anonymous";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("image did not load"));
    image.src = url;
  }});
}}
function pixel(context, x, y) {{ return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3)); }}
async function probe(url) {{
  const result = {{url}};
  try {{
    const text = await (await fetch(url)).text();
    const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    if (parsed.getElementsByTagName("parsererror").length) throw new Error("not well-formed XML");
    const svg = document.importNode(parsed.documentElement, true);
    document.getElementById("inline").appendChild(svg);
    const rects = svg.querySelectorAll("g rect");
    result.width = Number(svg.getAttribute("width"));
    result.labelWidth = Number(rects[0].getAttribute("width"));
    for (const part of ["label", "message"]) {{
      const node = svg.querySelector("text." + part);
      const box = node.getBBox();
      result[part] = {{text: node.textContent, x: box.x, right: box.x + box.width,
                      textLength: Number(node.getAttribute("textLength")),
                      fontWidth: font.measureText(node.textContent).width}};
    }}
    const image = await loadImage(url);
    result.naturalWidth = image.naturalWidth;
    result.naturalHeight = image.naturalHeight;
    const canvas = document.createElement("canvas");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    // Corners are rounded: one pixel in from the top, two in from each half's left edge.
    result.labelPixel = pixel(context, 2, 1);
    result.messagePixel = pixel(context, result.labelWidth + 2, 1);
  }} catch (error) {{
    result.error = String(error);
  }}
  return result;
}}
(async () => {{
  const results = [];
  for (const url of urls) results.push(await probe(url));
  document.getElementById("results").textContent = JSON.stringify(results)
      .replace(/[<>&]/g, c => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}})();
</script></body></html>)html",
                     json(urls).dump());
}

// The picture docs/feed.md shows: the badges as a README shows them, a row per component,
// each drawn by Chromium from the SVG blip served into a canvas just large enough, whose PNG
// goes into <pre id="png"> as a data URL. (A --screenshot leaves the bottom 85 px of its
// window unpainted, whatever its size.)
std::string picture_page(const std::vector<std::vector<std::string>>& rows) {
  return fmt::format(R"html(<!doctype html><html><body><pre id="png">pending</pre>
<script>
const rows = {0};
function load(url) {{
  return new Promise((resolve, reject) => {{
    const image = new Image();
    image.crossOrigin = "anonymous";
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("image did not load: " + url));
    image.src = url;
  }});
}}
(async () => {{
  const images = [];
  for (const row of rows) images.push(await Promise.all(row.map(load)));
  const margin = 12, gap = 6, title = 28, height = 20;
  const rowWidth = row => row.reduce((width, image) => width + image.naturalWidth + gap, -gap);
  const canvas = document.createElement("canvas");
  canvas.width = 2 * margin + Math.max(...images.map(rowWidth));
  canvas.height = 2 * margin + title + images.length * (height + gap) - gap;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#222";
  context.font = "14px DejaVu Sans";
  context.textBaseline = "top";
  context.fillText("Example status", margin, margin);
  let y = margin + title;
  for (const row of images) {{
    let x = margin;
    for (const image of row) {{
      context.drawImage(image, x, y);
      x += image.naturalWidth + gap;
    }}
    y += height + gap;
  }}
  document.getElementById("png").textContent = canvas.toDataURL("image/png");
}})().catch(error => {{ document.getElementById("png").textContent = String(error); }});
</script></body></html>)html",
                     json(rows).dump());
}

// An RGB pixel within a few levels of a badge colour's hex ("#4c1" or "#e05d44").
bool pixel_is(const json& rgb, std::string_view hex) {
  std::string digits(hex.substr(1));
  if (digits.size() == 3)
    digits = {digits[0], digits[0], digits[1], digits[1], digits[2], digits[2]};
  for (int channel = 0; channel < 3; ++channel) {
    const int expected = std::stoi(digits.substr(channel * 2, 2), nullptr, 16);
    if (!rgb.is_array() || std::abs(rgb[channel].get<int>() - expected) > 3) return false;
  }
  return true;
}

TEST(Badges, ChromiumRendersWhatTheFeedSays) {
  test::NginxServer nginx;
  TempDir dir;
  Daemon blip(
      dir, fmt::format(R"toml([page]
name = "Example status"

[[probe]]
name = "web-health"
display_name = "Web"
type = "http"
url = "{0}"
interval = "250ms"
timeout = "1s"

[[probe]]
name = "streaming-port"
display_name = "Streaming"
type = "tcp"
address = "127.0.0.1:{1}"
interval = "250ms"

[[probe]]
name = "hostile"
display_name = "{2}"
type = "tcp"
address = "127.0.0.1:{3}"
interval = "250ms"
)toml",
                       nginx.url("/health"), test::free_port(),
                       std::regex_replace(kHostileName, std::regex("\""), "\\\""), nginx.port()));
  ASSERT_TRUE(wait_until(
      [&] {
        const json summary = public_summary(blip);
        return component_named(summary, "Web")["state"] == "up" &&
               component_named(summary, "Streaming")["state"] == "down";
      },
      15s))
      << blip.log();
  // An outage of Web (nginx frozen, its requests time out) makes its uptime a number to read.
  nginx.freeze();
  EXPECT_TRUE(wait_until(
      [&] { return component_named(public_summary(blip), "Web")["state"] == "down"; }, 10s));
  nginx.thaw();
  json before;
  ASSERT_TRUE(wait_until(
      [&] {
        before = public_summary(blip);
        json web = component_named(before, "Web");
        return web["state"] == "up" && web["uptime"]["24h"].is_number() &&
               web["uptime"]["24h"].get<double>() < 1.0 &&
               component_named(before, kHostileName)["uptime"]["24h"].is_number();
      },
      15s))
      << before.dump(2);

  // What the public may ask, beside the page's own origin: a widget on another one.
  const std::string web = blip.public_url("/badge/Web");
  const std::string streaming = blip.public_url("/badge/Streaming");
  const std::string hostile = blip.public_url(std::string("/badge/") + kHostilePath);
  const std::vector<std::string> urls{web + "/status.svg",           streaming + "/status.svg",
                                      hostile + "/status.svg",       web + "/uptime/24h.svg",
                                      streaming + "/uptime/24h.svg", web + "/latency.svg",
                                      streaming + "/latency.svg",    hostile + "/uptime/24h.svg"};
  const int widget_port = test::free_port();
  dir.write("widget/badges.html", probe_page(urls));
  test::ChildProcess widget_server({"python3", "-m", "http.server", std::to_string(widget_port),
                                    "--bind", "127.0.0.1", "--directory", dir.file("widget")});
  ASSERT_TRUE(test::wait_for_port(widget_port));
  std::string dom;
  SummaryWatch watch(blip);
  watch.see(before);
  ASSERT_EQ(test::run_chromium(dir, fmt::format("http://127.0.0.1:{}/badges.html", widget_port),
                               "--dump-dom", "", &dom),
            0)
      << dom;
  const json after = public_summary(blip);
  watch.see(after);
  watch.stop();
  std::smatch match;
  ASSERT_TRUE(std::regex_search(dom, match, std::regex(R"(<pre id="results">(\[.*\])</pre>)")))
      << dom;
  const json results = json::parse(match[1].str());
  ASSERT_EQ(results.size(), urls.size()) << results.dump(2);
  std::map<std::string, json> by_url;
  for (const json& result : results) {
    EXPECT_FALSE(result.contains("error")) << result.dump(2);
    // Rendered at the size the SVG says, the text inside its own half.
    EXPECT_EQ(result["naturalWidth"], result["width"]) << result.dump(2);
    EXPECT_EQ(result["naturalHeight"], 20) << result.dump(2);
    EXPECT_GE(result["label"]["x"].get<double>(), -0.5) << result.dump(2);
    EXPECT_LE(result["label"]["right"].get<double>(), result["labelWidth"].get<double>() + 0.5)
        << result.dump(2);
    EXPECT_GE(result["message"]["x"].get<double>(), result["labelWidth"].get<double>() - 0.5)
        << result.dump(2);
    EXPECT_LE(result["message"]["right"].get<double>(), result["width"].get<double>() + 0.5)
        << result.dump(2);
    // The width table against the font Chromium draws with (kerning aside).
    for (const char* part : {"label", "message"}) {
      const double table = result[part]["textLength"];
      const double font = result[part]["fontWidth"];
      EXPECT_NEAR(table, font, std::max(1.5, font * 0.03)) << part << " " << result.dump(2);
    }
    EXPECT_TRUE(pixel_is(result["labelPixel"], "#555")) << result.dump(2);
    by_url[result["url"]] = result;
  }

  auto message = [&](const std::string& url) {
    return by_url[url]["message"]["text"].get<std::string>();
  };
  auto label = [&](const std::string& url) {
    return by_url[url]["label"]["text"].get<std::string>();
  };
  auto painted = [&](const std::string& url, std::string_view color) {
    return pixel_is(by_url[url]["messagePixel"], badge_color_hex(color));
  };
  // Each text is what summary.json said while the page loaded, in that state's colour.
  auto state_color = [](const std::string& state) {
    return state == "up"     ? badge_color::kBrightGreen
           : state == "down" ? badge_color::kRed
                             : badge_color::kYellow;
  };
  auto shows_a_state_seen = [&](const std::string& url, const std::string& name) {
    const std::string state = message(url);
    return watch.states(name).contains(state) && painted(url, state_color(state));
  };
  EXPECT_EQ(label(web + "/status.svg"), "Web");
  EXPECT_TRUE(shows_a_state_seen(web + "/status.svg", "Web"))
      << by_url[web + "/status.svg"] << json(watch.states("Web"));
  EXPECT_EQ(label(streaming + "/status.svg"), "Streaming");
  EXPECT_EQ(message(streaming + "/status.svg"), "down") << "nothing listens on its port";
  EXPECT_TRUE(painted(streaming + "/status.svg", badge_color::kRed))
      << by_url[streaming + "/status.svg"];
  EXPECT_EQ(label(hostile + "/status.svg"), kHostileName) << "the name as text, not markup";
  EXPECT_TRUE(shows_a_state_seen(hostile + "/status.svg", kHostileName))
      << by_url[hostile + "/status.svg"] << json(watch.states(kHostileName));
  EXPECT_GT(by_url[hostile + "/status.svg"]["width"].get<int>(),
            by_url[streaming + "/status.svg"]["width"].get<int>())
      << "a longer name, a wider badge";

  // Uptime as summary.json had it while the page loaded, floored to a hundredth of a percent,
  // in its colour. Web's changes with every history the feed builds (once a second: its outage
  // against a few seconds observed, less any blind spell), so Chromium's can be one that no
  // summary.json was built from; the others' hold still (always down; never down).
  EXPECT_EQ(label(web + "/uptime/24h.svg"), "Web uptime 24h");
  const std::string web_uptime = message(web + "/uptime/24h.svg");
  EXPECT_GT(hundredths(web_uptime), 0) << web_uptime;
  EXPECT_LT(hundredths(web_uptime), 10'000) << web_uptime << ": Web had an outage";
  EXPECT_TRUE(painted(web + "/uptime/24h.svg", badge_uptime_color(hundredths(web_uptime) / 1e4)))
      << by_url[web + "/uptime/24h.svg"];
  EXPECT_EQ(message(streaming + "/uptime/24h.svg"), "0.00%");
  EXPECT_TRUE(watch.uptimes("Streaming").contains("0.00%")) << json(watch.uptimes("Streaming"));
  EXPECT_TRUE(painted(streaming + "/uptime/24h.svg", badge_color::kRed));
  EXPECT_TRUE(watch.uptimes(kHostileName).contains(message(hostile + "/uptime/24h.svg")))
      << message(hostile + "/uptime/24h.svg") << " " << json(watch.uptimes(kHostileName));
  // Asked together, Web's badge and summary.json agree to the hundredth: the same history.
  std::string agreed;
  EXPECT_TRUE(wait_until(
      [&] {
        auto summary_says = [&] {
          const json uptime = component_named(public_summary(blip), "Web")["uptime"]["24h"];
          return uptime.is_number() ? badge_uptime_text(uptime.get<double>()) : "none";
        };
        const std::string first = summary_says();
        std::smatch text;
        const std::string svg = test::http_request(web + "/uptime/24h.svg").body;
        const std::string badge =
            std::regex_search(svg, text, std::regex(R"re(class="message">([^<]*)<)re"))
                ? text[1].str()
                : "";
        const std::string second = summary_says();
        agreed = first + " " + badge + " " + second;
        return first == badge && badge == second;
      },
      30s, 200ms))
      << "summary.json, badge, summary.json: " << agreed;

  // The last sample's time while Web answers (a loaded machine may have it down meanwhile).
  if (message(web + "/latency.svg") == "down") {
    EXPECT_TRUE(shows_a_state_seen(web + "/latency.svg", "Web")) << by_url[web + "/latency.svg"];
  } else {
    EXPECT_TRUE(std::regex_match(message(web + "/latency.svg"), std::regex(R"(\d+(\.\d)? ms)")))
        << message(web + "/latency.svg");
    EXPECT_TRUE(painted(web + "/latency.svg", badge_color::kBrightGreen));
  }
  EXPECT_EQ(message(streaming + "/latency.svg"), "down");

  // The shields.io endpoint says what the status badge says: a state Web was seen in (a loaded
  // machine may have it down meanwhile), in that state's colour.
  const auto shields = test::http_request(web + "/shields.json");
  EXPECT_EQ(shields.status, 200);
  const json endpoint = json::parse(shields.body);
  EXPECT_EQ(endpoint["schemaVersion"], 1);
  EXPECT_EQ(endpoint["label"], "Web");
  const std::string endpoint_state = endpoint.value("message", "");
  EXPECT_TRUE(watch.states("Web").contains(endpoint_state))
      << endpoint.dump() << json(watch.states("Web"));
  EXPECT_EQ(endpoint["color"], state_color(endpoint_state)) << endpoint.dump();
  EXPECT_EQ(json::parse(test::http_request(hostile + "/shields.json").body)["label"], kHostileName);

  // Cached like the documents: an ETag that a second ask within the second matches.
  const auto svg = test::http_request(streaming + "/status.svg");
  EXPECT_EQ(svg.header("content-type"), "image/svg+xml; charset=utf-8");
  EXPECT_EQ(svg.header("cache-control"), "max-age=1");
  EXPECT_EQ(svg.header("access-control-allow-origin"), "*");
  EXPECT_EQ(svg.header("content-security-policy"), "default-src 'none'");
  ASSERT_FALSE(svg.header("etag").empty());
  EXPECT_EQ(
      test::http_request(streaming + "/status.svg", "GET", {"If-None-Match: " + svg.header("etag")})
          .status,
      304);

  // A component by its public name or id; nothing else is one.
  const std::string web_id = [&] {
    for (const json& component : after["components"]) {
      if (component["name"] == "Web") return component["id"].get<std::string>();
    }
    return std::string();
  }();
  EXPECT_EQ(test::http_request(blip.public_url("/badge/" + web_id + "/status.svg")).body,
            test::http_request(web + "/status.svg").body);
  for (const char* missing : {"/badge/web-health/status.svg", "/badge/Nobody/status.svg",
                              "/badge/Web/uptime/1h.svg", "/badge/Web/status.png", "/badge/Web"}) {
    EXPECT_EQ(test::http_request(blip.public_url(missing)).status, 404) << missing;
  }
  // Same badge on the private face.
  EXPECT_EQ(test::http_request(blip.feed_url("/badge/Streaming/status.svg")).body, svg.body);

  // The picture for docs/feed.md (docs/badges.png is a copy of it).
  dir.write("widget/picture.html",
            picture_page({{web + "/status.svg", web + "/uptime/24h.svg", web + "/latency.svg"},
                          {streaming + "/status.svg", streaming + "/uptime/24h.svg",
                           streaming + "/latency.svg"}}));
  ASSERT_EQ(test::run_chromium(dir, fmt::format("http://127.0.0.1:{}/picture.html", widget_port),
                               "--dump-dom", "", &dom),
            0)
      << dom;
  ASSERT_TRUE(std::regex_search(
      dom, match, std::regex(R"re(<pre id="png">data:image/png;base64,([A-Za-z0-9+/=]+)</pre>)re")))
      << dom.substr(0, 2000);
  std::filesystem::create_directories(BLIP_ARTIFACTS);
  const std::string picture = std::string(BLIP_ARTIFACTS) + "/badges.png";
  dir.write("badges.png.base64", match[1].str());
  ASSERT_EQ(test::run_command(
                {"sh", "-c", "base64 -d < " + dir.file("badges.png.base64") + " > " + picture}),
            0);
  EXPECT_GT(std::filesystem::file_size(picture), 2'000U) << picture;
  EXPECT_EQ(blip.stop(), 0) << blip.log();
}

}  // namespace
}  // namespace blip
