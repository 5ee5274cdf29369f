// The virtual powder page: the run's found spots summed in the detector plane (heat map, lab
// millimetres, seen along the beam like the frame viewer) and against 2θ (with resolution).
"use strict";
(function () {
  const info = document.getElementById("powder-info");

  function plane(p) {
    // the non-empty bins as coloured markers: a heat map would be drawn as a data: image,
    // which the pages' Content-Security-Policy (img-src 'self') rightly refuses
    const x = [], y = [], n = [];
    p.plane.forEach((row, i) => row.forEach((count, j) => {
      if (count) { x.push(p.x_mm[j]); y.push(p.y_mm[i]); n.push(count); }
    }));
    Plotly.newPlot(
      "powder-plane",
      [{ type: "scatter", mode: "markers", x, y,
         marker: { color: n, colorscale: "Viridis", reversescale: true, showscale: true,
                   size: 4, symbol: "square", colorbar: { title: { text: "spots" } } },
         hovertemplate: "x %{x} mm, y %{y} mm: %{marker.color} spots<extra></extra>" }],
      { title: { text: "spots in the detector plane (beam at 0, 0)" },
        xaxis: { title: { text: "x (mm)" }, scaleanchor: "y" },
        yaxis: { title: { text: "y (mm)" }, autorange: "reversed" },
        shapes: [{ type: "circle", x0: -2, x1: 2, y0: -2, y1: 2, line: { color: "#f60" } }] },
      { responsive: true }
    );
  }

  function radial(r) {
    Plotly.newPlot(
      "powder-radial",
      [{ type: "scatter", mode: "lines", x: r.two_theta_deg, y: r.counts, customdata: r.d_angstrom,
         line: { shape: "hvh" },
         hovertemplate: "2θ %{x:.2f}°, d %{customdata:.2f} Å: %{y} spots<extra></extra>" }],
      { title: { text: "radial profile" }, xaxis: { title: { text: "2θ (degrees)" } },
        yaxis: { title: { text: "spots" } } },
      { responsive: true }
    );
  }

  async function load() {
    const response = await fetch(info.dataset.src, { credentials: "same-origin" });
    if (!response.ok) {
      info.textContent = `no powder pattern: ${response.status} ${await response.text()}`;
      return;
    }
    const p = await response.json();
    plane(p);
    radial(p.radial);
    info.textContent =
      `${p.spots} spots of ${p.frames_used} hits` +
      (p.frames_used < p.hits ? ` (spread over the run's ${p.hits})` : "");
    info.dataset.spots = p.spots;
    info.dataset.drawn = "1";
  }
  load();
})();
