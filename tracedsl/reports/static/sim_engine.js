// The KV-cache pressure simulation: the same algorithm as tracedsl/reports/simulation_model.py,
// step for step (same event order, same tie-breaking, same arithmetic), so the page and
// `tracedsl simulate` give identical figures. The model is defined in docs/simulation.md.
"use strict";

var SimEngine = (function () {
  var LAYERS = ["common", "shared", "private", "output"];
  var READY = 0, PREFILL_END = 1, DECODE_END = 2;
  var SERIES_FIELDS = [
    "time_s", "active_requests", "prefill_queue", "prompt_tokens_in_flight",
    "output_tokens_in_flight", "resident_blocks", "hit_tokens", "miss_tokens",
    "evicted_common", "evicted_shared", "evicted_private", "evicted_output",
    "refetched_common", "refetched_shared", "refetched_private", "refetched_output"
  ];
  var REQUEST_FIELDS = [
    "session", "turn", "slot", "ready_ms", "prefill_start_ms", "decode_start_ms",
    "decode_end_ms", "hit_tokens", "miss_tokens"
  ];

  function capacityBlocks(config) {
    return Math.floor(config.kv_gb * 1e9 / (config.kv_bytes_per_token * config.block_size));
  }

  function problems(config) {
    var out = [];
    if (!(Number.isInteger(config.concurrency) && config.concurrency >= 1)) {
      out.push("concurrency: must be a whole number, at least 1");
    }
    ["prefill_tps", "decode_tps", "kv_gb"].forEach(function (name) {
      var value = config[name];
      if (!(Number.isFinite(value) && value > 0)) out.push(name + ": must be a positive number");
    });
    if (!(Number.isInteger(config.kv_bytes_per_token) && config.kv_bytes_per_token >= 1)) {
      out.push("kv_bytes_per_token: must be a whole number, at least 1");
    }
    if (!(Number.isInteger(config.block_size) && config.block_size >= 1)) {
      out.push("block_size: must be a whole number, at least 1");
    }
    return out;
  }

  // The page embeds the sample as columns (simulation.py's SimulationSample.encoded):
  // per session session_ids, restart, turns; per row input, output, delay, runs (how many
  // [start, count] runs of consecutive hash ids it has, in the flat ranges). The engine works
  // on sessions: [id, isRestart, [[input, output, delayMs, ranges]...]].
  function unpack(trace) {
    var sessions = [], row = 0, at = 0;
    for (var s = 0; s < trace.session_ids.length; s++) {
      var rows = [];
      for (var t = 0; t < trace.turns[s]; t++, row++) {
        var end = at + 2 * trace.runs[row];
        rows.push([trace.input[row], trace.output[row], trace.delay[row],
          trace.ranges.slice(at, end)]);
        at = end;
      }
      sessions.push([trace.session_ids[s], trace.restart[s], rows]);
    }
    return sessions;
  }

  function expandIds(ranges) {
    var ids = [];
    for (var i = 0; i < ranges.length; i += 2) {
      for (var k = 0; k < ranges[i + 1]; k++) ids.push(ranges[i] + k);
    }
    return ids;
  }

  function clampTokens(left, blockSize) {
    return left <= 0 ? 0 : (left >= blockSize ? blockSize : left);
  }

  // Dense ids for hash ids and output blocks; per-session block lists [in0, out0, in1, ...];
  // each hash id's layer from how many sessions use it.
  function prepare(sessions, blockSize) {
    var dense = new Map();
    var perSession = [];
    sessions.forEach(function (session) {
      var rows = session[2];
      var blocks = [], tokens = [], promptEnd = [], requestEnd = [], promptTokens = [];
      var seen = new Set();
      var total = 0;
      var outputs = [];
      rows.forEach(function (row) {
        var length = row[0], produced = row[1];
        var ids = expandIds(row[3]);
        for (var position = 0; position < ids.length; position++) {
          var id = dense.get(ids[position]);
          if (id === undefined) { id = dense.size; dense.set(ids[position], id); }
          if (seen.has(id)) continue;  // an id repeated in a session names a block it holds
          seen.add(id);
          blocks.push(id);
          tokens.push(clampTokens(length - position * blockSize, blockSize));
        }
        total += length;
        promptEnd.push(blocks.length);
        promptTokens.push(total);
        var count = Math.ceil(produced / blockSize);
        for (var j = 0; j < count; j++) {
          outputs.push(blocks.length);  // patched to a dense output id below
          blocks.push(-1);
          tokens.push(clampTokens(produced - j * blockSize, blockSize));
        }
        total += produced;
        requestEnd.push(blocks.length);
      });
      perSession.push({blocks: blocks, tokens: tokens, promptEnd: promptEnd,
        requestEnd: requestEnd, promptTokens: promptTokens, seen: seen, outputs: outputs});
    });
    var uniques = dense.size;
    var sessionsPerId = new Int32Array(uniques);
    var next = uniques;
    perSession.forEach(function (p) {
      p.seen.forEach(function (id) { sessionsPerId[id] += 1; });
      p.outputs.forEach(function (position) { p.blocks[position] = next++; });
      p.seen = null;
    });
    var layer = new Int8Array(next).fill(3);
    for (var id = 0; id < uniques; id++) {
      var users = sessionsPerId[id];
      layer[id] = users >= 2 ? (users * 2 >= sessions.length ? 0 : 1) : 2;
    }
    return {sessions: perSession, layer: layer, numBlocks: next};
  }

  function Heap() { this.items = []; }
  Heap.prototype.less = function (a, b) {
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  };
  Heap.prototype.push = function (item) {
    var items = this.items;
    items.push(item);
    var i = items.length - 1;
    while (i > 0) {
      var parent = (i - 1) >> 1;
      if (!this.less(items[i], items[parent])) break;
      var swap = items[i]; items[i] = items[parent]; items[parent] = swap;
      i = parent;
    }
  };
  Heap.prototype.pop = function () {
    var items = this.items, top = items[0], last = items.pop();
    if (items.length) {
      items[0] = last;
      var i = 0, n = items.length;
      for (;;) {
        var l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && this.less(items[l], items[m])) m = l;
        if (r < n && this.less(items[r], items[m])) m = r;
        if (m === i) break;
        var swap = items[i]; items[i] = items[m]; items[m] = swap;
        i = m;
      }
    }
    return top;
  };

  // Resident blocks with refcounts; the Map holds unpinned resident blocks in LRU order.
  function Cache(prepared, capacity) {
    this.layer = prepared.layer;
    this.capacity = capacity;
    this.refcount = new Int32Array(prepared.numBlocks);
    this.resident = new Uint8Array(prepared.numBlocks);
    this.everEvicted = new Uint8Array(prepared.numBlocks);
    this.lru = new Map();
    this.residentCount = 0;
    this.evicted = [0, 0, 0, 0];
    this.refetched = [0, 0, 0, 0];
  }
  Cache.prototype.acquire = function (blocks, start, end) {
    for (var i = start; i < end; i++) {
      var b = blocks[i];
      if (!this.resident[b]) {
        this.resident[b] = 1;
        this.residentCount += 1;
        if (this.everEvicted[b]) this.refetched[this.layer[b]] += 1;
      } else if (this.refcount[b] === 0) {
        this.lru.delete(b);
      }
      this.refcount[b] += 1;
    }
    this.evict();
  };
  Cache.prototype.release = function (blocks, end) {
    var i;
    for (i = 0; i < end; i++) this.refcount[blocks[i]] -= 1;
    for (i = end - 1; i >= 0; i--) {
      if (this.refcount[blocks[i]] === 0) this.lru.set(blocks[i], 1);
    }
  };
  Cache.prototype.evict = function () {
    var need = this.residentCount - this.capacity;
    if (!(need > 0)) return;
    var taken = [];
    for (var b of this.lru.keys()) {
      if (need <= 0) break;
      taken.push(b);
      need -= 1;
    }
    for (var i = 0; i < taken.length; i++) {
      var block = taken[i];
      this.lru.delete(block);
      this.resident[block] = 0;
      this.everEvicted[block] = 1;
      this.residentCount -= 1;
      this.evicted[this.layer[block]] += 1;
    }
  };

  function run(sessions, prepared, config, capacity, record) {
    var cache = new Cache(prepared, capacity);
    var series = null, requests = {};
    if (record) {
      series = {};
      SERIES_FIELDS.forEach(function (name) { series[name] = []; });
    }
    REQUEST_FIELDS.forEach(function (name) { requests[name] = []; });
    var n = sessions.length;
    var events = new Heap(), seq = 0;
    var turnOf = new Int32Array(n), slotOf = new Int32Array(n);
    var readyAt = new Float64Array(n), prefillAt = new Float64Array(n);
    var hitsOf = new Float64Array(n), missesOf = new Float64Array(n);
    var queue = [], queueHead = 0;
    var prefillBusy = false, nextSession = 0;
    var active = 0, promptInFlight = 0, outputInFlight = 0;
    var hitTotal = 0, missTotal = 0, prefillBusyMs = 0, now = 0;

    function push(time, kind, session) { events.push([time, seq++, kind, session]); }

    function startPrefill(session) {
      var turn = turnOf[session], p = prepared.sessions[session];
      var end = p.promptEnd[turn];
      var hitBlocks = 0;
      while (hitBlocks < end && cache.resident[p.blocks[hitBlocks]]) hitBlocks++;
      var hits = 0;
      for (var i = 0; i < hitBlocks; i++) hits += p.tokens[i];
      var misses = p.promptTokens[turn] - hits;
      hitTotal += hits;
      missTotal += misses;
      hitsOf[session] = hits;
      missesOf[session] = misses;
      cache.acquire(p.blocks, 0, end);
      prefillBusy = true;
      prefillAt[session] = now;
      var duration = misses * 1000.0 / config.prefill_tps;
      prefillBusyMs += duration;
      push(now + duration, PREFILL_END, session);
    }

    function startSession(slot) {
      var session = nextSession++;
      slotOf[session] = slot;
      turnOf[session] = 0;
      push(now, READY, session);
    }

    for (var slot = 0; slot < Math.min(config.concurrency, n); slot++) startSession(slot);
    while (events.items.length) {
      var event = events.pop();
      now = event[0];
      var kind = event[2], session = event[3];
      var turn = turnOf[session], p = prepared.sessions[session];
      var rows = sessions[session][2];
      if (kind === READY) {
        readyAt[session] = now;
        active += 1;
        promptInFlight += p.promptTokens[turn];
        outputInFlight += rows[turn][1];
        queue.push(session);
        if (!prefillBusy) startPrefill(queue[queueHead++]);
      } else if (kind === PREFILL_END) {
        cache.acquire(p.blocks, p.promptEnd[turn], p.requestEnd[turn]);
        var decodeEnd = now + rows[turn][1] * 1000.0 / config.decode_tps;
        push(decodeEnd, DECODE_END, session);
        var values = [session, turn, slotOf[session], readyAt[session], prefillAt[session], now,
          decodeEnd, hitsOf[session], missesOf[session]];
        for (var f = 0; f < REQUEST_FIELDS.length; f++) requests[REQUEST_FIELDS[f]].push(values[f]);
        prefillBusy = false;
        if (queueHead < queue.length) startPrefill(queue[queueHead++]);
      } else {
        active -= 1;
        promptInFlight -= p.promptTokens[turn];
        outputInFlight -= rows[turn][1];
        cache.release(p.blocks, p.requestEnd[turn]);
        if (turn + 1 < rows.length) {
          turnOf[session] = turn + 1;
          push(now + rows[turn + 1][2], READY, session);
        } else if (nextSession < n) {
          startSession(slotOf[session]);
        }
      }
      if (record) {
        var point = [now / 1000.0, active, queue.length - queueHead, promptInFlight,
          outputInFlight, cache.residentCount, hitTotal, missTotal]
          .concat(cache.evicted, cache.refetched);
        for (var s = 0; s < SERIES_FIELDS.length; s++) series[SERIES_FIELDS[s]].push(point[s]);
      }
    }
    return {
      totals: {end_ms: now, hit_tokens: hitTotal, miss_tokens: missTotal,
        prefill_busy_ms: prefillBusyMs, evicted: cache.evicted, refetched: cache.refetched},
      series: series,
      requests: requests
    };
  }

  function max(values, fallback) {
    var best = fallback;
    for (var i = 0; i < values.length; i++) if (i === 0 || values[i] > best) best = values[i];
    return best;
  }

  function rate(part, whole) { return whole ? part / whole : 0.0; }

  function summarize(sessions, config, totals, unbounded, series, requests) {
    var count = requests.session.length;
    var ttftSum = 0, waitSum = 0, ttft = [];
    for (var i = 0; i < count; i++) {
      var t = requests.decode_start_ms[i] - requests.ready_ms[i];
      ttft.push(t);
      ttftSum += t;
      waitSum += requests.prefill_start_ms[i] - requests.ready_ms[i];
    }
    var prompt = totals.hit_tokens + totals.miss_tokens;
    var unboundedPrompt = unbounded.hit_tokens + unbounded.miss_tokens;
    var peakBlocks = max(series.resident_blocks, 0);
    var capacity = capacityBlocks(config);
    var summary = {
      sessions: sessions.length,
      restarts: sessions.filter(function (s) { return s[1]; }).length,
      requests: count,
      duration_s: totals.end_ms / 1000.0,
      prompt_tokens: prompt,
      hit_tokens: totals.hit_tokens,
      miss_tokens: totals.miss_tokens,
      hit_rate: rate(totals.hit_tokens, prompt),
      unbounded_hit_rate: rate(unbounded.hit_tokens, unboundedPrompt),
      mean_ttft_ms: count ? ttftSum / count : 0.0,
      max_ttft_ms: max(ttft, 0.0),
      mean_prefill_wait_ms: count ? waitSum / count : 0.0,
      prefill_busy_ms: totals.prefill_busy_ms,
      peak_active_requests: max(series.active_requests, 0),
      peak_prompt_tokens_in_flight: max(series.prompt_tokens_in_flight, 0),
      capacity_blocks: capacity,
      peak_resident_blocks: peakBlocks,
      peak_kv_gb: peakBlocks * (config.kv_bytes_per_token * config.block_size) / 1e9,
      peak_overflow_blocks: Math.max(0, peakBlocks - capacity)
    };
    LAYERS.forEach(function (name, index) { summary["evicted_" + name + "_blocks"] = totals.evicted[index]; });
    LAYERS.forEach(function (name, index) { summary["refetched_" + name + "_blocks"] = totals.refetched[index]; });
    return summary;
  }

  function simulate(sessions, config) {
    var found = problems(config);
    if (found.length) throw new Error(found.join("; "));
    var prepared = prepare(sessions, config.block_size);
    var bounded = run(sessions, prepared, config, capacityBlocks(config), true);
    var unbounded = run(sessions, prepared, config, Infinity, false);
    return {
      summary: summarize(sessions, config, bounded.totals, unbounded.totals, bounded.series,
        bounded.requests),
      series: bounded.series,
      requests: bounded.requests
    };
  }

  return {simulate: simulate, unpack: unpack, problems: problems, capacityBlocks: capacityBlocks, LAYERS: LAYERS};
})();
