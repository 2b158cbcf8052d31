// The alert dispatcher and the sender it owns against real receivers on
// loopback: a libmicrohttpd server that records what it is sent, a server that
// accepts and never answers, and a real Alertmanager. Every send runs through a
// real libuv loop and libcurl.
#include "blip/alerts/alert_dispatcher.hpp"

#include <gtest/gtest.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/adapters/curl_uv.hpp"
#include "blip/alerts/alert_sender.hpp"
#include "blip/alerts/blip_trouble.hpp"
#include "blip/core/clock.hpp"
#include "blip/core/loop.hpp"
#include "support/alerts.hpp"
#include "support/hostile_server.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using test::alert_to;
using test::closed_event;
using test::opened_event;

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
  }
  json json_body() const { return json::parse(body); }
};

// An HTTP receiver on 127.0.0.1 (libmicrohttpd parses the requests) that
// records every request and answers with the queued statuses, then 200.
class Receiver {
 public:
  Receiver() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // any free port; asked back below
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr,
                               nullptr, &Receiver::on_request, this, MHD_OPTION_SOCK_ADDR, &address,
                               MHD_OPTION_NOTIFY_COMPLETED, &Receiver::on_completed, nullptr,
                               MHD_OPTION_END);
    if (!daemon_) throw std::runtime_error("receiver did not start");
    port_ = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
  }
  ~Receiver() { MHD_stop_daemon(daemon_); }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void answer_with(std::vector<unsigned> statuses) {
    std::lock_guard lock(mutex_);
    statuses_.assign(statuses.begin(), statuses.end());
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  std::vector<ReceivedRequest> at(const std::string& path) const {
    std::vector<ReceivedRequest> found;
    for (const auto& request : requests()) {
      if (request.path == path) found.push_back(request);
    }
    return found;
  }

 private:
  static MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    std::string name = key;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    (*static_cast<std::map<std::string, std::string>*>(cls))[name] = value ? value : "";
    return MHD_YES;
  }
  // A request whose connection died before it was answered.
  static void on_completed(void*, MHD_Connection*, void** request_state,
                           MHD_RequestTerminationCode) {
    delete static_cast<ReceivedRequest*>(*request_state);
    *request_state = nullptr;
  }
  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char*, const char* upload_data,
                               size_t* upload_size, void** request_state) {
    auto* self = static_cast<Receiver*>(cls);
    auto* request = static_cast<ReceivedRequest*>(*request_state);
    if (!request) {
      request = new ReceivedRequest{method, url, {}, {}};
      MHD_get_connection_values(connection, MHD_HEADER_KIND, &Receiver::collect_header,
                                &request->headers);
      *request_state = request;
      return MHD_YES;
    }
    if (*upload_size > 0) {
      request->body.append(upload_data, *upload_size);
      *upload_size = 0;
      return MHD_YES;
    }
    unsigned status = 200;
    {
      std::lock_guard lock(self->mutex_);
      self->requests_.push_back(*request);
      if (!self->statuses_.empty()) {
        status = self->statuses_.front();
        self->statuses_.pop_front();
      }
    }
    delete request;
    *request_state = nullptr;
    MHD_Response* response =
        MHD_create_response_from_buffer(2, const_cast<char*>("ok"), MHD_RESPMEM_PERSISTENT);
    MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
  }

  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::deque<unsigned> statuses_;
};

// Runs the loop until `condition` holds or `timeout` passes; the condition's last answer.
bool run_until(EventLoop& loop, const std::function<bool()>& condition,
               std::chrono::milliseconds timeout) {
  bool met = condition();
  if (met) return true;
  const int64_t deadline = mono_now_us() / 1000 + timeout.count();
  Timer poll(loop.get(), [&] {
    met = condition();
    if (met || mono_now_us() / 1000 > deadline) loop.stop();
  });
  poll.start(5, 5);
  loop.run();
  return met;
}

void run_for(EventLoop& loop, std::chrono::milliseconds duration) {
  run_until(
      loop, [] { return false; }, duration);
}

// The loop, curl's bridge and a dispatcher, destroyed in the right order.
struct Harness {
  explicit Harness(std::vector<AlertConfig> alerts, AlertDispatcher::HoldCheck held = {},
                   AlertDispatcher::Options options = {})
      : curl(loop.get()),
        dispatcher(loop.get(), curl, std::move(alerts), std::move(held), options) {}
  EventLoop loop;
  CurlMultiUv curl;
  AlertDispatcher dispatcher;
  uint64_t count(AlertConfig::Kind kind, AlertResult result) const {
    return dispatcher.sender().count_of(kind, result);
  }
};

TEST(AlertSender, DebianCurlResolvesNamesOffTheLoop) {
  EXPECT_TRUE(curl_resolves_names_off_loop());
}

