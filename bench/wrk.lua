-- wrk script of bench/load.sh.
--
--   wrk ... -s bench/wrk.lua URL -- DEPTH
--
-- DEPTH > 1 pipelines DEPTH GET requests in each write (wrk then waits for all DEPTH
-- responses before writing again); DEPTH 1 (the default) defines no `request`
-- function, so wrk stays in its static mode: one request per round trip, no Lua per
-- request. `done` prints one line that load.sh parses (latencies in microseconds).

init = function(args)
   local depth = tonumber(args[1]) or 1
   if depth > 1 then
      local r = {}
      for i = 1, depth do
         r[i] = wrk.format()
      end
      local batch = table.concat(r)
      request = function()
         return batch
      end
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.status + e.timeout))
end
