-- Put counters rebuilt from the ledger back and mark the store whole again; only while it is not whole (the
-- first of several rebuilding workers wins, the others change nothing).
-- KEYS: leases, counter index, counter expiry index, then the counter keys to restore.
-- ARGV: the new epoch, the doubles {spent n, t, r, drop time (0 = none)} per key, in KEYS order.
-- Each restored amount is added to what the counter holds: the settles that landed since the loss (their ids are
-- in `<p>lost`, and the rebuild left them out of what it read from the ledger). Returns 1 restored, 0 already whole.
begin(KEYS[1], KEYS[2], KEYS[3])
if intact() then return 0 end
local base = string.sub(KEYS[1], 1, -7)
local numbers, chunk = ARGV[2], 500
for from = 4, #KEYS, chunk do
  local to = math.min(from + chunk - 1, #KEYS)
  S.raw, S.seen = {}, {}
  prefetch(KEYS, from, to)
  load(S.seen, KEYS, from, to, 0)
  for i = from, to do
    local c = S.seen[KEYS[i]]
    local n, t, r, drop = struct.unpack('<dddd', numbers, (i - 4) * 32 + 1)
    touch(c)
    add(c, 1, n)
    add(c, 2, t)
    add(c, 3, r)
    if drop > 0 then extend(c, drop) end
    c[10] = true
  end
  local bad = settle_changes()
  if bad then return bad end
  commit()
end
redis.call('SET', base .. 'epoch', ARGV[1])
redis.call('DEL', base .. 'lost')
return 1