TEST(AlertDispatcher, OpenedAndClosedReachEveryKindWithItsFields) {
  Receiver receiver;
  AlertConfig webhook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  webhook.headers = {{"Authorization", "Bearer s3cret"}};
  Harness harness({webhook, alert_to("chat", AlertConfig::Kind::slack, receiver.url("/slack")),
                   alert_to("phone", AlertConfig::Kind::ntfy, receiver.url("/blip-topic")),
                   alert_to("am", AlertConfig::Kind::alertmanager, receiver.url("/"))});
  const int64_t start = wall_now_ms() - 1000;
  AlertEvent opened = opened_event("web-health", 42, start);
  opened.text = "3rd outage at about +00:20 this hour";
  harness.dispatcher.notify(opened);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 4; }, 10s));

  const json hook = receiver.at("/webhook").at(0).json_body();
  EXPECT_EQ(receiver.at("/webhook").at(0).header("authorization"), "Bearer s3cret");
  EXPECT_EQ(receiver.at("/webhook").at(0).header("content-type"), "application/json");
  EXPECT_EQ(hook["event"], "outage_opened");
  EXPECT_EQ(hook["alert"], "hook");
  EXPECT_EQ(hook["probe"], "web-health");
  EXPECT_EQ(hook["type"], "http");
  EXPECT_EQ(hook["tags"], json::array({"web"}));
  EXPECT_EQ(hook["outage_id"], 42);
  EXPECT_EQ(hook["start"], format_iso8601_ms(start));
  EXPECT_EQ(hook["start_ms"], start);
  EXPECT_TRUE(hook["end"].is_null());
  EXPECT_EQ(hook["error"], "timeout");
  EXPECT_EQ(hook["detail"], "no answer within 1s");
  EXPECT_EQ(hook["text"], "3rd outage at about +00:20 this hour");
  EXPECT_EQ(
      hook["summary"],
      "web-health is down: timeout (no answer within 1s); 3rd outage at about +00:20 this hour");

  EXPECT_EQ(receiver.at("/slack").at(0).json_body(),
            json({{"text",
                   "web-health is down: timeout (no answer within 1s); 3rd outage at about +00:20 "
                   "this hour"}}));

  const ReceivedRequest ntfy = receiver.at("/blip-topic").at(0);
  EXPECT_EQ(ntfy.method, "POST");
  EXPECT_EQ(ntfy.header("title"), "web-health is down");
  EXPECT_EQ(ntfy.header("priority"), "high");
  EXPECT_EQ(ntfy.header("tags"), "rotating_light,blip,http,web");
  EXPECT_EQ(
      ntfy.body,
      "web-health is down: timeout (no answer within 1s); 3rd outage at about +00:20 this hour");

  const json am = receiver.at("/api/v2/alerts").at(0).json_body();
  ASSERT_TRUE(am.is_array());
  ASSERT_EQ(am.size(), 1u);
  EXPECT_EQ(am[0]["labels"], json({{"alertname", "BlipOutage"},
                                   {"probe", "web-health"},
                                   {"type", "http"},
                                   {"error", "timeout"}}));
  EXPECT_EQ(am[0]["startsAt"], format_iso8601_ms(start));
  EXPECT_FALSE(am[0].contains("endsAt"));
  EXPECT_EQ(am[0]["annotations"]["summary"], hook["summary"]);

  AlertEvent closed = closed_event(opened, 31'000);
  closed.error = ErrorClass::refused;  // the labels stay the opened ones
  harness.dispatcher.notify(closed);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 8; }, 10s));
  const json hook_closed = receiver.at("/webhook").at(1).json_body();
  EXPECT_EQ(hook_closed["event"], "outage_closed");
  EXPECT_EQ(hook_closed["duration_ms"], 31'000);
  EXPECT_EQ(hook_closed["end"], format_iso8601_ms(start + 31'000));
  EXPECT_EQ(hook_closed["summary"], "web-health is back after 31s");
  EXPECT_EQ(receiver.at("/slack").at(1).json_body()["text"], "web-health is back after 31s");
  EXPECT_EQ(receiver.at("/blip-topic").at(1).header("priority"), "default");
  EXPECT_EQ(receiver.at("/blip-topic").at(1).header("title"), "web-health is back");
  const json am_closed = receiver.at("/api/v2/alerts").at(1).json_body();
  EXPECT_EQ(am_closed[0]["endsAt"], format_iso8601_ms(start + 31'000));
  EXPECT_EQ(am_closed[0]["labels"]["error"], "timeout");
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::sent), 2u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::alertmanager, AlertResult::sent), 2u);
}

// A target's text in a Slack message is text: "<!channel>" would page a whole channel and
// "<url|label>" would show a link under a label the target chose. Other kinds get it unchanged.
TEST(AlertDispatcher, SlackGetsTargetTextAsTextNeverAMentionOrALink) {
  Receiver receiver;
  Harness harness({alert_to("chat", AlertConfig::Kind::slack, receiver.url("/slack")),
                   alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"))});
  AlertEvent opened = opened_event("cache<&>", 9, wall_now_ms() - 1000);
  opened.error = ErrorClass::protocol;
  opened.detail = "PING: ERR <!channel> <https://evil.example|click here> & <@U024BE7LH> &lt;";
  opened.text = "see <#C024BE7LR>";
  harness.dispatcher.notify(opened);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 2; }, 10s));
  EXPECT_EQ(receiver.at("/slack").at(0).json_body(),
            json({{"text",
                   "cache&lt;&amp;&gt; is down: protocol (PING: ERR &lt;!channel&gt; "
                   "&lt;https://evil.example|click here&gt; &amp; &lt;@U024BE7LH&gt; &amp;lt;); "
                   "see &lt;#C024BE7LR&gt;"}}));
  const json hook = receiver.at("/webhook").at(0).json_body();
  EXPECT_EQ(hook["detail"], opened.detail);
  EXPECT_EQ(hook["summary"],
            "cache<&> is down: protocol (PING: ERR <!channel> <https://evil.example|click here> & "
            "<@U024BE7LH> "
            "&lt;); see <#C024BE7LR>");
}

TEST(AlertDispatcher, SendResolvedFalseSendsNoClosedMessage) {
  Receiver receiver;
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  hook.send_resolved = false;
  Harness harness({hook});
  AlertEvent opened = opened_event("web-health", 1, wall_now_ms());
  harness.dispatcher.notify(opened);
  harness.dispatcher.notify(closed_event(opened, 5000));
  run_for(harness.loop, 700ms);
  ASSERT_EQ(receiver.count(), 1u);
  EXPECT_EQ(receiver.requests()[0].json_body()["event"], "outage_opened");
}

