-- wrk script of `manage.py bench_webhooks`: post N Postmark tracking events, as Postmark would.
--
-- The closed loop, its timing and its report are bench/closed_loop.lua's (BENCH_REQUESTS,
-- the events in all, BENCH_THREADS and BENCH_PARK_PORT are read there). Configured by
-- environment variables:
--   BENCH_RUN         the run id: message ids are bench-<run>-<n>, recipients
--                     bench-<run>-<n>@example.invalid, n = 0…BENCH_REQUESTS-1
--   BENCH_MAILING_ID  the mailing the events' metadata names
--   BENCH_FIRST_DELIVERY_ID  the delivery of message n is this + n
--   BENCH_DUPLICATES  the share (0…1) of posts that repeat the thread's last event exactly, as
--                     an ESP's retry does
--   BENCH_AUTH        the Authorization header (HTTP basic, the webhook secret)
--
-- Of the distinct events, n mod 100 < 3 is a spam complaint, < 10 a hard bounce, and the rest
-- deliveries. Prints one JSON line from done().

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "closed_loop.lua")

function init(args)
   loop_init()
   run = os.getenv("BENCH_RUN") or "run"
   mailing_id = os.getenv("BENCH_MAILING_ID") or "0"
   first_delivery_id = tonumber(os.getenv("BENCH_FIRST_DELIVERY_ID") or "0")
   duplicate_share = tonumber(os.getenv("BENCH_DUPLICATES") or "0")
   stamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
   distinct, duplicates = 0, 0
   duplicate_due = 0
   last_body = nil
   headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = os.getenv("BENCH_AUTH") or "",
      ["User-Agent"] = "Postmark",
   }
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
   loop_sent()
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
   loop_answered(status, status == 200)
end

function done(summary, latency, requests)
   loop_report(summary, { "distinct", "duplicates" })
end
