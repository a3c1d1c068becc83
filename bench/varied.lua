-- wrk script for the "hellovaried" scenario: every request of a connection
-- has a head of its own (another path, query and request id), as a site's
-- real traffic does, so that no server can answer from a head it saw before.
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

function init(args)
   n = 0
end

function request()
   n = n + 1
   local path = string.format("/items/%d/%d?page=%d", id, n, n % 97)
   return wrk.format("GET", path, {
      ["Host"] = "127.0.0.1",
      ["User-Agent"] = "wrk-varied",
      ["Accept"] = "text/html,application/json;q=0.9,*/*;q=0.8",
      ["X-Request-Id"] = string.format("%d-%d", id, n),
      ["Cookie"] = string.format("session=%08x; seen=%d", id * 7919 + n, n),
   })
end
