-- One tick for one member: refresh membership, renew held leases, release the drained ones,
-- adopt the slots of dead owners and released slots it has the events of, take free slots up
-- to the fair share. Everything is decided here, by the server's clock.
--
-- Slot values: 'o|<member>|<lease end ms>' (owned) or 'r|<ms>|<member>' (released by
-- <member>, which stopped taking its events at <ms>). Members: sorted set, score = lease end.
-- 'since': hash member -> when its current session began receiving events (absent while it
-- is not receiving). Only receiving members count for the fair share: the others take nothing.
--
-- The rule that keeps hand-overs lossless: a slot goes only to a member that was receiving
-- when its previous holder stopped handling it (it has the slot's unfinished events in its
-- buffer), even above the fair share; the surplus is handed on gracefully later, to members
-- that by then were receiving too. Only when no live member qualifies does anyone take it
-- (its unfinished events are lost then; counted in the reply so the replica can say so).
--
-- ARGV: prefix, member, lease ms, slots, mode ('run' | 'leave'), receiving ('1' | '0'),
-- released-at ms (server time), then the slots to release.
-- Returns {receiving members, fair share, {held slots}, server time ms, slots taken without
-- their events}.
local p, me = ARGV[1], ARGV[2]
local lease, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local mode, receiving, released_at = ARGV[5], ARGV[6], tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mk, sk = p .. 'members', p .. 'since'
for _, m in ipairs(redis.call('ZRANGEBYSCORE', mk, '-inf', '(' .. now)) do
  redis.call('HDEL', sk, m)
end
redis.call('ZREMRANGEBYSCORE', mk, '-inf', '(' .. now)
if mode == 'leave' then
  redis.call('ZREM', mk, me)
  redis.call('HDEL', sk, me)
else
  redis.call('ZADD', mk, now + lease, me)
  if receiving == '1' then
    if redis.call('HEXISTS', sk, me) == 0 then redis.call('HSET', sk, me, now) end
  else
    redis.call('HDEL', sk, me)
  end
end
-- Receiving members and when they began.
local since, receivers = {}, 0
local flat = redis.call('HGETALL', sk)
for j = 1, #flat, 2 do
  since[flat[j]] = tonumber(flat[j + 1])
  receivers = receivers + 1
end
local mine = since[me] or -1
local release = {}
for i = 8, #ARGV do release[tonumber(ARGV[i])] = true end
local share = math.ceil(n / math.max(receivers, 1))
-- First pass: what every slot is, and how many valid leases each member holds.
local kinds, counts = {}, {}
for i = 0, n - 1 do
  local v = redis.call('GET', p .. 'slot:' .. i)
  if not v then
    kinds[i] = {'free'}
  elseif string.sub(v, 1, 2) == 'o|' then
    local owner, till = string.match(v, '^o|(.*)|(%d+)$')
    till = tonumber(till) or 0
    if till >= now then
      counts[owner] = (counts[owner] or 0) + 1
      kinds[i] = {'owned', owner}
    else
      -- A dead owner: its unfinished events were received at the latest by its last renewal.
      kinds[i] = {'orphan', owner, till - lease}
    end
  else
    local at, by = string.match(v, '^r|(%-?%d+)|?(.*)$')
    kinds[i] = {'released', by or '', tonumber(at) or 0}
  end
end
-- Whether some receiving member other than `me` (and not `but`) began by `at`; with
-- `under`, only those below the fair share.
local function qualified(at, under, but)
  for m, s in pairs(since) do
    if m ~= me and m ~= but and s <= at and (not under or (counts[m] or 0) < share) then
      return true
    end
  end
  return false
end
local held, lossy = {}, 0
local function take(i)
  redis.call('SET', p .. 'slot:' .. i, 'o|' .. me .. '|' .. (now + lease))
  table.insert(held, i)
  counts[me] = (counts[me] or 0) + 1
end
local active = mode == 'run' and mine >= 0
for i = 0, n - 1 do
  local kind = kinds[i]
  if kind[1] == 'owned' and kind[2] == me then
    if release[i] then
      redis.call('SET', p .. 'slot:' .. i, 'r|' .. released_at .. '|' .. me)
      counts[me] = counts[me] - 1
    elseif mode ~= 'leave' then
      redis.call('SET', p .. 'slot:' .. i, 'o|' .. me .. '|' .. (now + lease))
      table.insert(held, i)
    end
  end
end
if active then
  -- A dead owner's slots first, whatever the share: only members that were receiving when
  -- it last renewed have its unfinished events.
  for i = 0, n - 1 do
    local kind = kinds[i]
    if kind[1] == 'orphan' then
      if mine <= kind[3] then
        take(i)
      elseif not qualified(kind[3], false, nil) then
        take(i)
        lossy = lossy + 1
      end
    end
  end
  for i = 0, n - 1 do
    local kind = kinds[i]
    local below = (counts[me] or 0) < share
    if kind[1] == 'free' then
      if below then take(i) end
    elseif kind[1] == 'released' then
      local by, at = kind[2], kind[3]
      if mine <= at then
        if below then
          take(i)
        elseif not qualified(at, true, nil) then
          -- Every member that has its events is at its share: one of them above it, rather
          -- than one without its events. Not the member that released it, if another can.
          if by ~= me or not qualified(at, false, me) then take(i) end
        end
      elseif not qualified(at, false, nil) and below then
        take(i)
        lossy = lossy + 1
      end
    end
  end
end
return {receivers, share, held, now, lossy}
