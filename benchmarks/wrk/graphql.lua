-- wrk script for every scenario: `wrk -t T ... -s graphql.lua <url> -- <data file> T`.
-- The data file (written by benchmarks.scenarios) says which kinds of request
-- to send and in what shares. Errors are counted here, not by wrk: a non-2xx
-- status, or a 200 whose body carries GraphQL `errors`.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local data, prepared, cumulative = nil, {}, {}
-- Globals, not locals: done() reads them from each thread with thread:get().
n_non2xx, n_gql, n_resp, sample = 0, 0, 0, ""
local used = { reads = {}, cancel = 0, reschedule = 0, schedule = 0 }
local slot, stride = 0, 1

local function post(token, body)
  return wrk.format("POST", data.path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function init(args)
  data = dofile(args[1])
  math.randomseed(1000 + id)
  local total = 0
  for _, entry in ipairs(data.mix) do
    total = total + entry[2]
    table.insert(cumulative, { entry[1], total })
  end
  for kind, list in pairs(data.reads) do
    prepared[kind] = {}
    for i, r in ipairs(list) do prepared[kind][i] = post(r.t, r.b) end
    used.reads[kind] = math.random(#list) - 1
  end
  -- Threads take interleaved, disjoint entries of the cancel pool, and disjoint hours to book.
  stride = tonumber(args[2] or "1")
  used.cancel = id
  used.reschedule = id * 7
  slot = id * 200000 + (data.slot_base or 0)
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

local function next_slot()
  slot = slot + 1
  return iso(data.write_base + slot * 3600)
end

local function write(kind)
  local q = data.queries
  if kind == "cancel" and data.cancel[used.cancel + 1] then
    local c = data.cancel[used.cancel + 1]
    used.cancel = used.cancel + stride  -- each session is cancelled once; then schedule instead
    return post(c.t, '{"query":' .. q.cancel .. ',"variables":{"id":"' .. c.id .. '"}}')
  end
  if kind == "reschedule" and #data.reschedule > 0 then
    used.reschedule = used.reschedule + 1
    local r = data.reschedule[(used.reschedule % #data.reschedule) + 1]
    return post(r.t, '{"query":' .. q.reschedule .. ',"variables":{"id":"' .. r.id .. '","at":"' .. next_slot() .. '"}}')
  end
  -- schedule (also what a spent cancel pool falls back to)
  used.schedule = used.schedule + 1
  local s = data.schedule[(used.schedule % #data.schedule) + 1]
  local counselor = s.c ~= "" and (',"counselorId":"' .. s.c .. '"') or ""
  return post(s.t, '{"query":' .. q.schedule .. ',"variables":{"input":{"patientId":"' .. s.p
    .. '","startsAt":"' .. next_slot() .. '","durationMinutes":50,"modality":"VIDEO","feeAmount":15000'
    .. counselor .. '}}}')
end

-- Think time between a connection's requests (0: back to back, a closed loop).
function delay()
  local think = data.think_ms or 0
  if think <= 0 then return 0 end
  return math.random(math.floor(think / 2), math.floor(think * 3 / 2))
end

function request()
  local r, kind = math.random(), cumulative[#cumulative][1]
  for _, entry in ipairs(cumulative) do
    if r <= entry[2] then kind = entry[1]; break end
  end
  local list = prepared[kind]
  if list then
    used.reads[kind] = used.reads[kind] + 1
    return list[(used.reads[kind] % #list) + 1]
  end
  return write(kind)
end

function response(status, headers, body)
  n_resp = n_resp + 1
  if status < 200 or status > 299 then
    n_non2xx = n_non2xx + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  elseif string.find(body, '"errors"', 1, true) then
    n_gql = n_gql + 1
    if sample == "" then sample = string.sub(body, 1, 300) end
  end
end

function done(summary, latency, requests)
  local non2xx, gql, resp, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("n_non2xx")
    gql = gql + t:get("n_gql")
    resp = resp + t:get("n_resp")
    if first == "" then first = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"responses":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"gql_errors":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"sample":"%s"}\n',
    summary.requests, resp, summary.duration, summary.bytes, non2xx, gql,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    (string.gsub(first, '[%c"\\]', " "))))
end
