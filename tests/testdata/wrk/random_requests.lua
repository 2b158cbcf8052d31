-- A fuzzed request stream for wrk (request_fuzz_test): random methods, random
-- paths (ping tokens, traversal attempts, encoded dots, very long paths),
-- oversized and odd headers, bodies up to 2 MiB. Each thread counts statuses
-- and responses that look like a file from the host; `done` prints one JSON line.
local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%/?&=+"
-- No HEAD: wrk would wait for the body its Content-Length announces.
local methods = { "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND" }
local bases = {
  "/ping/", "/ping/", "/ping/x/start", "/api/v2/", "/api/v2/summary.json", "/metrics", "/status.json", "/",
  "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/ping/../../../etc/passwd", "//etc/passwd",
  "/api/v2/components.json/../../../../etc/shadow", "/..%2f..%2f..%2fetc%2fpasswd", "/healthz?",
  "/status.json%00.html", "/proc/self/environ", "/ping/%00", "/index.html", "/static/../../etc/hosts",
}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + math.random(1000000))
  statuses = {}
  leaks = 0
  responses = 0
end

local function random_text(n)
  local t = {}
  for i = 1, n do
    local k = math.random(#alphabet)
    t[i] = alphabet:sub(k, k)
  end
  return table.concat(t)
end

local calls = 0

function request()
  -- wrk checks each thread's first request with its own parser (80 KiB header limit): keep that one plain.
  calls = calls + 1
  if calls == 1 then return wrk.format("GET", "/status.json") end
  local path = bases[math.random(#bases)] .. random_text(math.random(0, 64))
  local headers = {}
  local body = nil
  local r = math.random(40)
  if r == 1 then
    headers["X-Oversized"] = string.rep("A", math.random(16000, 200000))
  elseif r == 2 then
    path = path .. string.rep("B", math.random(2000, 100000))
  elseif r == 3 then
    for i = 1, math.random(100, 400) do headers["X-H" .. i] = random_text(40) end
  elseif r == 4 then
    body = string.rep("C", math.random(1, 2 * 1024 * 1024))
  elseif r == 5 then
    headers["Host"] = "../../etc"
    headers["Range"] = "bytes=0-18446744073709551615"
  elseif r == 6 then
    -- A body announced and never sent: the connection waits out the idle timeout (5 s).
    headers["Transfer-Encoding"] = "chunked, identity"
  end
  return wrk.format(methods[math.random(#methods)], path, headers, body)
end

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  if body and (body:find("root:x:0:0", 1, true) or body:find("/bin/sh", 1, true) or body:find("PATH=", 1, true)) then
    leaks = leaks + 1
  end
end

function done(summary, latency, requests)
  local all, total, leaked = {}, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    leaked = leaked + thread:get("leaks")
    for status, n in pairs(thread:get("statuses")) do all[status] = (all[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(all) do table.insert(parts, string.format('"%d":%d', status, n)) end
  io.write(string.format('{"responses":%d,"leaks":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
    .. '"timeouts":%d,"statuses":{%s}}\n', total, leaked, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, table.concat(parts, ",")))
end
