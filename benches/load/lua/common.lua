-- Shared by every scenario: numbers each thread, and at the end appends one JSON line
-- (rate, latency percentiles, errors) to the file named by WRK_OUT, tagged with WRK_NAME.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  local line = string.format(
    '{"name":"%s","requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"non2xx":%d}\n',
    os.getenv("WRK_NAME") or "?", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, non2xx)
  local f = assert(io.open(os.getenv("WRK_OUT"), "a"))
  f:write(line)
  f:close()
end
