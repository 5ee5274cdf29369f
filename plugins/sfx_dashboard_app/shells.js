// The overview's per-shell plots: one api/datasets answer, each merged dataset's shells drawn
// into its plot-shells-{id} (the page reloads itself when a merge lands).
(function () {
  "use strict";
  var datasets = document.getElementById("datasets");
  if (!datasets || !datasets.getAttribute("data-source")) { return; }
  var P = window.sfxPlots;
  fetch(datasets.getAttribute("data-source"), {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (answer) {
      (answer ? answer.datasets : []).forEach(function (d) {
        if (d.stats && d.stats.shells.length) { P.shells("plot-shells-" + Number(d.id), d.stats.shells); }
      });
    });
})();
