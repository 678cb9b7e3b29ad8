// simulation.html's controller: read the inputs, run SimEngine, show figures and charts.
// The last result is kept in window.simulationResult (tests compare it with the CLI's).
"use strict";

(function () {
  var data = JSON.parse(document.getElementById("sim-data").textContent);
  data.sessions = SimEngine.unpack(data.trace);
  var FIELDS = ["concurrency", "prefill_tps", "decode_tps", "kv_gb", "kv_bytes_per_token", "block_size"];
  var WHOLE = {concurrency: true, kv_bytes_per_token: true, block_size: true};
  var COLORS = {common: "#7b3294", shared: "#d7301f", private: "#fc8d59", output: "#4393c3"};

  function readConfig() {
    var config = {};
    FIELDS.forEach(function (name) {
      var raw = document.getElementById("in-" + name).value.trim();
      config[name] = raw === "" ? NaN : Number(raw);
    });
    return config;
  }

  function pct(x) { return (100 * x).toFixed(2) + "%"; }
  function whole(x) { return Math.round(x).toLocaleString("en-US"); }
  function gb(x) { return x.toFixed(2) + " GB"; }
  function ms(x) { return x < 1000 ? x.toFixed(1) + " ms" : (x / 1000).toFixed(3) + " s"; }

  function figures(summary, config) {
    var bytesPerBlock = config.kv_bytes_per_token * config.block_size;
    return [
      ["sessions", "Sessions simulated", whole(summary.sessions)],
      ["restarts", "of which restart continuations", whole(summary.restarts)],
      ["requests", "Requests", whole(summary.requests)],
      ["duration_s", "Duration", SimCharts.duration(summary.duration_s)],
      ["hit_rate", "Prefix-cache hit rate", pct(summary.hit_rate)],
      ["unbounded_hit_rate", "Hit rate with an unbounded cache", pct(summary.unbounded_hit_rate)],
      ["prompt_tokens", "Prompt tokens", whole(summary.prompt_tokens)],
      ["hit_tokens", "Hit tokens", whole(summary.hit_tokens)],
      ["miss_tokens", "Prefilled (miss) tokens", whole(summary.miss_tokens)],
      ["mean_ttft_ms", "Mean TTFT (wait + prefill)", ms(summary.mean_ttft_ms)],
      ["max_ttft_ms", "Max TTFT", ms(summary.max_ttft_ms)],
      ["mean_prefill_wait_ms", "Mean wait for prefill", ms(summary.mean_prefill_wait_ms)],
      ["prefill_busy_ms", "Prefill server busy", SimCharts.duration(summary.prefill_busy_ms / 1000) +
        (summary.duration_s > 0 ? " (" + pct(summary.prefill_busy_ms / 1000 / summary.duration_s) + ")" : "")],
      ["peak_active_requests", "Peak active requests", whole(summary.peak_active_requests)],
      ["peak_prompt_tokens_in_flight", "Peak prompt tokens in flight", whole(summary.peak_prompt_tokens_in_flight)],
      ["capacity_blocks", "KV capacity", whole(summary.capacity_blocks) + " blocks (" + gb(summary.capacity_blocks * bytesPerBlock / 1e9) + ")"],
      ["peak_resident_blocks", "Peak resident blocks", whole(summary.peak_resident_blocks)],
      ["peak_kv_gb", "Peak KV memory", gb(summary.peak_kv_gb)],
      ["peak_overflow_blocks", "Peak blocks over capacity (all pinned)", whole(summary.peak_overflow_blocks)]
    ].concat(data.layers.map(function (name) {
      return ["evicted_" + name + "_blocks", "Evicted blocks: " + name, whole(summary["evicted_" + name + "_blocks"])];
    }), data.layers.map(function (name) {
      return ["refetched_" + name + "_blocks", "Re-prefilled after eviction: " + name, whole(summary["refetched_" + name + "_blocks"])];
    }));
  }

  function showFigures(summary, config) {
    var body = document.getElementById("figures");
    body.textContent = "";
    figures(summary, config).forEach(function (row) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-key", row[0]);
      tr.setAttribute("data-value", JSON.stringify(summary[row[0]]));
      var th = document.createElement("th"), td = document.createElement("td");
      th.textContent = row[1];
      td.textContent = row[2];
      tr.appendChild(th);
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  function showCharts(result, config) {
    var charts = document.getElementById("charts");
    charts.textContent = "";
    var s = result.series, xs = s.time_s;
    var bytesPerBlock = config.kv_bytes_per_token * config.block_size;
    var hitRate = s.hit_tokens.map(function (h, i) {
      var all = h + s.miss_tokens[i];
      return all ? 100 * h / all : 0;
    });
    var percent = function (v) { return v.toFixed(0) + "%"; };
    SimCharts.stepChart(charts, {title: "Prefix-cache hit rate (cumulative)", xs: xs, yFormat: percent,
      series: [{label: "hit rate", values: hitRate, color: "#1a9850"}],
      refs: [{value: 100 * result.summary.unbounded_hit_rate, label: "unbounded cache", color: "#555"}]});
    SimCharts.stepChart(charts, {title: "Active requests (waiting for prefill, prefilling or decoding)", xs: xs,
      series: [{label: "active", values: s.active_requests, color: "#4575b4"},
        {label: "of which waiting for prefill", values: s.prefill_queue, color: "#fdae61"}],
      refs: [{value: config.concurrency, label: "concurrency " + config.concurrency, color: "#555"}]});
    SimCharts.stepChart(charts, {title: "Tokens in flight", xs: xs, stacked: true,
      series: [{label: "prompt", values: s.prompt_tokens_in_flight, color: "#74add1"},
        {label: "output", values: s.output_tokens_in_flight, color: "#f46d43"}]});
    var capacityGb = result.summary.capacity_blocks * bytesPerBlock / 1e9;
    SimCharts.stepChart(charts, {title: "KV memory against capacity (GB)", xs: xs,
      yFormat: function (v) { return v.toFixed(v < 10 ? 1 : 0); },
      series: [{label: "KV memory", values: s.resident_blocks.map(function (b) { return b * bytesPerBlock / 1e9; }), color: "#1a9850"}],
      split: {value: capacityGb, below: "#a6d96a", above: "#d73027"},
      refs: [{value: capacityGb, label: "capacity " + capacityGb.toFixed(1) + " GB", color: "#d73027"}]});
    SimCharts.stepChart(charts, {title: "Unique resident blocks", xs: xs,
      series: [{label: "blocks", values: s.resident_blocks, color: "#8073ac"}],
      refs: [{value: result.summary.capacity_blocks, label: "capacity", color: "#d73027"}]});
    SimCharts.stepChart(charts, {title: "Evicted blocks by layer (cumulative)", xs: xs, stacked: true,
      note: "Layers from the data: common = in at least half of the sessions, shared = in 2+ sessions, private = one session's input, output = generated.",
      series: data.layers.map(function (name) {
        return {label: name, values: s["evicted_" + name], color: COLORS[name]};
      })});
    SimCharts.stepChart(charts, {title: "Blocks prefilled again after eviction, by layer (cumulative)", xs: xs, stacked: true,
      series: data.layers.map(function (name) {
        return {label: name, values: s["refetched_" + name], color: COLORS[name]};
      })});
    var gantt = document.getElementById("gantt");
    gantt.textContent = "";
    SimCharts.gantt(gantt, {title: "Session timeline by concurrency slot", requests: result.requests,
      sessions: data.sessions, slots: Math.min(config.concurrency, data.sessions.length, 100),
      endS: result.summary.duration_s, maxRequests: 8000});
  }

  function run() {
    var status = document.getElementById("status");
    var config = readConfig();
    var found = SimEngine.problems(config);
    if (found.length) {
      status.textContent = "Cannot run: " + found.join("; ");
      status.className = "error";
      return;
    }
    status.className = "";
    status.textContent = "Running...";
    var started = performance.now();
    var result = SimEngine.simulate(data.sessions, config);
    window.simulationResult = result;
    window.simulationConfig = config;
    showFigures(result.summary, config);
    showCharts(result, config);
    status.textContent = "Simulated " + result.summary.requests + " requests in " +
      Math.round(performance.now() - started) + " ms.";
  }

  // Enter inside an input submits the form, and only there; the Run button does the same.
  document.getElementById("controls").addEventListener("submit", function (event) {
    event.preventDefault();
    run();
  });
  FIELDS.forEach(function (name) {
    var input = document.getElementById("in-" + name);
    if (WHOLE[name]) input.step = "1";
  });
  run();
})();
