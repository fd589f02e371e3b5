-- wrk script of `manage.py bench_sign`: sign a petition (or load its page) exactly N times.
--
-- Run with as many threads as connections (-t C -c C): each wrk thread then drives one
-- connection, so request() and response() alternate and this script can time every request
-- itself. wrk's own latency histogram is "corrected" for coordinated omission, which adds
-- made-up samples that a closed-loop test at fixed concurrency does not have.
--
-- Configured by environment variables (wrk's setup() gets no script arguments):
--   BENCH_MODE        "post" to sign, "get" to load the petition page
--   BENCH_REQUESTS    requests in all, shared out between the threads
--   BENCH_THREADS     the -t given to wrk
--   BENCH_RUN         a run id; new signers are bench-<run>-<thread>-<n>@example.org
--   BENCH_RETURNING   the share (0…1) of signers who are already supporters: the synthetic
--                     bench-supporter-<n>@example.org, each at most once in a run
--   BENCH_SUPPORTERS  how many synthetic supporters there are
--   BENCH_CSRF_COOKIE the csrftoken cookie a browser got with the page
--   BENCH_CSRF_TOKEN  the form's csrfmiddlewaretoken from that page
--   BENCH_PARK_PORT   a local port that accepts connections and never answers (see finish)
--
-- Prints "bench: thread finished" once a thread has its answers (the command then stops wrk,
-- which otherwise sleeps for the whole --duration), and from done() one JSON line.

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- A connection whose thread has sent its share idles this long (ms) until wrk is stopped.
local IDLE_MS = 3600 * 1000

local function urlencode(value)
   return (value:gsub("[^%w%-%._~]", function(char)
      return string.format("%%%02X", string.byte(char))
   end))
end

-- setup() runs in wrk's main Lua state, once per thread, before any thread starts.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

-- Everything below runs in each thread's own Lua state.
function init(args)
   mode = os.getenv("BENCH_MODE") or "post"
   run = os.getenv("BENCH_RUN") or "run"
   local total = tonumber(os.getenv("BENCH_REQUESTS") or "0")
   thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
   share = math.floor(total / thread_count)
   if thread_id <= total % thread_count then
      share = share + 1
   end
   returning_share = tonumber(os.getenv("BENCH_RETURNING") or "0")
   supporters = tonumber(os.getenv("BENCH_SUPPORTERS") or "0")

   issued, answered, ok, counter = 0, 0, 0, 0
   returning_due, returning_sent = 0, 0
   status_4xx, status_5xx, status_other = 0, 0, 0
   latencies = {}
   first_sent_us, last_answer_us, sent_at = nil, nil, nil
   finished = false

   local origin = wrk.scheme .. "://" .. wrk.headers["Host"]
   thanks_prefix = wrk.path .. "thanks/"
   get_headers = { ["Accept"] = "text/html", ["Accept-Language"] = "en" }
   -- What a browser sends with the form: its cookie, where it came from, the form encoding.
   post_headers = {
      ["Accept"] = "text/html",
      ["Accept-Language"] = "en",
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = "csrftoken=" .. (os.getenv("BENCH_CSRF_COOKIE") or ""),
      ["Origin"] = origin,
      ["Referer"] = origin .. wrk.path,
   }
   csrf_token = urlencode(os.getenv("BENCH_CSRF_TOKEN") or "")
   local park_port = os.getenv("BENCH_PARK_PORT")
   park_addr = park_port and wrk.lookup("127.0.0.1", park_port)[1]
   if share == 0 and park_addr then
      wrk.thread.addr = park_addr  -- nothing to send: do not even connect to the server
   end
end

-- wrk reconnects as soon as a response closes its connection (gunicorn's sync workers close
-- every one) and leaves that connection open, idle, until wrk exits. An idle connection holds
-- a sync worker until gunicorn's timeout kills it, so a finished thread would stall the
-- threads still running: its last reconnection goes to the parking port instead.
local function finish()
   if not finished then
      finished = true
      if park_addr then
         wrk.thread.addr = park_addr
      end
      io.write("bench: thread finished\n")
      io.flush()
      wrk.thread:stop()
   end
end

-- Called before each new request (not for wrk's resend after a broken connection): the gate
-- that keeps the thread to its share.
function delay()
   if issued >= share then
      if answered >= issued then
         finish()
      end
      return IDLE_MS
   end
   issued = issued + 1
   return 0
end

function request()
   counter = counter + 1
   sent_at = now_us()
   first_sent_us = first_sent_us or sent_at
   if mode == "get" then
      return wrk.format("GET", wrk.path, get_headers)
   end
   local email, last_name, postcode
   returning_due = returning_due + returning_share
   if returning_due >= 1 and supporters > 0 then
      -- A supporter signing again, typing what we hold (so their row stays as it was). Numbers
      -- interleave between threads: no two requests of a run name the same supporter.
      returning_due = returning_due - 1
      local number = (thread_id - 1 + thread_count * returning_sent) % supporters + 1
      returning_sent = returning_sent + 1
      email = string.format("bench-supporter-%d@example.org", number)
      last_name, postcode = "Supporter" .. number, ""
   else
      email = string.format("bench-%s-%d-%d@example.org", run, thread_id, counter)
      last_name, postcode = "Signer" .. counter, "10115"
   end
   local body = "csrfmiddlewaretoken=" .. csrf_token
      .. "&first_name=Bench"
      .. "&last_name=" .. last_name
      .. "&email=" .. urlencode(email)
      .. "&country=DE"
      .. "&postcode=" .. postcode
      .. "&consent=on"
      .. "&website="
   return wrk.format("POST", wrk.path, post_headers, body)
end

-- A page load is ok when it is 200; a signature when it redirects to this petition's thank-you
-- page (absolute or relative, perhaps with a query).
function is_ok(status, headers)
   if mode == "get" then
      return status == 200
   end
   if status ~= 302 and status ~= 303 then
      return false
   end
   local location = headers["Location"] or headers["location"] or ""
   return location:find(thanks_prefix, 1, true) ~= nil
end

function response(status, headers, body)
   local answered_at = now_us()
   if sent_at then
      latencies[#latencies + 1] = answered_at - sent_at
   end
   last_answer_us = answered_at
   answered = answered + 1
   if is_ok(status, headers) then
      ok = ok + 1
   elseif status >= 500 then
      status_5xx = status_5xx + 1
   elseif status >= 400 then
      status_4xx = status_4xx + 1
   else
      status_other = status_other + 1
   end
   if answered >= share then
      finish()
   end
end

local function json_value(value)
   if type(value) == "table" then
      local parts = {}
      for key, item in pairs(value) do
         parts[#parts + 1] = string.format("%q:%s", key, json_value(item))
      end
      table.sort(parts)
      return "{" .. table.concat(parts, ",") .. "}"
   elseif type(value) == "number" then
      if value ~= value or value == math.huge or value == -math.huge then return "null" end
      return string.format("%.17g", value)
   end
   return string.format("%q", tostring(value))
end

local function percentile(sorted, p)
   -- Nearest rank: the smallest value with at least p% of the samples at or below it.
   if #sorted == 0 then return nil end
   local rank = math.max(1, math.ceil(p / 100 * #sorted))
   return sorted[rank]
end

function done(summary, latency, requests)
   local totals = {
      requests = 0, answered = 0, ok = 0, status_4xx = 0, status_5xx = 0, status_other = 0,
   }
   local all_latencies = {}
   local started, ended = nil, nil
   for _, thread in ipairs(threads) do
      totals.requests = totals.requests + thread:get("issued")
      totals.answered = totals.answered + thread:get("answered")
      totals.ok = totals.ok + thread:get("ok")
      totals.status_4xx = totals.status_4xx + thread:get("status_4xx")
      totals.status_5xx = totals.status_5xx + thread:get("status_5xx")
      totals.status_other = totals.status_other + thread:get("status_other")
      for _, value in ipairs(thread:get("latencies")) do
         all_latencies[#all_latencies + 1] = value
      end
      local first, last = thread:get("first_sent_us"), thread:get("last_answer_us")
      if first and (started == nil or first < started) then started = first end
      if last and (ended == nil or last > ended) then ended = last end
   end
   table.sort(all_latencies)
   local errors = summary.errors
   io.write(json_value({
      mode = os.getenv("BENCH_MODE") or "post",
      requests = totals.requests,
      answered = totals.answered,
      ok = totals.ok,
      status_4xx = totals.status_4xx,
      status_5xx = totals.status_5xx,
      status_other = totals.status_other,
      socket_errors = errors.connect + errors.read + errors.write,
      seconds = (started and ended) and (ended - started) / 1000000 or 0,
      latency_us = {
         p50 = percentile(all_latencies, 50),
         p95 = percentile(all_latencies, 95),
         p99 = percentile(all_latencies, 99),
         max = all_latencies[#all_latencies],
      },
   }) .. "\n")
   io.flush()
end
