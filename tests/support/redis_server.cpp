#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>

#include <csignal>
#include <stdexcept>

namespace blip::test {
namespace {

std::string reply_text(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return {reply.str, reply.len};
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply.integer);
    case REDIS_REPLY_ARRAY: {
      std::string joined;
      for (size_t i = 0; i < reply.elements; ++i) {
        if (i > 0) joined += '\n';
        joined += reply_text(*reply.element[i]);
      }
      return joined;
    }
    default:
      return "(nil)";
  }
}

// One command on a blocking connection; the reply as text.
std::string run(redisContext* context, const std::vector<std::string>& argv) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  void* reply =
      redisCommandArgv(context, static_cast<int>(argv.size()), pointers.data(), lengths.data());
  if (!reply) throw std::runtime_error(std::string("redis command failed: ") + context->errstr);
  std::string text = reply_text(*static_cast<redisReply*>(reply));
  freeReplyObject(reply);
  return text;
}

}  // namespace

RedisServer::RedisServer(std::string password)
    : port_(free_port()), password_(std::move(password)) {
  start();
}

RedisServer::~RedisServer() {
  if (process_) thaw();
  process_.reset();  // SIGKILL: nothing to save
}

void RedisServer::start() {
  std::vector<std::string> argv{
      "redis-server",     "--port",    std::to_string(port_),  "--bind",       "127.0.0.1",
      "--save",           "",          "--appendonly",         "no",           "--dir",
      dir_.path(),        "--logfile", dir_.file("redis.log"), "--unixsocket", socket_path(),
      "--unixsocketperm", "700"};
  if (!password_.empty()) {
    argv.emplace_back("--requirepass");
    argv.push_back(password_);
  }
  process_ = std::make_unique<ChildProcess>(argv, dir_.file("stdout"), dir_.file("stderr"));
  if (!wait_for_port(port_)) {
    throw std::runtime_error("redis-server did not start: " + read_file(dir_.file("stderr")) +
                             read_file(dir_.file("redis.log")));
  }
}

void RedisServer::stop() {
  if (!process_) return;
  process_->signal(SIGCONT);
  process_->signal(SIGKILL);
  process_->wait(5000);
  process_.reset();
}

void RedisServer::freeze() const { process_->signal(SIGSTOP); }
void RedisServer::thaw() const { process_->signal(SIGCONT); }

std::string RedisServer::command(const std::vector<std::string>& argv, int db) const {
  redisContext* context = redisConnect("127.0.0.1", port_);
  if (!context || context->err) {
    std::string error = context ? context->errstr : "out of memory";
    redisFree(context);
    throw std::runtime_error("cannot connect to redis: " + error);
  }
  try {
    if (!password_.empty()) run(context, {"AUTH", password_});
    if (db != 0) run(context, {"SELECT", std::to_string(db)});
    std::string text = run(context, argv);
    redisFree(context);
    return text;
  } catch (...) {
    redisFree(context);
    throw;
  }
}

}  // namespace blip::test
