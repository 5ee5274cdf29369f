// A dataset's splits: one per-shell CCiso plot per split, each set against the reference,
// from the JSON in the plot's data-shells (written by the page, labels shown as text).
(function () {
  "use strict";
  var P = window.sfxPlots;
  document.querySelectorAll(".split-cciso").forEach(function (div) {
    var shells = JSON.parse(div.getAttribute("data-shells"));
    var traces = Object.keys(shells).map(function (label) {
      var s = shells[label], name = P.plain(label);
      return {x: s.map(function (r) { return r.d_min; }), y: s.map(function (r) { return r.cc_iso; }),
              name: name, mode: "lines+markers",
              hovertemplate: "%{x:.2f} \u00c5: %{y:.3f}<extra>" + name + "</extra>"};
    });
    P.draw(div.id, traces, P.layout("d min (\u00c5)", "CCiso against the reference",
                                    {showlegend: true, xaxis: {title: {text: "d min (\u00c5)"}, autorange: "reversed"}}));
  });
})();
