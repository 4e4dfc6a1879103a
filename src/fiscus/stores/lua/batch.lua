-- Several reserves and settles in one call, run one after the other, each as if alone (lib.lua: reserve_op,
-- settle_op); the keys of all of them are read with one MGET and what they change is written once at the end.
-- KEYS: leases, counter index, counter expiry index, then each operation's keys (as for reserve.lua or
--       settle.lua, from the record key on), operation after operation.
-- ARGV: per operation: 'r' (reserve) or 's' (settle), its key count, then its four arguments.
-- Returns one reply per operation, in order: what reserve.lua or settle.lua would return (an error as an error).
begin(KEYS[1], KEYS[2], KEYS[3])
prefetch(KEYS, 4, #KEYS)
local replies, k, a = {}, 4, 1
while a <= #ARGV do
  local last = k + tonumber(ARGV[a + 1]) - 1
  if ARGV[a] == 'r' then
    replies[#replies + 1] = reserve_op(KEYS, k, last, ARGV, a + 2)
  else
    replies[#replies + 1] = settle_op(KEYS, k, last, ARGV, a + 2)
  end
  k, a = last + 1, a + 6
end
commit()
return replies
