// Small hand-written SVG charts for simulation.html: step charts over time and a Gantt.
// No library, no network; every label goes in through textContent, never as markup.
"use strict";

var SimCharts = (function () {
  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 600, HEIGHT = 210, LEFT = 62, RIGHT = 14, TOP = 12, BOTTOM = 30;
  var MAX_POINTS = 1200;
  var clipCount = 0;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function tip(node, text) { el("title", {}, node).textContent = text; }

  function niceStep(span, count) {
    var raw = span / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    var scaled = raw / power;
    return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
  }

  function compact(value) {
    var a = Math.abs(value);
    if (a >= 1e9) return (value / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (value / 1e3).toFixed(0) + "k";
    if (a >= 1e3) return (value / 1e3).toFixed(1) + "k";
    return String(Math.round(value * 100) / 100);
  }

  function duration(seconds) {
    if (seconds < 60) return (Math.round(seconds * 10) / 10) + "s";
    var whole = Math.round(seconds), h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60);
    var sec = whole % 60;
    if (h) return h + "h" + (m || sec ? String(m).padStart(2, "0") + "m" : "");
    return m + "m" + (sec ? String(sec).padStart(2, "0") + "s" : "");
  }

  // Long series become an envelope: each bucket keeps its first time and its largest value,
  // so peaks stay visible however many events there were.
  function envelope(xs, columns) {
    var n = xs.length;
    if (n <= MAX_POINTS) return {xs: xs, columns: columns};
    var stride = Math.ceil(n / MAX_POINTS), outX = [], outCols = columns.map(function () { return []; });
    for (var start = 0; start < n; start += stride) {
      var end = Math.min(n, start + stride);
      outX.push(xs[start]);
      columns.forEach(function (col, c) {
        var best = col[start];
        for (var i = start + 1; i < end; i++) if (col[i] > best) best = col[i];
        outCols[c].push(best);
      });
    }
    outX.push(xs[n - 1]);
    columns.forEach(function (col, c) { outCols[c].push(col[n - 1]); });
    return {xs: outX, columns: outCols};
  }

  function frame(parent, title, note, width, height) {
    var box = document.createElement("figure");
    box.className = "chart";
    var caption = document.createElement("figcaption");
    caption.textContent = title;
    box.appendChild(caption);
    if (note) {
      var small = document.createElement("p");
      small.className = "note";
      small.textContent = note;
      box.appendChild(small);
    }
    var svg = el("svg", {viewBox: "0 0 " + (width || WIDTH) + " " + (height || HEIGHT), role: "img"}, box);
    tip(svg, title);
    parent.appendChild(box);
    return svg;
  }

  // Time ticks at round durations (1 s ... 1 day), about six across the axis.
  function timeStep(span) {
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    for (var i = 0; i < steps.length; i++) if (span / steps[i] <= 7) return steps[i];
    return niceStep(span, 6);
  }

  function axes(svg, maxX, maxY, yFormat, width, height) {
    width = width || WIDTH;
    height = height || HEIGHT;
    var plotW = width - LEFT - RIGHT, plotH = height - TOP - BOTTOM;
    var sx = function (x) { return LEFT + (maxX > 0 ? x / maxX : 0) * plotW; };
    var sy = function (y) { return TOP + plotH - (maxY > 0 ? y / maxY : 0) * plotH; };
    var g = el("g", {"class": "axis"}, svg);
    if (yFormat) {
      var step = niceStep(maxY || 1, 4);
      for (var y = 0; y <= maxY + 1e-9; y += step) {
        el("line", {x1: LEFT, x2: width - RIGHT, y1: sy(y), y2: sy(y), "class": "grid"}, g);
        el("text", {x: LEFT - 6, y: sy(y) + 4, "text-anchor": "end"}, g).textContent = yFormat(y);
      }
    }
    var xstep = timeStep(maxX || 1);
    for (var x = 0; x <= maxX + 1e-9; x += xstep) {
      el("line", {x1: sx(x), x2: sx(x), y1: sy(0), y2: sy(0) + 4, "class": "baseline"}, g);
      el("text", {x: sx(x), y: height - 10, "text-anchor": "middle"}, g).textContent = duration(x);
    }
    el("line", {x1: LEFT, x2: width - RIGHT, y1: sy(0), y2: sy(0), "class": "baseline"}, g);
    return {sx: sx, sy: sy};
  }

  function stepPath(xs, ys, scale, closed, lows) {
    var d = "M" + scale.sx(xs[0]).toFixed(1) + "," + scale.sy(ys[0]).toFixed(1);
    for (var i = 1; i < xs.length; i++) {
      d += "H" + scale.sx(xs[i]).toFixed(1) + "V" + scale.sy(ys[i]).toFixed(1);
    }
    if (!closed) return d;
    if (lows) {
      for (var j = xs.length - 1; j >= 1; j--) {
        d += "V" + scale.sy(lows[j]).toFixed(1) + "H" + scale.sx(xs[j - 1]).toFixed(1);
      }
      return d + "V" + scale.sy(lows[0]).toFixed(1) + "Z";
    }
    return d + "V" + scale.sy(0).toFixed(1) + "H" + scale.sx(xs[0]).toFixed(1) + "Z";
  }

  // options: {title, note, xs, series: [{label, values, color}], stacked, refs: [{value,
  // label, color}], yFormat, split: {value, below, above}}
  function stepChart(parent, options) {
    var svg = frame(parent, options.title, options.note);
    if (!options.xs.length) {
      el("text", {x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle"}, svg).textContent = "no events";
      return svg;
    }
    var columns = options.series.map(function (s) { return s.values; });
    if (options.stacked) {
      var running = columns[0].slice();
      columns = columns.map(function (col, c) {
        if (c === 0) return running.slice();
        running = running.map(function (v, i) { return v + col[i]; });
        return running.slice();
      });
    }
    var sampled = envelope(options.xs, columns);
    var maxX = sampled.xs[sampled.xs.length - 1];
    var maxY = 0;
    sampled.columns.forEach(function (col) { col.forEach(function (v) { if (v > maxY) maxY = v; }); });
    (options.refs || []).forEach(function (r) { if (r.value > maxY) maxY = r.value; });
    maxY = maxY > 0 ? maxY * 1.08 : 1;
    var scale = axes(svg, maxX, maxY, options.yFormat || compact);
    var plot = el("g", {"class": "plot"}, svg);
    sampled.columns.forEach(function (col, c) {
      var s = options.series[c];
      var lows = options.stacked && c > 0 ? sampled.columns[c - 1] : null;
      if (options.split) {
        var cut = scale.sy(options.split.value);
        var id = "simclip" + (clipCount++);
        var defs = el("defs", {}, plot);
        el("rect", {x: 0, y: 0, width: WIDTH, height: cut}, el("clipPath", {id: id + "a"}, defs));
        el("rect", {x: 0, y: cut, width: WIDTH, height: HEIGHT}, el("clipPath", {id: id + "b"}, defs));
        tip(el("path", {d: stepPath(sampled.xs, col, scale, true, null), fill: options.split.above,
          "clip-path": "url(#" + id + "a)", "class": "area"}, plot), s.label + " over capacity");
        tip(el("path", {d: stepPath(sampled.xs, col, scale, true, null), fill: options.split.below,
          "clip-path": "url(#" + id + "b)", "class": "area"}, plot), s.label);
      } else {
        tip(el("path", {d: stepPath(sampled.xs, col, scale, true, lows), fill: s.color,
          "class": "area"}, plot), s.label);
      }
      el("path", {d: stepPath(sampled.xs, col, scale, false), stroke: s.color, "class": "line"}, plot);
    });
    (options.refs || []).forEach(function (r) {
      var y = scale.sy(r.value);
      el("line", {x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y, stroke: r.color, "class": "ref"}, plot);
      el("text", {x: WIDTH - RIGHT - 4, y: y - 4, "text-anchor": "end", "class": "reflabel"}, plot)
        .textContent = r.label;
    });
    legend(svg, options.series);
    return svg;
  }

  function legend(svg, series) {
    if (series.length < 2) return;
    var g = el("g", {"class": "legend"}, svg), x = LEFT + 8;
    series.forEach(function (s) {
      el("rect", {x: x, y: TOP + 2, width: 10, height: 10, fill: s.color}, g);
      var text = el("text", {x: x + 14, y: TOP + 11}, g);
      text.textContent = s.label;
      x += 22 + 7 * s.label.length;
    });
  }

  // One row per concurrency slot: session bars, and each request's wait+prefill and decode.
  function gantt(parent, options) {
    var req = options.requests, slots = options.slots, maxX = options.endS || 1;
    var drawRequests = req.session.length <= options.maxRequests;
    var note = "Slots 0-" + (slots - 1) + ". Blue: session (magenta: restart continuation)" +
      (drawRequests ? "; orange: waiting for and running prefill; green: decode." :
        "; per-request bars omitted (" + req.session.length + " requests).");
    var rowH = Math.max(3, Math.min(14, Math.floor(600 / slots)));
    var width = 2 * WIDTH, height = TOP + BOTTOM + slots * rowH;
    var box = frame(parent, options.title, note, width, height);
    var scale = axes(box, maxX, 1, null, width, height);
    var sx = scale.sx;
    var g = el("g", {"class": "gantt"}, box);
    var first = new Map(), last = new Map();
    for (var i = 0; i < req.session.length; i++) {
      var s = req.session[i];
      if (!first.has(s)) first.set(s, i);
      last.set(s, i);
    }
    var y = function (slot) { return TOP + slot * rowH; };
    first.forEach(function (i, s) {
      var slot = req.slot[i];
      if (slot >= slots) return;
      var start = req.ready_ms[i] / 1000, end = req.decode_end_ms[last.get(s)] / 1000;
      var restart = options.sessions[s][1];
      var bar = el("rect", {x: sx(start), y: y(slot) + 1, width: Math.max(1, sx(end) - sx(start)),
        height: rowH - 2, "class": restart ? "session restart" : "session"}, g);
      tip(bar, "session " + options.sessions[s][0] + (restart ? " (restart)" : "") + ": " +
        duration(start) + " - " + duration(end));
    });
    if (drawRequests) {
      for (var k = 0; k < req.session.length; k++) {
        if (req.slot[k] >= slots) continue;
        var top = y(req.slot[k]) + 2, h = Math.max(1, rowH - 4);
        var r0 = req.ready_ms[k] / 1000, d0 = req.decode_start_ms[k] / 1000, d1 = req.decode_end_ms[k] / 1000;
        tip(el("rect", {x: sx(r0), y: top, width: Math.max(0.5, sx(d0) - sx(r0)), height: h,
          "class": "prefill"}, g), "turn " + req.turn[k] + ": wait+prefill " +
          ((req.decode_start_ms[k] - req.ready_ms[k]) / 1000).toFixed(2) + "s, hit " +
          req.hit_tokens[k] + " / miss " + req.miss_tokens[k] + " tokens");
        tip(el("rect", {x: sx(d0), y: top, width: Math.max(0.5, sx(d1) - sx(d0)), height: h,
          "class": "decode"}, g), "turn " + req.turn[k] + ": decode " + (d1 - d0).toFixed(2) + "s");
      }
    }
    return box;
  }

  return {stepChart: stepChart, gantt: gantt, compact: compact, duration: duration};
})();
