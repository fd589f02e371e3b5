-- wrk script of `manage.py bench_sign`: sign a petition (or load its page) exactly N times.
--
-- The closed loop, its timing and its report are bench/closed_loop.lua's (BENCH_REQUESTS,
-- BENCH_THREADS and BENCH_PARK_PORT are read there). Configured by environment variables:
--   BENCH_MODE        "post" to sign, "get" to load the petition page
--   BENCH_RUN         a run id; new signers are bench-<run>-<thread>-<n>@example.org
--   BENCH_RETURNING   the share (0…1) of signers who are already supporters: the synthetic
--                     bench-supporter-<n>@example.org, each at most once in a run
--   BENCH_SUPPORTERS  how many synthetic supporters there are
--   BENCH_CSRF_COOKIE the csrftoken cookie a browser got with the page
--   BENCH_CSRF_TOKEN  the form's csrfmiddlewaretoken from that page
--
-- Prints one JSON line from done().

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "closed_loop.lua")

local function urlencode(value)
   return (value:gsub("[^%w%-%._~]", function(char)
      return string.format("%%%02X", string.byte(char))
   end))
end

function init(args)
   loop_init()
   mode = os.getenv("BENCH_MODE") or "post"
   run = os.getenv("BENCH_RUN") or "run"
   returning_share = tonumber(os.getenv("BENCH_RETURNING") or "0")
   supporters = tonumber(os.getenv("BENCH_SUPPORTERS") or "0")
   counter = 0
   returning_due, returning_sent = 0, 0

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
end

function request()
   counter = counter + 1
   loop_sent()
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
   loop_answered(status, is_ok(status, headers))
end

function done(summary, latency, requests)
   loop_report(summary, {}, { mode = os.getenv("BENCH_MODE") or "post" })
end
