// The e-mail alert from the real daemon to a real SMTP server on loopback
// (Debian's python3-aiosmtpd, AUTH required): nginx frozen for 5 s at a 250 ms
// interval makes one outage, whose opened and closed mails arrive threaded
// (the closed one's In-Reply-To and References are the opened one's
// Message-ID), sent under the configured login; a second alert with a wrong
// password fails at once (535 is permanent), and no password reaches the log.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <thread>

#include "support/daemon.hpp"
#include "support/freeze.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"
#include "support/smtp_receiver.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

TEST(EmailAlerts, OpenedAndClosedMailsArriveThreadedUnderTheLoginAndNoPasswordIsLogged) {
  const std::string password = "Pa55-smtp-Secret-7Q";
  const std::string wrong_password = "Wr0ng-smtp-Secret-9Z";
  test::NginxServer nginx;
  test::TempDir dir;
  test::SmtpReceiver smtp(dir, "blip-alerts", password);
  dir.write("smtp-password", password + "\n");
  dir.write("wrong-password", wrong_password + "\n");
  const std::string config =
      test::http_config("web-health", nginx.url("/health"), "250ms", "1s") +
      fmt::format(
          "\n[[alert]]\nname = \"mail\"\nkind = \"email\"\ngroup = \"probe\"\nurl = \"{0}\"\n"
          "from = \"blip <blip@status.example.org>\"\n"
          "to = [\"ops@example.org\", \"Zoë on call <oncall@example.org>\"]\n"
          "username = \"blip-alerts\"\npassword_file = \"{1}\"\nsubject_prefix = \"[blip] \"\n\n"
          "[[alert]]\nname = \"mail-wrong-login\"\nkind = \"email\"\ngroup = \"probe\"\nurl = "
          "\"{0}\"\n"
          "from = \"blip@status.example.org\"\nto = [\"ops@example.org\"]\n"
          "username = \"blip-alerts\"\npassword_file = \"{2}\"\n",
          smtp.url(), dir.file("smtp-password"), dir.file("wrong-password"));
  test::Daemon blip(dir, config);
  ASSERT_TRUE(wait_until([&] { return blip.log().find("run: started") != std::string::npos; }, 10s))
      << blip.log();
  std::this_thread::sleep_for(2s);

  const auto freeze = test::freeze_for(nginx, 5s);
  ASSERT_TRUE(wait_until([&] { return smtp.received().size() >= 2; }, 15s))
      << blip.log() << smtp.log();
  std::this_thread::sleep_for(1s);
  const auto mails = smtp.received();
  ASSERT_EQ(mails.size(), 2u) << "only the alert with the right password gets through";
  const test::ReceivedMail& opened = mails[0];
  const test::ReceivedMail& closed = mails[1];
  for (const auto& mail : mails) {
    std::cout << "---- received (mail_from=" << mail.mail_from << " login=" << mail.login << ")\n"
              << mail.data << "\n";
    EXPECT_EQ(mail.login, "blip-alerts");
    EXPECT_EQ(mail.mail_from, "blip@status.example.org");
    EXPECT_EQ(mail.recipients, (std::vector<std::string>{"ops@example.org", "oncall@example.org"}));
    EXPECT_EQ(mail.header("From"), "blip <blip@status.example.org>");
    EXPECT_EQ(mail.header("To"),
              "ops@example.org, =?UTF-8?B?Wm/DqyBvbiBjYWxs?= <oncall@example.org>");
    EXPECT_EQ(mail.header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(mail.header("MIME-Version"), "1.0");
  }
  EXPECT_LT(opened.at_ms, static_cast<double>(freeze.thawed_ms))
      << "the opened mail came while the outage was still on";
  EXPECT_GT(closed.at_ms, static_cast<double>(freeze.thawed_ms));
  EXPECT_TRUE(std::regex_match(opened.header("Subject"),
                               std::regex(R"(\[blip\] web-health is down: timeout.*)")))
      << opened.header("Subject");
  EXPECT_TRUE(std::regex_match(closed.header("Subject"),
                               std::regex(R"(\[blip\] web-health is back after [0-9.]+s)")))
      << closed.header("Subject");
  EXPECT_TRUE(std::regex_match(opened.header("Message-ID"),
                               std::regex(R"(<outage-\d+\.opened\.\d+@status\.example\.org>)")))
      << opened.header("Message-ID");
  EXPECT_EQ(opened.header("In-Reply-To"), "");
  EXPECT_EQ(closed.header("In-Reply-To"), opened.header("Message-ID"));
  EXPECT_EQ(closed.header("References"), opened.header("Message-ID"));
  EXPECT_NE(closed.header("Message-ID"), opened.header("Message-ID"));
  EXPECT_NE(opened.body().find("probe:    web-health\n"), std::string::npos) << opened.body();
  EXPECT_NE(opened.body().find("error:    timeout\n"), std::string::npos) << opened.body();
  EXPECT_NE(closed.body().find("end:      "), std::string::npos) << closed.body();

  EXPECT_EQ(blip.metric("blip_alerts_total{kind=\"email\",result=\"sent\"}"), 2);
  EXPECT_EQ(blip.metric("blip_alerts_total{kind=\"email\",result=\"failed\"}"), 2)
      << "the wrong password: 535, failed at once, both messages";
  EXPECT_EQ(blip.metric("blip_alerts_total{kind=\"email\",result=\"retried\"}"), 0);
  ASSERT_EQ(blip.stop(), 0) << blip.log();
  const std::string log = blip.log();
  EXPECT_EQ(log.find(password), std::string::npos) << "the SMTP password reached the log";
  EXPECT_EQ(log.find(wrong_password), std::string::npos);
  EXPECT_NE(log.find(fmt::format("alert=mail kind=email event=outage_opened probe=web-health "
                                 "result=sent attempts=1 status=250 target={}",
                                 smtp.url())),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("alert=mail-wrong-login kind=email event=outage_opened probe=web-health "
                     "result=failed attempts=1 status=535"),
            std::string::npos)
      << log;
  EXPECT_TRUE(std::regex_search(smtp.log(), std::regex(R"(auth \S+ refused)"))) << smtp.log();
}

}  // namespace
}  // namespace blip
