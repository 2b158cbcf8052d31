// A Redis server's bytes through hiredis's reply reader (the library's RESP
// parser, bounded as the connection bounds it), then convert_redis_reply and what the
// probe reads of a reply: error classification and the Sidekiq fields.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <memory>
#include <string>

#include "blip/adapters/redis_uv.hpp"
#include "blip/probes/sidekiq.hpp"
#include "fuzz_input.hpp"

namespace {

void read_reply(const blip::RedisReply& reply, int depth) {
  if (reply.is_error()) blip::classify_redis_error_reply(reply.text);
  if (reply.type == blip::RedisReply::Type::string) {
    std::string problem;
    blip::sidekiq_enqueued_at_s(reply.text, problem);
    blip::sidekiq_beat_s(reply.text);
  }
  if (depth < 8) {
    for (const blip::RedisReply& element : reply.elements) read_reply(element, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(),
                                                                  redisReaderFree);
  blip::bound_redis_reply_arrays(reader.get());  // as RedisConnection's reader is
  if (redisReaderFeed(reader.get(), reinterpret_cast<const char*>(data), size) != REDIS_OK)
    return 0;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) break;
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(raw),
                                                                  freeReplyObject);
    read_reply(blip::convert_redis_reply(*reply), 0);
  }
  return 0;
}
