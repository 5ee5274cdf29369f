// The beamtime timeline: polls api/timeline and redraws the runs' hit and indexing rates over
// time, one colour per tag set (sample), and the table of runs. Names reach Plotly only through
// sfxPlots.plain (its labels understand a few HTML tags) and the table only as textContent.
(function () {
  "use strict";
  var section = document.getElementById("timeline");
  if (!section) { return; }
  var P = window.sfxPlots;

  function when(run) {
    var t = run.end === null ? run.start : run.end;
    return new Date(t * 1000).toISOString();
  }

  function traces(runs) {
    var groups = {};
    runs.forEach(function (run) {
      var key = run.tags.join(", ") || "untagged";
      (groups[key] = groups[key] || []).push(run);
    });
    var out = [];
    Object.keys(groups).sort().forEach(function (key) {
      var rs = groups[key], text = rs.map(function (r) { return P.plain(r.run + " [" + key + "]"); });
      [["hit_rate", "hits", "circle"], ["indexing_rate", "indexed", "diamond"]].forEach(function (m) {
        out.push({x: rs.map(when), y: rs.map(function (r) { return r[m[0]]; }), text: text, mode: "markers",
                  type: "scatter", name: P.plain(key) + " \u2013 " + m[1], marker: {symbol: m[2], size: 8},
                  customdata: rs.map(function (r) { return r.run_id; }),
                  hovertemplate: "%{text}<br>" + m[1] + " %{y:.1%}<extra></extra>"});
      });
    });
    return out;
  }

  function showTable(runs) {
    P.fillTable(document.getElementById("timeline-runs"),
      ["run", "ended", "images", "hit rate", "indexing rate", "tags", "merged"],
      runs.map(function (r) {
        return [r.run, r.end === null ? "acquiring" : when(r), r.images,
                r.hit_rate === null ? "\u2013" : (100 * r.hit_rate).toFixed(1) + " %",
                r.indexing_rate === null ? "\u2013" : (100 * r.indexing_rate).toFixed(1) + " %",
                r.tags.join(", "), r.merged ? "yes" : "no"];
      }));
  }

  var shown = null;
  P.poll(function () { return section.getAttribute("data-view"); }, function (data) {
    var key = JSON.stringify(data.runs);
    if (key === shown) { return; }
    shown = key;
    section.setAttribute("data-runs", String(data.runs.length));
    P.draw("plot-timeline", traces(data.runs),
           P.layout("time (UTC)", "rate", {height: 340, yaxis: {tickformat: ".0%", rangemode: "tozero"}}));
    showTable(data.runs);
  });
})();
