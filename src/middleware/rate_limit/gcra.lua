-- GCRA for one request against the TAT stored at KEYS[1]: the same algorithm as gcra.rs,
-- run inside Redis so that every host checking the key sees one TAT and one clock.
-- KEYS[1]: the limited key. ARGV[1]: T, the emission interval, in ns. ARGV[2]: tau, the
-- tolerance (T x burst), in ns. Returns {allowed (0|1), remaining, retry_after_us,
-- reset_after_us}.
--
-- Times are microseconds as Lua numbers (doubles): now since the epoch is about 1.7e15 us,
-- well inside the 2^53 doubles hold exactly, where nanoseconds would not be.

-- Redis before 5 replicates scripts verbatim, which forbids a write after TIME; later
-- versions replicate effects and have this as a no-op.
if redis.replicate_commands then
  redis.replicate_commands()
end

local emission = tonumber(ARGV[1]) / 1000
local tolerance = tonumber(ARGV[2]) / 1000
-- Redis's clock, not the caller's: hosts with skewed clocks still agree on every TAT.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

-- A missing key (GET gives false) or a TAT in the past both mean "full burst available".
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local debt = tat - now
local debt_after = debt + emission
if debt_after > tolerance then
  -- Refused: nothing is written, so hammering a closed door does not delay its opening.
  return {0, 0, math.ceil(debt_after - tolerance), math.ceil(debt)}
end

local remaining = math.floor((tolerance - debt_after) / emission)
-- The key expires when its TAT reaches now, when it would mean a full burst anyway: memory
-- holds only the keys still in debt. '%.3f' keeps every digit (tostring keeps 14).
local expire_ms = math.max(1, math.ceil(debt_after / 1000))
redis.call('SET', KEYS[1], string.format('%.3f', now + debt_after), 'PX', expire_ms)
return {1, remaining, 0, math.ceil(debt_after)}