TEST(AlertDispatcher, FlappingSendsOneSummaryAfterTheFirstOutages) {
  Receiver receiver;
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  hook.flapping = FlappingRule{3, 3'600'000};
  Harness harness({hook});
  const int64_t start = wall_now_ms() - 60'000;
  const std::vector<int64_t> durations{31'000, 58'000, 40'000, 35'000, 33'000};
  for (int i = 0; i < 5; ++i) {
    AlertEvent opened = opened_event("web-health", 100 + i, start + i * 1000);
    harness.dispatcher.notify(opened);
    harness.dispatcher.notify(closed_event(opened, durations[static_cast<size_t>(i)]));
  }
  run_until(
      harness.loop, [&] { return receiver.count() >= 5; }, 10s);
  run_for(harness.loop, 500ms);  // nothing more may come
  std::vector<std::string> events;
  for (const auto& request : receiver.requests())
    events.push_back(request.json_body()["event"].get<std::string>());
  std::sort(events.begin(), events.end());
  EXPECT_EQ(events, (std::vector<std::string>{"flapping", "outage_closed", "outage_closed",
                                              "outage_opened", "outage_opened"}));
  for (const auto& request : receiver.requests()) {
    const json body = request.json_body();
    if (body["event"] != "flapping") continue;
    // The third outage makes the summary; the first two had closed by then.
    EXPECT_EQ(body["summary"], "3 outages of web-health in the last 1h, 31–58 s each");
    EXPECT_EQ(body["flapping"]["outages"], 3);
  }
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::suppressed),
            5u);  // 2 opened, 3 closed
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::sent), 5u);
}

TEST(AlertDispatcher, RemindersAndAlertmanagerResendsArriveWhileDown) {
  Receiver receiver;
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  hook.repeat_ms = 1000;
  AlertDispatcher::Options options;
  options.tick_ms = 100;
  options.alertmanager_resend_ms = 500;
  Harness harness({hook, alert_to("am", AlertConfig::Kind::alertmanager, receiver.url(""))}, {},
                  options);
  AlertEvent opened = opened_event("web-health", 5, wall_now_ms());
  opened.at_ms = opened.start_ms;
  harness.dispatcher.notify(opened);
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] {
        return receiver.at("/webhook").size() >= 3 && receiver.at("/api/v2/alerts").size() >= 3;
      },
      10s));
  const auto hooks = receiver.at("/webhook");
  EXPECT_EQ(hooks[0].json_body()["event"], "outage_opened");
  EXPECT_EQ(hooks[1].json_body()["event"], "outage_reminder");
  EXPECT_EQ(hooks[2].json_body()["event"], "outage_reminder");
  EXPECT_TRUE(hooks[1].json_body()["summary"].get<std::string>().starts_with(
      "web-health is still down after"));
  for (const auto& request : receiver.at("/api/v2/alerts")) {
    EXPECT_EQ(request.json_body()[0]["labels"]["alertname"], "BlipOutage");
    EXPECT_FALSE(request.json_body()[0].contains("endsAt"));
  }
  // Once closed, no more reminders.
  harness.dispatcher.notify(closed_event(opened, wall_now_ms() - opened.start_ms));
  run_for(harness.loop, 300ms);
  const size_t after_close = receiver.count();
  run_for(harness.loop, 1500ms);
  EXPECT_EQ(receiver.count(), after_close);
}

TEST(AlertDispatcher, RetriesA503UntilItIsAnswered) {
  Receiver receiver;
  receiver.answer_with({503, 503, 200});
  Harness harness({alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"))});
  harness.dispatcher.notify(opened_event("web-health", 1, wall_now_ms()));
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return harness.count(AlertConfig::Kind::webhook, AlertResult::sent) == 1; }, 15s));
  EXPECT_EQ(receiver.count(), 3u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::retried), 2u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::failed), 0u);
}

TEST(AlertDispatcher, A400IsNotRetried) {
  Receiver receiver;
  receiver.answer_with({400});
  Harness harness({alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"))});
  harness.dispatcher.notify(opened_event("web-health", 1, wall_now_ms()));
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return harness.count(AlertConfig::Kind::webhook, AlertResult::failed) == 1; }, 10s));
  run_for(harness.loop, 1500ms);
  EXPECT_EQ(receiver.count(), 1u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::retried), 0u);
}

// The loop's own timers keep their time while alert sends hang for seconds.
TEST(AlertDispatcher, HungReceiverTimesOutRetriesAndNeverStallsTheLoop) {
  test::HostileServer hung(test::HostileServer::Mode::hang);
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook,
                              "http://127.0.0.1:" + std::to_string(hung.port()) + "/webhook");
  // Attempts of 1 s, 1 s and 2 s apart, the last starting 5 s in: hung sends for about 7 s.
  hook.timeout_ms = 1000;
  hook.retry_for_ms = 6000;
  Harness harness({hook});
  int64_t last_fire_us = mono_now_us();
  int64_t largest_gap_us = 0;
  Timer ticker(harness.loop.get(), [&] {
    const int64_t now = mono_now_us();
    largest_gap_us = std::max(largest_gap_us, now - last_fire_us);
    last_fire_us = now;
  });
  ticker.start(10, 10);
  for (int i = 0; i < 4; ++i)
    harness.dispatcher.notify(opened_event("probe-" + std::to_string(i), i, wall_now_ms()));
  last_fire_us = mono_now_us();
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return harness.count(AlertConfig::Kind::webhook, AlertResult::failed) == 4; }, 30s));
  ticker.stop();
  // Each at least once; those that waited for a slot reach retry_for sooner (it counts from
  // queueing).
  EXPECT_GE(harness.count(AlertConfig::Kind::webhook, AlertResult::retried), 4u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::sent), 0u);
  EXPECT_LT(largest_gap_us, 250'000) << "a 10 ms timer waited " << largest_gap_us / 1000 << " ms";
  std::printf("largest gap of a 10 ms timer while alert sends hung: %.1f ms\n",
              static_cast<double>(largest_gap_us) / 1000);
}

