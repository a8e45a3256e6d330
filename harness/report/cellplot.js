// Draws a cell page's curves and score histograms as SVG from the cell's data (its shard, reports/cells/*.js).
// Written to reports/cellplot.js by harness/report/cellpage.py; cellpage.js calls drawCell(cell.plot).
// Arrays arrive as base64 of little-endian float32 (curves) or uint8 (masks): a page costs the
// report a copy of bytes, not a matplotlib figure. Spikes and clipped steps are computed by the
// report (harness/spikes.py), never here.
"use strict";

function decode(text, Kind) {
  var bytes = atob(text), raw = new Uint8Array(bytes.length);
  for (var i = 0; i < bytes.length; i++) raw[i] = bytes.charCodeAt(i);
  return new Kind(raw.buffer);
}

function svgNode(tag, attrs, text) {
  var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (var k in attrs) node.setAttribute(k, attrs[k]);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Round values between lo and hi: powers of ten on a log axis spanning two or more, else evenly spaced
// (whole numbers only when `whole`, as for iterations).
function ticks(lo, hi, log, whole) {
  var out = [];
  if (log) {
    for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(Math.pow(10, e));
    out = out.filter(function (v) { return v >= lo / 1.0001 && v <= hi * 1.0001; });
    if (out.length >= 2) return out;
    out = [];
  }
  var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / 4 || 1)));
  if ((hi - lo) / step > 8) step *= 2;
  if ((hi - lo) / step > 8) step *= 2.5;
  if (whole) step = Math.max(1, Math.round(step));
  for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

function label(v) { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-2) ? v.toExponential(0) : +v.toPrecision(3) + ""; }

// One panel: a line (broken at non-finite values), spike triangles (non-finite ones at the top), clipped dots.
function linePanel(title, x, y, spikes, clipped, threshold) {
  var W = 520, H = 300, L = 60, R = 12, T = 26, B = 36;
  var svg = svgNode("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "plot"});
  var finite = [];
  for (var i = 0; i < y.length; i++) if (isFinite(y[i])) finite.push(y[i]);
  if (threshold !== null) finite.push(threshold);
  svg.appendChild(svgNode("text", {x: L, y: 16, "font-size": 13, "font-weight": "bold"}, title));
  if (!finite.length) { svg.appendChild(svgNode("text", {x: L, y: H / 2}, "no finite values")); return svg; }
  var lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite), log = lo > 0;
  if (hi === lo) { hi += Math.abs(hi) || 1; lo -= log ? 0 : Math.abs(lo) || 1; }
  var f = log ? Math.log10 : function (v) { return v; };
  var x0 = x[0], x1 = x[x.length - 1] === x0 ? x0 + 1 : x[x.length - 1];
  var sx = function (v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  var sy = function (v) { return T + (f(hi) - f(v)) / (f(hi) - f(lo)) * (H - T - B); };
  ticks(lo, hi, log, false).forEach(function (v) {
    svg.appendChild(svgNode("line", {x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#e4e4e4"}));
    svg.appendChild(svgNode("text", {x: L - 4, y: sy(v) + 4, "text-anchor": "end", "font-size": 10}, label(v)));
  });
  ticks(x0, x1, false, true).forEach(function (v) {
    svg.appendChild(svgNode("text", {x: sx(v), y: H - B + 14, "text-anchor": "middle", "font-size": 10}, label(v)));
  });
  svg.appendChild(svgNode("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11},
                          "iteration" + (log ? " (log y)" : "")));
  var path = "", pen = false;
  for (i = 0; i < y.length; i++) {
    if (!isFinite(y[i]) || !isFinite(x[i])) { pen = false; continue; }
    path += (pen ? "L" : "M") + sx(x[i]).toFixed(1) + " " + sy(y[i]).toFixed(1);
    pen = true;
  }
  svg.appendChild(svgNode("path", {d: path, fill: "none", stroke: "#1f77b4", "stroke-width": 1}));
  if (threshold !== null) {
    svg.appendChild(svgNode("line", {x1: L, x2: W - R, y1: sy(threshold), y2: sy(threshold),
                                     stroke: "#1f77b4", "stroke-dasharray": "5 4"}));
  }
  var nSpikes = 0, nClipped = 0;
  for (i = 0; i < y.length; i++) {
    var yy = isFinite(y[i]) ? sy(y[i]) : T;
    if (clipped && clipped[i]) {
      nClipped++;
      svg.appendChild(svgNode("circle", {cx: sx(x[i]), cy: yy, r: 1.5, fill: "#ff7f0e"}));
    }
    if (spikes[i]) {
      nSpikes++;
      var px = sx(x[i]);
      svg.appendChild(svgNode("path", {d: "M" + (px - 5) + " " + (yy - 8) + "L" + (px + 5) + " " + (yy - 8) + "L" + px + " " + yy + "Z",
                                       fill: "#d62728"}));
    }
  }
  svg.appendChild(svgNode("text", {x: W - R, y: 16, "text-anchor": "end", "font-size": 11},
                          "▼ spikes " + nSpikes + (clipped ? " · ● clipped " + nClipped : "")));
  return svg;
}

function histPanel(title, hist) {
  var W = 420, H = 220, L = 44, R = 10, T = 24, B = 34;
  var svg = svgNode("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "plot"});
  var edges = hist.edges, counts = hist.counts, top = Math.max.apply(null, counts) || 1;
  var sx = function (v) { return L + (v - edges[0]) / ((edges[edges.length - 1] - edges[0]) || 1) * (W - L - R); };
  var sy = function (v) { return T + (1 - v / top) * (H - T - B); };
  svg.appendChild(svgNode("text", {x: L, y: 16, "font-size": 13, "font-weight": "bold"}, title));
  for (var i = 0; i < counts.length; i++) {
    svg.appendChild(svgNode("rect", {x: sx(edges[i]), y: sy(counts[i]), width: Math.max(sx(edges[i + 1]) - sx(edges[i]) - 1, 1),
                                     height: sy(0) - sy(counts[i]), fill: "#1f77b4"}));
  }
  [edges[0], edges[edges.length - 1]].forEach(function (v, k) {
    svg.appendChild(svgNode("text", {x: sx(v), y: H - B + 14, "text-anchor": k ? "end" : "start", "font-size": 10}, label(v)));
  });
  svg.appendChild(svgNode("text", {x: L - 4, y: sy(top) + 4, "text-anchor": "end", "font-size": 10}, top + ""));
  svg.appendChild(svgNode("text", {x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 11}, "per test image (count of images)"));
  return svg;
}

function drawCell(data) {
  var curves = document.getElementById("curves"), scores = document.getElementById("scores");
  if (data.curves && curves) {
    var c = data.curves, x = decode(c.iter, Float32Array), clipped = decode(c.clipped, Uint8Array);
    curves.appendChild(linePanel("total loss", x, decode(c.loss_total, Float32Array), decode(c.loss_spikes, Uint8Array), null, null));
    curves.appendChild(linePanel("grad norm (pre-clip)", x, decode(c.grad_norm, Float32Array),
                                 decode(c.grad_spikes, Uint8Array), clipped, data.threshold));
  }
  if (scores) {
    if (data.side_hist) scores.appendChild(histPanel("SIDE ×10⁻²", data.side_hist));
    if (data.mad_hist) scores.appendChild(histPanel("MAD (deg.)", data.mad_hist));
  }
}
