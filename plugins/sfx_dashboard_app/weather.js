// The computational weather of a run: ranks (rows) against seconds since the first image, a bar
// per stretch with the same busiest stage and busy level (api/runs/{id}/weather, binned in the
// server), the level as opacity. One line trace per stage and level with gaps between its bars:
// one SVG path each, however many bars. Redrawn when the run's page sees more images
// (dashboard.js sends "sfx-images").
(function () {
  "use strict";
  var div = document.getElementById("plot-weather");
  if (!div) { return; }
  var P = window.sfxPlots;
  var LANE_PX = 22;

  function traces(w) {
    var byKey = {}, legend = {};
    w.bars.forEach(function (bar) {
      var key = bar[1] * (w.levels + 1) + (w.levels - bar[2]), rank = w.ranks[bar[0]];
      if (!byKey[key]) {
        var stage = P.plain(w.stages[bar[1]]), busy = Math.round(100 * bar[2] / w.levels);
        byKey[key] = {x: [], y: [], name: stage, legendgroup: stage, mode: "lines", opacity: bar[2] / w.levels,
                      line: {width: LANE_PX * 0.7, color: P.colour(bar[1])},
                      hovertemplate: "rank %{y}, %{x:.2f} s<extra>" + stage + ", busy \u2264 " + busy + "%</extra>"};
      }
      byKey[key].x.push(bar[3] * w.bin_s, bar[4] * w.bin_s, null);
      byKey[key].y.push(rank, rank, null);
    });
    // in stage order, busiest level first: one legend entry per stage, its most opaque
    return Object.keys(byKey).map(Number).sort(function (a, b) { return a - b; }).map(function (key) {
      var t = byKey[key];
      t.showlegend = !legend[t.name];
      legend[t.name] = true;
      return t;
    });
  }

  function show(w) {
    P.draw("plot-weather", traces(w), P.layout("seconds since the first image", "rank", {
      height: 150 + LANE_PX * w.ranks.length, legend: {orientation: "h", y: 1.02, yanchor: "bottom"},
      margin: {l: 60, r: 20, t: 40, b: 50},
      yaxis: {title: {text: "rank"}, tickvals: w.ranks, autorange: "reversed", zeroline: false}
    }));
    div.setAttribute("data-drawn", String(Number(div.getAttribute("data-drawn") || 0) + 1));
  }

  function load() {
    fetch(div.getAttribute("data-weather"), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (w) { if (w) { show(w); } })
      .catch(function () { /* keep what is shown; the next image count retries */ });
  }
  load();
  document.addEventListener("sfx-images", load);
})();