TEST(AlertDispatcher, StopAbandonsHungSendsWithinItsGrace) {
  test::HostileServer hung(test::HostileServer::Mode::hang);
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook,
                              "http://127.0.0.1:" + std::to_string(hung.port()) + "/webhook");
  hook.timeout_ms = 30'000;
  Harness harness({hook});
  for (int i = 0; i < 3; ++i)
    harness.dispatcher.notify(opened_event("probe-" + std::to_string(i), i, wall_now_ms()));
  run_until(
      harness.loop, [&] { return harness.dispatcher.sender().in_flight() == 2; }, 5s);
  ASSERT_EQ(harness.dispatcher.sender().in_flight(), 2u);
  bool stopped = false;
  const int64_t asked_us = mono_now_us();
  harness.dispatcher.stop(300, [&] { stopped = true; });
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return stopped; }, 5s));
  const int64_t took_ms = (mono_now_us() - asked_us) / 1000;
  EXPECT_GE(took_ms, 250);
  EXPECT_LT(took_ms, 2000);
  EXPECT_EQ(harness.dispatcher.sender().in_flight(), 0u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::dropped),
            3u);                                                      // 1 waiting, 2 abandoned
  harness.dispatcher.notify(opened_event("late", 9, wall_now_ms()));  // ignored after stop
  EXPECT_EQ(harness.dispatcher.sender().waiting(), 0u);
}

TEST(AlertSender, AFullQueueDropsTheOldestAndCountsThem) {
  test::HostileServer hung(test::HostileServer::Mode::hang);
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook,
                              "http://127.0.0.1:" + std::to_string(hung.port()) + "/webhook");
  hook.timeout_ms = 10'000;
  AlertDispatcher::Options options;
  options.sender.max_pending = 5;
  Harness harness({hook}, {}, options);
  for (int i = 0; i < 20; ++i)
    harness.dispatcher.notify(opened_event("probe-" + std::to_string(i), i, wall_now_ms()));
  run_for(harness.loop, 200ms);
  EXPECT_EQ(harness.dispatcher.sender().in_flight(), 2u);
  EXPECT_EQ(harness.dispatcher.sender().waiting(), 5u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::dropped), 13u);
  bool found = false;
  for (const AlertCount& count : harness.dispatcher.counts()) {
    if (count.kind == AlertConfig::Kind::webhook && count.result == AlertResult::dropped)
      found = count.count == 13;
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(harness.dispatcher.counts().size(), kAlertKindCount * kAlertResultCount);
}

TEST(AlertDispatcher, HeldEventsAndUnselectedProbesAreNotSent) {
  Receiver receiver;
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  hook.selector.tags = {"web"};
  hook.repeat_ms = 200;
  AlertDispatcher::Options options;
  options.tick_ms = 50;
  Harness harness(
      {hook}, [](const AlertEvent& event) { return event.probe == "in-maintenance"; }, options);
  AlertEvent held = opened_event("in-maintenance", 1, wall_now_ms());
  AlertEvent other = opened_event("db", 2, wall_now_ms());
  other.tags = {"database"};
  AlertEvent sent = opened_event("web-health", 3, wall_now_ms());
  harness.dispatcher.notify(held);
  harness.dispatcher.notify(other);
  harness.dispatcher.notify(sent);
  harness.dispatcher.notify(closed_event(sent, 1000));
  run_for(harness.loop, 600ms);  // reminders of the held outage would come every 200 ms
  harness.dispatcher.notify(closed_event(held, 2000));
  harness.dispatcher.notify(closed_event(other, 2000));
  run_for(harness.loop, 300ms);
  ASSERT_EQ(receiver.count(), 2u);
  for (const auto& request : receiver.requests())
    EXPECT_EQ(request.json_body()["probe"], "web-health");
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::held), 2u);  // opened and closed
}

// ---------------------------------------------------------------------------
// group = "incident": the grouping rules, on events as the daemon makes them
// (incident ids from the recorder), with short gathers so the test runs in seconds.

AlertEvent member_event(const std::string& probe, int64_t outage_id, int64_t incident_id,
                        int64_t start_ms) {
  AlertEvent event = opened_event(probe, outage_id, start_ms);
  event.incident_id = incident_id;
  event.at_ms = wall_now_ms();  // the dispatcher's gathers count from when the loop saw it
  return event;
}

AlertEvent member_closed(const AlertEvent& opened, int64_t end_ms) {
  AlertEvent event = closed_event(opened, end_ms - opened.start_ms);
  event.at_ms = wall_now_ms();
  return event;
}

