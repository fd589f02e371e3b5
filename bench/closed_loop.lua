-- What the wrk scripts of the benchmarks share (bench/sign.lua, bench/webhooks.lua): a closed
-- loop that sends exactly each thread's share of N requests, times every one itself, and
-- reports them all in one JSON line. A script runs `dofile` on this file first, then defines
-- request() and done() (with loop_totals()), and calls loop_init() from its init() and
-- loop_answered() from its response().
--
-- Run with as many threads as connections (-t C -c C): each wrk thread then drives one
-- connection, so request() and response() alternate and the script can time every request
-- itself. wrk's own latency histogram is "corrected" for coordinated omission, which adds
-- made-up samples that a closed-loop test at fixed concurrency does not have.
--
-- Environment (wrk's setup() gets no script arguments):
--   BENCH_REQUESTS    requests in all, shared out between the threads
--   BENCH_THREADS     the -t given to wrk
--   BENCH_PARK_PORT   a local port that accepts connections and never answers (see finish)
--
-- Prints "bench: thread finished" once a thread has its answers (the command then stops wrk,
-- which otherwise sleeps for the whole --duration).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- A connection whose thread has sent its share idles this long (ms) until wrk is stopped.
local IDLE_MS = 3600 * 1000

-- setup() runs in wrk's main Lua state, once per thread, before any thread starts.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

-- Everything below runs in each thread's own Lua state.
function loop_init()
   local total = tonumber(os.getenv("BENCH_REQUESTS") or "0")
   thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
   share = math.floor(total / thread_count)
   if thread_id <= total % thread_count then
      share = share + 1
   end
   issued, answered, ok = 0, 0, 0
   status_4xx, status_5xx, status_other = 0, 0, 0
   latencies = {}
   first_sent_us, last_answer_us, sent_at = nil, nil, nil
   finished = false
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

-- Called by request() as it builds a request: its clock starts.
function loop_sent()
   sent_at = now_us()
   first_sent_us = first_sent_us or sent_at
end

-- Called by response() with the answer's status and whether it is the one expected.
function loop_answered(status, is_ok)
   local answered_at = now_us()
   if sent_at then
      latencies[#latencies + 1] = answered_at - sent_at
   end
   last_answer_us = answered_at
   answered = answered + 1
   if is_ok then
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

-- Called by done(): the threads' counts summed (with the script's own `counters`, names of
-- globals of each thread), the run's seconds and latencies; `extra` is added as it is.
-- Prints them as one JSON line.
function loop_report(summary, counters, extra)
   local totals = {
      requests = 0, answered = 0, ok = 0, status_4xx = 0, status_5xx = 0, status_other = 0,
   }
   for _, name in ipairs(counters) do
      totals[name] = 0
   end
   local all_latencies = {}
   local started, ended = nil, nil
   for _, thread in ipairs(threads) do
      for key, _ in pairs(totals) do
         totals[key] = totals[key] + thread:get(key == "requests" and "issued" or key)
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
   for key, value in pairs(extra or {}) do
      totals[key] = value
   end
   io.write(json_value(totals) .. "\n")
   io.flush()
end
