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

  var shown = null;
  P.poll(function () { return section.getAttribute("data-view"); }, function (v) {
    var key = JSON.stringify([v.crystals, v.merged_runs, v.dataset_merge]);
    if (key === shown) { return; }  // nothing new: keep zoom and hover
    shown = key;
    document.getElementById("estimate").textContent = v.estimate;
    section.setAttribute("data-crystals", String(Number(v.crystals)));
    showProgress(v);
    if (v.dataset_merge) { P.shells("plot-shells", v.dataset_merge.shells); }
  }, 5000);
})();