// The events received, sorted: two sends of one alert may overtake each other.
std::vector<std::string> event_names(const std::vector<ReceivedRequest>& requests) {
  std::vector<std::string> names;
  for (const auto& request : requests) names.push_back(request.json_body()["event"]);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> joined_of(const json& body) {
  std::vector<std::string> names;
  for (const json& name : body["joined"]) names.push_back(name);
  return names;
}

AlertDispatcher::Options incident_options() {
  AlertDispatcher::Options options;
  options.tick_ms = 20;
  options.incident_gather_ms = 300;
  options.incident_grew_every_ms = 1000;
  return options;
}

TEST(IncidentAlerts, JoinsWithinTheGatherAreOneOpenedLaterOnesOneGrewAPendingOneGoesToResolved) {
  Receiver receiver;
  Harness harness({alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"))}, {},
                  incident_options());
  const int64_t t0 = wall_now_ms() - 2000;
  // The write probe's outage is confirmed after the read probe's, but went down first: the root.
  const AlertEvent read = member_event("db-read", 11, 7, t0 + 300);
  const AlertEvent write = member_event("db-write", 12, 7, t0);
  harness.dispatcher.notify(read);
  harness.dispatcher.notify(write);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 1; }, 5s));
  const json opened = receiver.requests()[0].json_body();
  EXPECT_EQ(opened["event"], "incident_opened");
  EXPECT_EQ(opened["state"], "opened");
  EXPECT_EQ(opened["incident"], 7);
  EXPECT_EQ(opened["root_probe"], "db-write");
  EXPECT_EQ(opened["summary"],
            "db-write down: timeout (no answer within 1s); also down: db-read — 0.3 s after "
            "db-write");
  ASSERT_EQ(opened["components"].size(), 2u);
  EXPECT_EQ(opened["components"][1]["probe"], "db-read");
  EXPECT_EQ(opened["components"][1]["down_ms"], t0 + 300);
  EXPECT_TRUE(opened["components"][1]["up"].is_null());
  const int64_t opened_at = wall_now_ms();

  // Three joins in a burst: one grew, no sooner than 1 s (the rate) after the opened.
  const AlertEvent web = member_event("web", 13, 7, t0 + 400);
  const AlertEvent streaming = member_event("streaming", 14, 7, t0 + 900);
  harness.dispatcher.notify(web);
  harness.dispatcher.notify(streaming);
  harness.dispatcher.notify(member_event("web", 15, 99, t0 + 400));  // another incident's
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 3; }, 5s));
  run_for(harness.loop, 500ms);
  auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u) << "one grew, one opened of incident 99";
  json grew;
  for (const auto& request : requests) {
    if (request.json_body()["event"] == "incident_grew") grew = request.json_body();
  }
  ASSERT_FALSE(grew.is_null());
  EXPECT_EQ(grew["state"], "grew");
  EXPECT_EQ(joined_of(grew), (std::vector<std::string>{"web", "streaming"}));
  EXPECT_EQ(grew["summary"],
            "db-write incident grew: also down: web, streaming — 0.4–0.9 s after db-write");
  EXPECT_GE(grew["at_ms"].get<int64_t>(), opened_at + 900);

  // A join the rate limit still holds when the incident ends is told by the resolved message.
  const AlertEvent sidekiq = member_event("sidekiq", 16, 7, t0 + 1200);
  harness.dispatcher.notify(sidekiq);
  harness.dispatcher.notify(member_closed(write, t0 + 5000));
  harness.dispatcher.notify(member_closed(read, t0 + 5100));
  harness.dispatcher.notify(member_closed(web, t0 + 5200));
  harness.dispatcher.notify(member_closed(streaming, t0 + 5300));
  harness.dispatcher.notify(member_closed(sidekiq, t0 + 6200));
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 4; }, 5s));
  run_for(harness.loop, 1500ms);  // no grew after the resolved
  requests = receiver.requests();
  ASSERT_EQ(requests.size(), 4u);
  const json resolved = requests.back().json_body();
  EXPECT_EQ(resolved["event"], "incident_resolved");
  EXPECT_EQ(resolved["state"], "resolved");
  EXPECT_EQ(joined_of(resolved), std::vector<std::string>{"sidekiq"});
  EXPECT_EQ(resolved["duration_ms"], 6200);
  EXPECT_EQ(resolved["summary"],
            "db-write incident resolved after 6.2s (db-write, db-read, web, streaming, sidekiq)");
  ASSERT_EQ(resolved["components"].size(), 5u);
  for (const json& component : resolved["components"]) EXPECT_FALSE(component["up"].is_null());
  const std::string timeline = resolved["timeline"];
  EXPECT_NE(timeline.find("db-write down: timeout (no answer within 1s)\n"), std::string::npos)
      << timeline;
  EXPECT_NE(timeline.find("sidekiq up after 5.0s\n"), std::string::npos) << timeline;
  EXPECT_TRUE(timeline.ends_with("  total 6.2s\n")) << timeline;
  // Incident 99 is still open: nothing of it resolved.
  EXPECT_EQ(event_names(receiver.requests()),
            (std::vector<std::string>{"incident_grew", "incident_opened", "incident_opened",
                                      "incident_resolved"}));
}

// Records of incidents, as the store's writer would keep them: every save, and a ticket each.
struct RecordBook {
  std::vector<AlertIncidentRow> saved;
  AlertDispatcher::RecordSave saver() {
    return [this](AlertIncidentRow row) {
      saved.push_back(std::move(row));
      return static_cast<uint64_t>(saved.size());
    };
  }
  std::vector<AlertIncidentRow> last_of_each() const {
    std::map<std::pair<std::string, int64_t>, AlertIncidentRow> last;
    for (const AlertIncidentRow& row : saved) last[{row.alert, row.incident_id}] = row;
    std::vector<AlertIncidentRow> rows;
    for (auto& [key, row] : last) {
      if (!row.done) rows.push_back(row);
    }
    return rows;
  }
};

