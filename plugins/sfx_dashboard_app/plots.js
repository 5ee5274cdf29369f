// Shared by the run view, dataset progress, timeline, weather and per-shell scripts: Plotly
// defaults, a polling loop, the per-shell plot, and table cells written as text only (never HTML). Loaded after vendor/plotly.js.
(function () {
  "use strict";
  var CONFIG = {displaylogo: false, responsive: true};

  function layout(xTitle, yTitle, extra) {
    return Object.assign({
      margin: {l: 60, r: 20, t: 10, b: 70}, height: 280,
      xaxis: {title: {text: xTitle}}, yaxis: {title: {text: yTitle}},
      legend: {orientation: "h", y: -0.3}, hovermode: "closest"
    }, extra || {});
  }

  // Plotly's default trace colours (matplotlib's tab10), for a series drawn as several traces.
  var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  function colour(i) { return COLOURS[i % COLOURS.length]; }

  function draw(id, traces, plotLayout) {
    var div = document.getElementById(id);
    if (div) { Plotly.react(div, traces, plotLayout, CONFIG); }
  }

  function number(value, digits) {
    if (value === null || value === undefined || typeof value !== "number" || !isFinite(value)) {
      return "\u2013";
    }
    return Number.isInteger(value) ? String(value) : value.toPrecision(digits || 3);
  }

  // User text for Plotly labels, which turn a few HTML tags into markup: show them as text.
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // rows: list of lists of cell values; head: list of labels. Text only.
  function fillTable(table, head, rows) {
    var trs = [head].concat(rows).map(function (cells, i) {
      var tr = document.createElement("tr");
      cells.forEach(function (value) {
        var cell = document.createElement(i === 0 ? "th" : "td");
        cell.textContent = typeof value === "number" ? number(value) : String(value);
        tr.appendChild(cell);
      });
      return tr;
    });
    table.replaceChildren.apply(table, trs);
  }

  // Fetch url now and every period ms; hand each JSON answer to show.
  function poll(url, show, period) {
    function once() {
      fetch(url(), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { show(data); } })
        .catch(function () { /* keep what is shown; the next poll retries */ })
        .finally(function () { setTimeout(once, period || 3000); });
    }
    once();
  }

  // Completeness, CC½ and ⟨I/σ⟩ against shell resolution (a merge's "shells").
  function shells(id, rows) {
    var x = rows.map(function (r) { return r.d_min; });
    function trace(key, name, axis) {
      return {x: x, y: rows.map(function (r) { return r[key]; }), name: name, mode: "lines+markers", yaxis: axis,
              hovertemplate: "%{x:.2f} \u00c5: %{y:.3f}<extra>" + name + "</extra>"};
    }
    draw(id, [trace("completeness", "completeness", "y"), trace("cc_half", "CC\u00bd", "y"),
              trace("mean_i_over_sigma", "\u27e8I/\u03c3\u27e9", "y2")],
         layout("shell d min (\u00c5)", "completeness, CC\u00bd",
                {margin: {l: 60, r: 60, t: 10, b: 70},
                 xaxis: {autorange: "reversed", title: {text: "shell d min (\u00c5)"}},
                 yaxis2: {overlaying: "y", side: "right", title: {text: "\u27e8I/\u03c3\u27e9"}}}));
  }

  window.sfxPlots = {layout: layout, draw: draw, number: number, fillTable: fillTable, poll: poll, plain: plain,
                     shells: shells, colour: colour};
})();
