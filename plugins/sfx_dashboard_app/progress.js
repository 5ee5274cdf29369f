// Dataset progress: polls api/datasets/{id}/progress and redraws the progress curve (model at
// the cumulative crystals after each run, the runs' own merges, the dataset's merge, the target)
// and the per-shell plot of the dataset merge.
(function () {
  "use strict";
  var section = document.getElementById("progress");
  if (!section) { return; }
  var P = window.sfxPlots;

  function showProgress(v) {
    var c = v.curve, traces = [
      {x: c.map(function (p) { return p.crystals; }), y: c.map(function (p) { return p.model; }),
       text: c.map(function (p) { return p.run; }), name: "model, runs accumulated", mode: "lines+markers",
       hovertemplate: "after %{text}: %{x} crystals, %{y:.3f}<extra></extra>"},
      {x: c.map(function (p) { return p.run_crystals; }), y: c.map(function (p) { return p.measured; }),
       text: c.map(function (p) { return p.run; }), name: "each run's merge", mode: "markers",
       hovertemplate: "%{text}: %{x} crystals, %{y:.3f}<extra></extra>"}
    ];
    if (v.dataset_shell) {
      traces.push({x: [v.crystals], y: [v.dataset_shell[v.metric]], name: "dataset merge", mode: "markers",
                   marker: {size: 12, symbol: "diamond"}});
    }
    var right = Math.max(v.crystals, v.crystals_needed || 0) * 1.1 || 1;
    traces.push({x: [0, right], y: [v.target, v.target], name: "target", mode: "lines", line: {dash: "dot"}});
    if (v.crystals_needed) {
      traces.push({x: [v.crystals_needed, v.crystals_needed], y: [0, v.target], name: "crystals needed",
                   mode: "lines", line: {dash: "dash"}});
    }
    P.draw("plot-progress", traces, P.layout("indexed crystals", v.label, {height: 320}));
  }

  function showShells(stats) {
    if (!stats) { return; }
    var s = stats.shells, x = s.map(function (r) { return r.d_min; });
    function trace(key, name, axis) {
      return {x: x, y: s.map(function (r) { return r[key]; }), name: name, mode: "lines+markers", yaxis: axis,
              hovertemplate: "%{x:.2f} \u00c5: %{y:.3f}<extra>" + name + "</extra>"};
    }
    P.draw("plot-shells", [trace("completeness", "completeness", "y"), trace("cc_half", "CC\u00bd", "y"),
                           trace("mean_i_over_sigma", "\u27e8I/\u03c3\u27e9", "y2")],
           P.layout("shell d min (\u00c5)", "completeness, CC\u00bd",
                    {xaxis: {autorange: "reversed", title: {text: "shell d min (\u00c5)"}},
                     yaxis2: {overlaying: "y", side: "right", title: {text: "\u27e8I/\u03c3\u27e9"}}}));
  }

  var shown = null;
  P.poll(function () { return section.getAttribute("data-view"); }, function (v) {
    var key = JSON.stringify([v.crystals, v.merged_runs, v.dataset_merge]);
    if (key === shown) { return; }  // nothing new: keep zoom and hover
    shown = key;
    document.getElementById("estimate").textContent = v.estimate;
    section.setAttribute("data-crystals", String(Number(v.crystals)));
    showProgress(v);
    showShells(v.dataset_merge);
  }, 5000);
})();