// Across a restart: the opened waits for its record; a new dispatcher restored from the records
// continues the incident with a probe still down (new outage and incident ids), ends it for a
// probe that is back, and sends one resolved under the old id; a pending message goes again.
TEST(IncidentAlerts, AMessageWaitsForItsRecordAndARestartContinuesTheIncident) {
  Receiver receiver;
  const AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  AlertDispatcher::Options options = incident_options();
  options.record_wait_ms = 60'000;
  RecordBook book;
  const int64_t t0 = wall_now_ms() - 2000;
  std::vector<AlertIncidentRow> pending_opened;
  {
    Harness first({hook}, {}, options);
    first.dispatcher.set_record_save(book.saver());
    first.dispatcher.notify(member_event("db-write", 11, 7, t0));
    first.dispatcher.notify(member_event("db-read", 12, 7, t0 + 300));
    ASSERT_TRUE(run_until(
        first.loop, [&] { return !book.saved.empty(); }, 5s));
    run_for(first.loop, 300ms);
    EXPECT_EQ(receiver.count(), 0u) << "not before its record is stored";
    pending_opened = book.last_of_each();
    ASSERT_EQ(pending_opened.size(), 1u);
    EXPECT_EQ(pending_opened[0].last_message, "opened");
    EXPECT_TRUE(pending_opened[0].pending);
    ASSERT_EQ(pending_opened[0].members.size(), 2u);
    EXPECT_EQ(pending_opened[0].members[0].probe, "db-write");
    EXPECT_FALSE(pending_opened[0].members[0].told) << "as before the message: sent again whole";
    first.dispatcher.records_stored(book.saved.size());
    ASSERT_TRUE(run_until(
        first.loop, [&] { return receiver.count() == 1 && !book.last_of_each()[0].pending; }, 5s));
    EXPECT_TRUE(book.last_of_each()[0].members[1].told);
    first.dispatcher.stop(0);
  }

  // Restarted: db-write's first samples are down (a new outage 21 in a new store incident 8),
  // db-read's are up.
  const std::vector<AlertIncidentRow> records = book.last_of_each();
  Harness second({hook}, {}, options);
  second.dispatcher.set_record_save(book.saver());
  second.dispatcher.restore(records, {"db-write", "db-read"}, wall_now_ms());
  EXPECT_TRUE(second.dispatcher.awaiting_restart());
  const AlertEvent still_down = member_event("db-write", 21, 8, wall_now_ms() - 500);
  second.dispatcher.notify(still_down);
  second.dispatcher.probe_back("db-read", wall_now_ms());
  EXPECT_FALSE(second.dispatcher.awaiting_restart());
  run_for(second.loop, 600ms);  // past the gather: a second opened would have been made
  second.dispatcher.records_stored(book.saved.size());
  run_for(second.loop, 200ms);
  EXPECT_EQ(receiver.count(), 1u) << "no second opened";
  second.dispatcher.notify(member_closed(still_down, wall_now_ms()));
  ASSERT_TRUE(run_until(
      second.loop,
      [&] {
        second.dispatcher.records_stored(book.saved.size());
        return receiver.count() == 2;
      },
      5s));
  const json resolved = receiver.requests()[1].json_body();
  EXPECT_EQ(resolved["event"], "incident_resolved");
  EXPECT_EQ(resolved["incident"], 7);
  EXPECT_EQ(resolved["root_probe"], "db-write");
  EXPECT_EQ(resolved["start_ms"], t0);
  for (const json& component : resolved["components"]) EXPECT_FALSE(component["up"].is_null());
  ASSERT_TRUE(run_until(
      second.loop, [&] { return book.last_of_each().empty(); }, 5s))
      << "a settled resolved leaves nothing to tell";
  second.dispatcher.stop(0);

  // The opened's record as it was before its endpoint answered: a restart sends it again.
  Harness third({hook}, {}, options);
  third.dispatcher.set_record_save(book.saver());
  third.dispatcher.restore(pending_opened, {"db-write", "db-read"}, wall_now_ms());
  ASSERT_TRUE(run_until(
      third.loop,
      [&] {
        third.dispatcher.records_stored(book.saved.size());
        return receiver.count() == 3;
      },
      5s));
  EXPECT_EQ(receiver.requests()[2].json_body()["summary"],
            receiver.requests()[0].json_body()["summary"]);
  third.dispatcher.stop(0);
}

// Alertmanager forgets an alert not re-sent within its resolve_timeout: a restored incident's
// BlipIncident goes again at the first tick, with the labels it opened with, and is resolved
// (endsAt) when its probe's first sample after the restart is up.
TEST(IncidentAlerts, ARestoredIncidentReachesAlertmanagerAgainAtOnce) {
  Receiver receiver;
  AlertDispatcher::Options options = incident_options();
  Harness harness({alert_to("am", AlertConfig::Kind::alertmanager, receiver.url(""))}, {}, options);
  RecordBook book;
  harness.dispatcher.set_record_save(book.saver());
  const int64_t down_ms = wall_now_ms() - 60'000;
  const AlertIncidentRow row{
      "am",
      7,
      "opened",
      false,
      {{"db-write", "postgres", ErrorClass::timeout, "no answer", down_ms, 0, true}},
      down_ms,
      false};
  harness.dispatcher.restore({row}, {"db-write"}, wall_now_ms());
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 1; }, 3s))
      << "at the first tick (20 ms), far inside the 60 s re-send";
  const json firing = receiver.requests()[0].json_body()[0];
  EXPECT_EQ(firing["labels"]["alertname"], "BlipIncident");
  EXPECT_EQ(firing["labels"]["incident"], "7");
  EXPECT_EQ(firing["labels"]["root_probe"], "db-write");
  EXPECT_FALSE(firing.contains("endsAt"));
  harness.dispatcher.probe_back("db-write", wall_now_ms());
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] {
        harness.dispatcher.records_stored(book.saved.size());
        return receiver.count() == 2;
      },
      5s));
  const json resolved = receiver.requests()[1].json_body()[0];
  EXPECT_EQ(resolved["labels"], firing["labels"]);
  EXPECT_TRUE(resolved.contains("endsAt"));
}

