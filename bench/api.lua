-- wrk script of `manage.py bench_api`: call the OSDI API exactly N times, as an integrator.
--
-- The closed loop, its timing and its report are bench/closed_loop.lua's (BENCH_REQUESTS,
-- BENCH_THREADS and BENCH_PARK_PORT are read there). Configured by environment variables:
--   BENCH_MODE        "get": GET the URL's path (with BENCH_PAGES, pages spread over
--                     1…BENCH_PAGES, as a client asking for pages by number does);
--                     "walk": read a collection as an integrator's sync does: each thread
--                     starts at a page of its own (spread over 1…BENCH_PAGES) and follows
--                     `_links.next` from there, back to its first page at the end;
--                     "signup": POST a new person to the person signup helper at the path
--   BENCH_TOKEN       the OSDI-API-Token header
--   BENCH_RUN         a run id; new people are bench-api-<run>-<thread>-<n>@example.org
--   BENCH_PAGES       in "get" and "walk" modes, how many pages the collection has
--
-- A GET is ok when it answers 200, a signup when it answers 200 or 201. Prints one JSON line
-- from done().

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "closed_loop.lua")

function init(args)
   loop_init()
   mode = os.getenv("BENCH_MODE") or "get"
   run = os.getenv("BENCH_RUN") or "run"
   pages = tonumber(os.getenv("BENCH_PAGES") or "0")
   counter = 0
   headers = {
      ["Accept"] = "application/hal+json",
      ["OSDI-API-Token"] = os.getenv("BENCH_TOKEN") or "",
   }
   post_headers = {
      ["Accept"] = "application/hal+json",
      ["Content-Type"] = "application/json",
      ["OSDI-API-Token"] = os.getenv("BENCH_TOKEN") or "",
   }
   separator = wrk.path:find("?", 1, true) and "&" or "?"
   if mode == "walk" then
      local first_page = math.floor((thread_id - 1) * pages / thread_count) + 1
      first_path = wrk.path .. separator .. "page=" .. first_page
      next_path = first_path
   end
end

function request()
   counter = counter + 1
   loop_sent()
   if mode == "signup" then
      local email = string.format("bench-api-%s-%d-%d@example.org", run, thread_id, counter)
      local body = string.format(
         '{"person":{"given_name":"Bench","family_name":"Person%d",'
            .. '"email_addresses":[{"address":"%s"}],'
            .. '"postal_addresses":[{"country":"DE"}]},"add_tags":["bench-api-%s"]}',
         counter, email, run
      )
      return wrk.format("POST", wrk.path, post_headers, body)
   end
   if mode == "walk" then
      return wrk.format("GET", next_path, headers)
   end
   if pages > 0 then
      -- Pages interleave between threads and spread over the whole collection.
      local page = (thread_id - 1 + thread_count * (counter - 1)) * 7919 % pages + 1
      return wrk.format("GET", wrk.path .. separator .. "page=" .. page, headers)
   end
   return wrk.format("GET", wrk.path, headers)
end

function response(status, headers, body)
   local is_ok = status == 200 or (mode == "signup" and status == 201)
   if mode == "walk" then
      -- The href is absolute (scheme and host first): the path is what wrk requests.
      local href = body and body:match('"next":{"href":"https?://[^/"]+([^"]+)"')
      next_path = href or first_path
   end
   loop_answered(status, is_ok)
end

function done(summary, latency, requests)
   loop_report(summary, {})
end
