// The run view: polls api/runs/{id}/view and redraws its Plotly plots in place (Plotly.react),
// so a live run's new frames appear without reloading the page.
(function () {
  "use strict";
  var section = document.getElementById("run-view");
  if (!section) { return; }
  var P = window.sfxPlots;
  var CELL = [["cell_a", "a (\u00c5)"], ["cell_b", "b (\u00c5)"], ["cell_c", "c (\u00c5)"],
              ["cell_alpha", "\u03b1 (\u00b0)"], ["cell_beta", "\u03b2 (\u00b0)"], ["cell_gamma", "\u03b3 (\u00b0)"]];
  var MERGE = [["images", "images merged"], ["d_min", "d min (\u00c5)"], ["completeness", "completeness"],
               ["multiplicity", "multiplicity"], ["mean_i_over_sigma", "\u27e8I/\u03c3\u27e9"],
               ["cc_half", "CC\u00bd"], ["cc_star", "CC*"], ["cc_ano", "CCano"],
               ["wilson_b", "Wilson B"], ["suggested_d_min", "suggested cut-off (\u00c5)"]];

  function showState(state) {
    document.getElementById("run-state").textContent = state.state;
    document.getElementById("run-state-detail").textContent = state.detail;
  }

  function showMerge(merge) {
    var table = document.getElementById("run-merge");
    if (!merge) { P.fillTable(table, ["merged statistics"], [["not merged yet"]]); return; }
    var o = merge.overall, em = o.error_model || {};
    var head = MERGE.map(function (m) { return m[1]; }).concat(["error model a", "error model b", "suspect"]);
    var row = MERGE.map(function (m) { return o[m[0]] === undefined ? null : o[m[0]]; })
      .concat([em.a === undefined ? null : em.a, em.b === undefined ? null : em.b,
               o.suspect ? "suspect: " + o.suspect.reason : "no"]);
    P.fillTable(table, head, [row]);
    table.className = o.suspect ? "suspect" : "";
  }

  function showRates(r) {
    var hover = "%{x:.1f}: %{y:.1%}<extra>%{fullData.name}</extra>";
    P.draw("plot-rates", [
      {x: r.x, y: r.hit_rate, name: "hit rate", mode: "lines", hovertemplate: hover},
      {x: r.x, y: r.indexing_rate, name: "indexing rate", mode: "lines", hovertemplate: hover}
    ], P.layout(r.x_label, "rate (window " + r.window + " images)", {yaxis: {tickformat: ".0%", rangemode: "tozero"}}));
  }

  // A click on a frame's point opens it in the frame viewer (its text is "chunk:event").
  var linked = {};
  function openFrameOnClick(id) {
    var div = document.getElementById(id);
    if (!div || linked[id] || !div.on) { return; }
    linked[id] = true;
    div.on("plotly_click", function (click) {
      var where = String(click.points[0].text).split(":");
      var query = new URLSearchParams({run_id: section.getAttribute("data-run-id"),
                                       trial_id: section.getAttribute("data-trial-id"),
                                       chunk: where[0], event: where[1]});
      window.location.href = "frames?" + query.toString();
    });
  }

  function scatter(id, x, y, text, yTitle, xTitle) {
    P.draw(id, [{x: x, y: y, text: text, type: "scatter", mode: "markers", marker: {size: 5},
                 hovertemplate: "event %{text}: %{y} (click: open the frame)<extra></extra>"}],
           P.layout(xTitle, yTitle));
    openFrameOnClick(id);
  }

  function showFrames(f) {
    scatter("plot-spots", f.x, f.n_spots, f.event, "spots", f.x_label);
    scatter("plot-saturated", f.x, f.n_saturated, f.event, "saturated pixels", f.x_label);
    P.draw("plot-resolution", [{x: f.d_x, y: f.d_est, type: "scatter", mode: "markers", marker: {size: 5},
                                 hovertemplate: "%{y:.2f} \u00c5<extra></extra>"}],
           P.layout(f.x_label, "d estimate (\u00c5)", {yaxis: {autorange: "reversed", title: {text: "d estimate (\u00c5)"}}}));
  }

  function showCells(cells) {
    var traces = CELL.map(function (c, i) {
      var h = cells[c[0]], centres = [];
      for (var k = 0; k + 1 < h.edges.length; k++) { centres.push((h.edges[k] + h.edges[k + 1]) / 2); }
      return {x: centres, y: h.counts, type: "bar", name: c[1], xaxis: "x" + (i + 1), yaxis: "y" + (i + 1),
              hovertemplate: "%{x:.2f}: %{y}<extra>" + c[1] + "</extra>"};
    });
    var layout = {grid: {rows: 2, columns: 3, pattern: "independent"}, height: 420, showlegend: false,
                  margin: {l: 40, r: 10, t: 10, b: 40}, bargap: 0};
    CELL.forEach(function (c, i) { layout["xaxis" + (i + 1)] = {title: {text: c[1]}}; });
    P.draw("plot-cells", traces, layout);
  }

  function showReasons(reasons) {
    var rows = reasons.slice().reverse();
    P.draw("plot-reasons", [{type: "bar", orientation: "h", x: rows.map(function (r) { return r.images; }),
                             y: rows.map(function (r) { return P.plain(r.reason); }),
                             hovertemplate: "%{x} images<extra></extra>"}],
           P.layout("images", "", {height: 120 + 24 * rows.length, margin: {l: 420, r: 20, t: 10, b: 45},
                                   yaxis: {automargin: true}}));
  }

  var shown = -1;
  function show(data) {
    showState(data.state);
    showMerge(data.merge);
    if (data.images === shown) { return; }  // nothing new: leave zoom and hover alone
    shown = data.images;
    section.setAttribute("data-images", String(Number(data.images)));
    showRates(data.rates);
    showFrames(data.frames);
    showCells(data.cells);
    showReasons(data.reasons);
  }

  P.poll(function () { return section.getAttribute("data-view"); }, show);
})();