// The operator's note (`blip incident note`), looked up when a message is made: the opened message
// before it has none, the resolved one after it carries the words.
TEST(IncidentAlerts, TheNextMessageAfterAnOperatorsNoteCarriesIt) {
  Receiver receiver;
  Harness harness({alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"))}, {},
                  incident_options());
  std::optional<IncidentNote> note;
  harness.dispatcher.set_note_lookup([&](int64_t incident_id) -> std::optional<IncidentNote> {
    return incident_id == 5 ? note : std::nullopt;
  });
  const int64_t t0 = wall_now_ms() - 2000;
  const AlertEvent write = member_event("db-write", 21, 5, t0);
  harness.dispatcher.notify(write);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 1; }, 5s));
  EXPECT_TRUE(receiver.requests().at(0).json_body()["note"].is_null());
  note = IncidentNote{"identified", "the hourly VM snapshot locks the database disk", t0 + 1000};
  harness.dispatcher.notify(member_closed(write, t0 + 3000));
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() == 2; }, 5s));
  const json resolved = receiver.requests().at(1).json_body();
  EXPECT_EQ(resolved["event"], "incident_resolved");
  EXPECT_EQ(resolved["note"]["text"], "the hourly VM snapshot locks the database disk");
  EXPECT_NE(resolved["timeline"].get<std::string>().find(
                "identified: the hourly VM snapshot locks the database disk"),
            std::string::npos)
      << resolved.dump(2);
}

TEST(IncidentAlerts, GroupProbeAndEventsWithoutAnIncidentKeepOneMessagePerOutage) {
  Receiver receiver;
  AlertConfig each = alert_to("each", AlertConfig::Kind::webhook, receiver.url("/each"));
  each.group = AlertConfig::Group::probe;
  Harness harness({each, alert_to("pager", AlertConfig::Kind::webhook, receiver.url("/pager"))}, {},
                  incident_options());
  const int64_t t0 = wall_now_ms() - 2000;
  const AlertEvent write = member_event("db-write", 1, 3, t0);
  const AlertEvent read = member_event("db-read", 2, 3, t0 + 100);
  const AlertEvent loose = opened_event("web", 4, t0);  // no incident id: per outage everywhere
  for (const AlertEvent& event : {write, read, loose}) harness.dispatcher.notify(event);
  for (const AlertEvent& event : {write, read, loose})
    harness.dispatcher.notify(member_closed(event, t0 + 3000));
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return receiver.at("/each").size() == 6 && receiver.at("/pager").size() == 4; }, 5s));
  run_for(harness.loop, 500ms);
  EXPECT_EQ(receiver.at("/each").size(), 6u);
  EXPECT_EQ(event_names(receiver.at("/pager")),
            (std::vector<std::string>{"incident_opened", "incident_resolved", "outage_closed",
                                      "outage_opened"}))
      << "a short incident's opened goes out as it resolves, with the resolved";
}

TEST(IncidentAlerts, BlipsOwnTroubleIsOneIncidentOfItsComponentInBothGroupings) {
  Receiver receiver;
  AlertConfig each = alert_to("each", AlertConfig::Kind::webhook, receiver.url("/each"));
  each.group = AlertConfig::Group::probe;
  each.flapping = FlappingRule{2, 3'600'000};  // two kinds of one spell are not flapping
  Harness harness({alert_to("pager", AlertConfig::Kind::webhook, receiver.url("/pager")), each,
                   alert_to("am", AlertConfig::Kind::alertmanager, receiver.url("/am"))},
                  {}, incident_options());
  BlipTroubleWatch watch(1'500);
  auto tell = [&](const BlipCounters& counters) {
    for (const AlertEvent& event : watch.observe(counters, wall_now_ms()))
      harness.dispatcher.notify(event);
  };
  BlipCounters counters;
  counters.dropped_samples = 12;
  tell(counters);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.at("/pager").size() == 1; }, 5s));
  const json opened = receiver.at("/pager")[0].json_body();
  EXPECT_EQ(opened["event"], "incident_opened");
  EXPECT_EQ(opened["root_probe"], "blip");
  EXPECT_EQ(opened["trouble"], "store_queue_full");
  EXPECT_LT(opened["incident"].get<int64_t>(), 0) << "never a store incident's id";
  EXPECT_EQ(opened["summary"],
            "blip trouble: 12 samples dropped: the store's queue was full (the disk or the "
            "database file is not keeping up)");
  // More of the same is counted, not told; another kind joins: one grew.
  for (int i = 0; i < 5; ++i) {
    counters.dropped_samples += 7;
    tell(counters);
    run_for(harness.loop, 100ms);
  }
  counters.dropped_log_lines = 3;
  tell(counters);
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.at("/pager").size() == 2; }, 5s));
  const json grew = receiver.at("/pager")[1].json_body();
  EXPECT_EQ(grew["state"], "grew");
  EXPECT_EQ(grew["summary"],
            "blip's trouble grew; also: 3 log lines dropped (the log's queue overran, or stderr "
            "would not take them)");
  // Quiet for the settle period: one resolved, with what the spell counted in all.
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] {
        tell(counters);
        return receiver.at("/pager").size() == 3 && receiver.at("/each").size() == 4;
      },
      8s));
  const json resolved = receiver.at("/pager")[2].json_body();
  EXPECT_EQ(resolved["state"], "resolved");
  EXPECT_TRUE(
      resolved["summary"].get<std::string>().starts_with("blip's trouble is over, none since "))
      << resolved["summary"];
  const std::string timeline = resolved["timeline"];
  EXPECT_NE(timeline.find("blip: 47 samples dropped"), std::string::npos) << timeline;
  EXPECT_NE(timeline.find("blip: 3 log lines dropped"), std::string::npos) << timeline;
  // Grouped by probe: each kind opened and closed on its own.
  EXPECT_EQ(event_names(receiver.at("/each")),
            (std::vector<std::string>{"outage_closed", "outage_closed", "outage_opened",
                                      "outage_opened"}));
  // Alertmanager: one BlipIncident for the spell, a warning, resolved at its end.
  run_for(harness.loop, 300ms);
  const auto manager = receiver.at("/am/api/v2/alerts");
  ASSERT_GE(manager.size(), 2u);
  for (const auto& request : manager) {
    const json labels = request.json_body()[0]["labels"];
    EXPECT_EQ(labels["alertname"], "BlipIncident");
    EXPECT_EQ(labels["root_probe"], "blip");
    EXPECT_EQ(labels["severity"], "warning");
    EXPECT_EQ(labels["incident"], opened["incident"].dump());
  }
  EXPECT_TRUE(manager.back().json_body()[0].contains("endsAt"));
}

