// Builds reports/cell.html#<cell_id> from the report's data (harness/report/cellpage.py writes it):
// reports/cells/study.js (the study's baseline config) and the shard reports/cells/<xx>.js holding
// the cell, whose two hex digits shardOf computes as harness/report/celllinks.py shard_of does.
// The heading arrives as HTML the report escaped; values from config.json and env.json are escaped here.
"use strict";

var CELLS = {}, STUDY = {baseline: {}, shards: []};

function addCells(cells) { for (var id in cells) CELLS[id] = cells[id]; }
function setStudy(study) { STUDY = study; }

// FNV-1a (32 bit) over the id's UTF-16 code units; its low byte names the shard.
function shardOf(id) {
  var h = 0x811c9dc5;
  for (var i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return ("0" + (h & 255).toString(16)).slice(-2);
}

function esc(value) {
  return String(value).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
  });
}

function shown(value) { return value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value); }

// key | value | the baseline's value where the cell's differs (its row highlighted)
function kvTable(values, baseline) {
  var rows = Object.keys(values).sort().map(function (k) {
    var differs = baseline !== null && (!(k in baseline) || JSON.stringify(values[k]) !== JSON.stringify(baseline[k]));
    return (differs ? "<tr class='differs'>" : "<tr>") + "<td>" + esc(k) + "</td><td>" + esc(shown(values[k])) +
      "</td><td>" + (differs && k in baseline ? esc(shown(baseline[k])) : "") + "</td></tr>";
  });
  return "<table><thead><tr><th>key</th><th>value</th><th>baseline (if different)</th></tr></thead><tbody>" +
    rows.join("") + "</tbody></table>";
}

function figures(cell) {
  var parts = [], plot = cell.plot || {};
  if (plot.curves) {
    parts.push("<h2>Curves</h2><div id='curves' class='cols'></div><p class='small'>▼ spikes " +
      "(harness/spikes.py; non-finite ones at the top), ● steps clipping changed" +
      (plot.threshold !== null ? ", dashed: the clip threshold" : "") + "</p>");
  }
  if (plot.side_hist || plot.mad_hist) parts.push("<h2>Eval scores</h2><div id='scores' class='cols'></div>");
  if (cell.grid) {
    parts.push("<h2>Last decomposition grid</h2><img src='" + esc(cell.grid) + "' alt='grid'><p class='small'>" +
      "as the trainer wrote it; Fig. 7 and <code>repro report --side-by-side</code> show it with the depth " +
      "and normal tiles stretched</p>");
  }
  return parts.join("");
}

function render(id) {
  var cell = CELLS[id], root = document.getElementById("cell");
  if (!cell) {
    root.innerHTML = "<p><a href='index.html'>report</a></p><p>No cell " + esc(id) + " in this report " +
      "(run <code>repro report</code> again if it was added since).</p>";
    return;
  }
  document.title = "cell " + id;
  root.innerHTML = cell.head + figures(cell) +
    "<h2>Config (highlighted: differs from the study's baseline)</h2>" + kvTable(cell.config, STUDY.baseline) +
    "<h2>Environment (env.json)</h2>" + kvTable(cell.env, null);
  drawCell(cell.plot || {});
}

function load(src, then) {
  if (document.querySelector("script[src='" + src + "']")) return then();
  var s = document.createElement("script");
  s.src = src;
  s.onload = then;
  s.onerror = then;   // render says what is missing
  document.body.appendChild(s);
}

// Loads the study's data and the cell's shard (once each; only a shard the report wrote), then
// draws the cell named after '#'.
function showCell() {
  var id = decodeURIComponent(location.hash.slice(1)), shard = shardOf(id);
  load("cells/study.js", function () {
    if (STUDY.shards.indexOf(shard) < 0) return render(id);
    load("cells/" + shard + ".js", function () { render(id); });
  });
}

window.addEventListener("hashchange", showCell);
