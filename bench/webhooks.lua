-- wrk script of `manage.py bench_webhooks`: post N Postmark tracking events, as Postmark would.
--
-- Run with as many threads as connections (-t C -c C), so that each thread times its own
-- requests (see bench/sign.lua, whose shape this follows).
--
-- Configured by environment variables:
--   BENCH_REQUESTS    events in all, shared out between the threads
--   BENCH_THREADS     the -t given to wrk
--   BENCH_RUN         the run id: message ids are bench-<run>-<n>, recipients
--                     bench-<run>-<n>@example.invalid, n = 0…BENCH_REQUESTS-1
--   BENCH_MAILING_ID  the mailing the events' metadata names
--   BENCH_FIRST_DELIVERY_ID  the delivery of message n is this + n
--   BENCH_DUPLICATES  the share (0…1) of posts that repeat the thread's last event exactly, as
--                     an ESP's retry does
--   BENCH_AUTH        the Authorization header (HTTP basic, the webhook secret)
--   BENCH_PARK_PORT   a local port that accepts connections and never answers
--
-- Of the distinct events, n mod 100 < 3 is a spam complaint, < 10 a hard bounce, and the rest
-- deliveries. Prints "bench: thread finished" once a thread has its answers, and from done()
-- one JSON line.

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

local IDLE_MS = 3600 * 1000

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

function init(args)
   local total = tonumber(os.getenv("BENCH_REQUESTS") or "0")
   thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
   share = math.floor(total / thread_count)
   if thread_id <= total % thread_count then
      share = share + 1
   end
   run = os.getenv("BENCH_RUN") or "run"
   mailing_id = os.getenv("BENCH_MAILING_ID") or "0"
   first_delivery_id = tonumber(os.getenv("BENCH_FIRST_DELIVERY_ID") or "0")
   duplicate_share = tonumber(os.getenv("BENCH_DUPLICATES") or "0")
   stamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z")

   issued, answered, ok, distinct, duplicates = 0, 0, 0, 0, 0
   duplicate_due = 0
   last_body = nil
   status_4xx, status_5xx, status_other = 0, 0, 0
   latencies = {}
   first_sent_us, last_answer_us, sent_at = nil, nil, nil
   finished = false

   headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = os.getenv("BENCH_AUTH") or "",
      ["User-Agent"] = "Postmark",
   }
   local park_port = os.getenv("BENCH_PARK_PORT")
   park_addr = park_port and wrk.lookup("127.0.0.1", park_port)[1]
   if share == 0 and park_addr then
      wrk.thread.addr = park_addr
   end
end

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

-- Postmark's webhook bodies (https://postmarkapp.com/developer/webhooks/), for message n.
local function event_body(n)
   local message_id = string.format("bench-%s-%d", run, n)
   local recipient = message_id .. "@example.invalid"
   local common = string.format(
      '"ServerID":23,"MessageStream":"outbound","MessageID":"%s","Tag":"bench",'
         .. '"Metadata":{"delivery_id":"%d","mailing_id":"%s"}',
      message_id, first_delivery_id + n, mailing_id
   )
   local kind = n % 100
   if kind >= 10 then
      return string.format(
         '{"RecordType":"Delivery",%s,"Recipient":"%s","DeliveredAt":"%s",'
            .. '"Details":"smtp;250 2.0.0 OK"}',
         common, recipient, stamp
      )
   end
   local complaint = kind < 3
   return string.format(
      '{"RecordType":"%s",%s,"ID":%d,"Type":"%s","TypeCode":%d,"Name":"%s",'
         .. '"Description":"%s","Details":"%s","Email":"%s","From":"campaigns@rally.example",'
         .. '"BouncedAt":"%s","DumpAvailable":false,"Inactive":true,"CanActivate":%s,'
         .. '"Subject":"Add your name","Content":""}',
      complaint and "SpamComplaint" or "Bounce", common, 900000000 + n,
      complaint and "SpamComplaint" or "HardBounce", complaint and 512 or 1,
      complaint and "Spam complaint" or "Hard bounce",
      complaint and "The subscriber explicitly marked this email as spam."
         or "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
      complaint and "" or "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
      recipient, stamp, complaint and "false" or "true"
   )
end

function request()
   sent_at = now_us()
   first_sent_us = first_sent_us or sent_at
   duplicate_due = duplicate_due + duplicate_share
   local body
   if duplicate_due >= 1 - 1e-9 and last_body then
      -- An ESP's retry: the very same event again.
      duplicate_due = duplicate_due - 1
      duplicates = duplicates + 1
      body = last_body
   else
      -- Distinct events interleave between threads: thread t posts n = t-1, t-1+T, …
      body = event_body(thread_id - 1 + thread_count * distinct)
      distinct = distinct + 1
      last_body = body
   end
   return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
   local answered_at = now_us()
   if sent_at then
      latencies[#latencies + 1] = answered_at - sent_at
   end
   last_answer_us = answered_at
   answered = answered + 1
   if status == 200 then
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
   if #sorted == 0 then return nil end
   local rank = math.max(1, math.ceil(p / 100 * #sorted))
   return sorted[rank]
end

function done(summary, latency, requests)
   local totals = {
      requests = 0, answered = 0, ok = 0, status_4xx = 0, status_5xx = 0, status_other = 0,
      distinct = 0, duplicates = 0,
   }
   local all_latencies = {}
   local started, ended = nil, nil
   for _, thread in ipairs(threads) do
      for key, _ in pairs(totals) do
         local name = key == "requests" and "issued" or key
         totals[key] = totals[key] + thread:get(name)
      end
      for _, value in ipairs(thread:get("latencies")) do
         all_latencies[#all_latencies + 1] = value
      end
      local first, last = thread:get("first_sent_us"), thread:get("last_answer_us")
      if first and (started == nil or first < started) then started = first end
      if last and (ended == nil or last > ended) then ended = last end
   end
   table.sort(all_latencies)
   local errors = summary.errors
   totals.socket_errors = errors.connect + errors.read + errors.write
   totals.seconds = (started and ended) and (ended - started) / 1000000 or 0
   totals.latency_us = {
      p50 = percentile(all_latencies, 50),
      p95 = percentile(all_latencies, 95),
      p99 = percentile(all_latencies, 99),
      max = all_latencies[#all_latencies],
   }
   io.write(json_value(totals) .. "\n")
   io.flush()
end