TEST(IncidentAlerts, FlappingCountsIncidentsByTheirRootAndMaintenanceHoldsAWholeIncident) {
  Receiver receiver;
  AlertConfig hook = alert_to("hook", AlertConfig::Kind::webhook, receiver.url("/webhook"));
  hook.flapping = FlappingRule{3, 3'600'000};
  Harness harness(
      {hook}, [](const AlertEvent& event) { return event.probe == "db-maintained"; },
      incident_options());
  const int64_t t0 = wall_now_ms() - 60'000;
  // Four Postgres incidents rooted at db-write: opened+resolved twice, then the summary, then
  // nothing of the fourth.
  for (int64_t i = 0; i < 4; ++i) {
    const AlertEvent write = member_event("db-write", 100 + 2 * i, 10 + i, t0 + i * 10'000);
    const AlertEvent read = member_event("db-read", 101 + 2 * i, 10 + i, t0 + i * 10'000 + 200);
    harness.dispatcher.notify(write);
    harness.dispatcher.notify(read);
    harness.dispatcher.notify(member_closed(write, write.start_ms + 5000));
    harness.dispatcher.notify(member_closed(read, write.start_ms + 6000));
  }
  // Maintenance on the root holds the whole incident, its join outside any window included.
  const AlertEvent maintained = member_event("db-maintained", 200, 20, t0 + 50'000);
  const AlertEvent web = member_event("web", 201, 20, t0 + 50'500);
  harness.dispatcher.notify(maintained);
  harness.dispatcher.notify(web);
  run_for(harness.loop, 600ms);
  harness.dispatcher.notify(member_closed(web, t0 + 55'000));
  harness.dispatcher.notify(member_closed(maintained, t0 + 56'000));
  ASSERT_TRUE(run_until(
      harness.loop, [&] { return receiver.count() >= 5; }, 5s));
  run_for(harness.loop, 500ms);
  EXPECT_EQ(event_names(receiver.requests()),
            (std::vector<std::string>{"flapping", "incident_opened", "incident_opened",
                                      "incident_resolved", "incident_resolved"}));
  json summary;
  for (const auto& request : receiver.requests()) {
    if (request.json_body()["event"] == "flapping") summary = request.json_body();
  }
  EXPECT_EQ(summary["summary"], "3 outages of db-write in the last 1h, 6 s each");
  EXPECT_EQ(summary["incident"], 12);
  // Suppressed: the third's resolved, the fourth's opened and resolved. Held: the maintained
  // incident's opened and resolved.
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::suppressed), 3u);
  EXPECT_EQ(harness.count(AlertConfig::Kind::webhook, AlertResult::held), 2u);
}

// A real Alertmanager: the opened event makes an active alert with blip's
// labels, the closed one resolves it.
class AlertmanagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = test::free_port();
    dir_.write("alertmanager.yml",
               "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n");
    server_ = std::make_unique<test::ChildProcess>(
        std::vector<std::string>{
            "/usr/bin/prometheus-alertmanager", "--config.file=" + dir_.file("alertmanager.yml"),
            "--storage.path=" + dir_.file("data"),
            "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--cluster.listen-address="},
        dir_.file("stdout.log"), dir_.file("stderr.log"));
    ASSERT_TRUE(test::wait_for_port(port_, 20'000)) << test::read_file(dir_.file("stderr.log"));
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Alertmanager's own view: the alerts it holds active with blip's labels.
  json active_alerts(const std::string& probe) const {
    json found = json::array();
    const test::HttpResponse response = test::http_request(base() + "/api/v2/alerts");
    if (response.status != 200) return found;
    for (const json& alert : json::parse(response.body)) {
      if (alert["labels"].value("probe", "") == probe && alert["status"]["state"] == "active")
        found.push_back(alert);
    }
    return found;
  }

  test::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<test::ChildProcess> server_;
};

TEST_F(AlertmanagerTest, OpenedIsActiveAndClosedResolves) {
  Harness harness({alert_to("am", AlertConfig::Kind::alertmanager, base())});
  const int64_t start = wall_now_ms() - 2000;
  AlertEvent opened = opened_event("web-health", 77, start);
  opened.at_ms = wall_now_ms();
  harness.dispatcher.notify(opened);
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return harness.count(AlertConfig::Kind::alertmanager, AlertResult::sent) == 1; }, 10s));
  json active;
  ASSERT_TRUE(test::wait_until(
      [&] {
        active = active_alerts("web-health");
        return active.size() == 1;
      },
      10s))
      << test::read_file(dir_.file("stderr.log"));
  EXPECT_EQ(active[0]["labels"], json({{"alertname", "BlipOutage"},
                                       {"probe", "web-health"},
                                       {"type", "http"},
                                       {"error", "timeout"}}));
  EXPECT_EQ(active[0]["annotations"]["summary"],
            "web-health is down: timeout (no answer within 1s)");

  AlertEvent closed = closed_event(opened, wall_now_ms() - start);
  harness.dispatcher.notify(closed);
  ASSERT_TRUE(run_until(
      harness.loop,
      [&] { return harness.count(AlertConfig::Kind::alertmanager, AlertResult::sent) == 2; }, 10s));
  EXPECT_TRUE(test::wait_until([&] { return active_alerts("web-health").empty(); }, 10s));
  EXPECT_EQ(harness.count(AlertConfig::Kind::alertmanager, AlertResult::failed), 0u);
}

}  // namespace
}  // namespace blip
