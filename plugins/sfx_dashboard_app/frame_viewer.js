// The frame viewer: fetches one event's raster (u32 header length | JSON header | uint16 counts:
// 0 = no pixel, else value = (count - 1) * step),
// draws it on a canvas with the user's contrast, zoom and pan, and overlays found spots,
// predicted reflections and the beam. Text goes in only through textContent.
"use strict";
(function () {
  const canvas = document.getElementById("frame");
  const info = document.getElementById("frame-info");
  const view2d = canvas.getContext("2d");
  const vmax = document.getElementById("vmax");
  const vmaxValue = document.getElementById("vmax-value");
  const logScale = document.getElementById("log");
  const showSpots = document.getElementById("show-spots");
  const showPredictions = document.getElementById("show-predictions");
  const full = document.createElement("canvas"); // the frame at one raster pixel per pixel
  const SLIDER_AUTO = 250; // the slider's position of the server's suggested maximum
  let frame = null;
  let view = { scale: 1, x: 0, y: 0 }; // canvas px per raster px; raster point at the top left

  function decode(buffer) {
    const length = new DataView(buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
    const counts = new Uint16Array(buffer, 4 + length, header.width * header.height);
    return { header, counts };
  }

  function contrastMax() {
    return (frame.header.auto_max * Number(vmax.value)) / SLIDER_AUTO;
  }

  function paint() {
    // counts -> grey through a lookup table: a new contrast costs one pass, no request
    const h = frame.header;
    const top = Math.max(contrastMax() / h.step, 1);
    const lut = new Uint32Array(65536);
    const logTop = Math.log1p(top);
    lut[0] = 0xff503c28; // no pixel (between panels): dark blue, apart from dark pixels
    for (let i = 1; i < 65536; i++) {
      const t = logScale.checked ? Math.log1p(i - 1) / logTop : (i - 1) / top;
      const g = Math.round(255 * Math.min(t, 1));
      lut[i] = 0xff000000 | (g << 16) | (g << 8) | g;
    }
    const image = new ImageData(h.width, h.height);
    const pixels = new Uint32Array(image.data.buffer);
    const counts = frame.counts;
    for (let i = 0; i < counts.length; i++) pixels[i] = lut[counts[i]];
    full.width = h.width;
    full.height = h.height;
    full.getContext("2d").putImageData(image, 0, 0);
    vmaxValue.textContent = contrastMax().toPrecision(3);
    draw();
  }

  function mark(u, v, size, colour, square) {
    const x = (u - view.x) * view.scale;
    const y = (v - view.y) * view.scale;
    view2d.strokeStyle = colour;
    view2d.beginPath();
    if (square) view2d.rect(x - size, y - size, 2 * size, 2 * size);
    else view2d.arc(x, y, size, 0, 2 * Math.PI);
    view2d.stroke();
  }

  function draw() {
    view2d.imageSmoothingEnabled = false;
    view2d.fillStyle = "#000";
    view2d.fillRect(0, 0, canvas.width, canvas.height);
    view2d.drawImage(
      full, view.x, view.y, canvas.width / view.scale, canvas.height / view.scale,
      0, 0, canvas.width, canvas.height
    );
    const size = Math.max(4, 3 * view.scale);
    view2d.lineWidth = 1.5;
    if (showPredictions.checked) {
      for (const [u, v] of frame.header.predictions) mark(u, v, size, "#f0f", true);
    }
    if (showSpots.checked) {
      for (const [u, v] of frame.header.spots) mark(u, v, size + 2, "#0f0", false);
    }
    const [bu, bv] = frame.header.beam;
    mark(bu, bv, 6, "#fc0", true);
  }

  function fit() {
    const h = frame.header;
    view.scale = Math.min(canvas.width / h.width, canvas.height / h.height);
    view.x = (h.width - canvas.width / view.scale) / 2;
    view.y = (h.height - canvas.height / view.scale) / 2;
    draw();
  }

  function zoom(factor, cx, cy) {
    // keep the raster point under (cx, cy) in place
    const u = view.x + cx / view.scale;
    const v = view.y + cy / view.scale;
    view.scale = Math.min(Math.max(view.scale * factor, 0.05), 40);
    view.x = u - cx / view.scale;
    view.y = v - cy / view.scale;
    draw();
  }

  function describe(h, elapsed) {
    info.textContent =
      `${h.panels} panels on a ${h.width} × ${h.height} raster (${h.pixel_mm.toFixed(4)} mm), ` +
      `${h.spots.length} spots found, ${h.predictions.length} predicted` +
      (h.indexed ? " (indexed)" : " (not indexed)") +
      ` · server ${h.server_ms} ms, shown in ${elapsed.toFixed(0)} ms`;
  }

  async function load() {
    const started = performance.now();
    const response = await fetch(canvas.dataset.src, { credentials: "same-origin" });
    if (!response.ok) {
      info.textContent = `frame not available: ${response.status} ${await response.text()}`;
      return;
    }
    frame = decode(await response.arrayBuffer());
    vmax.value = SLIDER_AUTO;
    paint();
    fit();
    const elapsed = performance.now() - started;
    describe(frame.header, elapsed);
    canvas.dataset.spots = frame.header.spots.length;
    canvas.dataset.predictions = frame.header.predictions.length;
    canvas.dataset.width = frame.header.width;
    canvas.dataset.ms = elapsed.toFixed(0);
    canvas.dataset.shownAt = performance.now().toFixed(0); // since the page's navigation
    canvas.dataset.drawn = "1";
  }

  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.offsetX, y: e.offsetY };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag || !frame) return;
    view.x -= (e.offsetX - drag.x) / view.scale;
    view.y -= (e.offsetY - drag.y) / view.scale;
    drag = { x: e.offsetX, y: e.offsetY };
    draw();
  });
  canvas.addEventListener("pointerup", () => (drag = null));
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (frame) zoom(e.deltaY < 0 ? 1.25 : 0.8, e.offsetX, e.offsetY);
  });
  const centre = () => [canvas.width / 2, canvas.height / 2];
  document.getElementById("zoom-in").addEventListener("click", () => zoom(2, ...centre()));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(0.5, ...centre()));
  document.getElementById("zoom-reset").addEventListener("click", () => fit());
  for (const control of [vmax, logScale]) control.addEventListener("input", () => frame && paint());
  for (const control of [showSpots, showPredictions]) {
    control.addEventListener("input", () => frame && draw());
  }
  document.addEventListener("keydown", (e) => {
    const link = document.getElementById({ n: "next-hit", p: "previous-hit" }[e.key] || "");
    if (link) link.click();
  });
  load();
})();
