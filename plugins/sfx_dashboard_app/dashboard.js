// Live progress: re-read the counts every few seconds and update the cells in place — the runs
// table on the overview, the funnel and images by status on a run's page — and keep the plots current: the run's
// weather plot is told ("sfx-images") when more images are in, the overview is redrawn when a
// run appears or a merge lands. Values are written with textContent and numeric properties only,
// never as HTML.
(function () {
  "use strict";
  var runs = document.getElementById("runs");
  var funnel = document.getElementById("funnel");
  var datasets = document.getElementById("datasets");
  var weather = document.getElementById("plot-weather");
  var source = runs || funnel;
  if (!source) { return; }
  var PERIOD_MS = 3000;

  function showCells(container, values) {
    container.querySelectorAll("td[data-field]").forEach(function (cell) {
      var key = cell.getAttribute("data-field"), value = values[key];
      if (key === "turnaround_s") {
        cell.textContent = value === null ? "\u2013" : Math.round(value) + " s";
      } else if (values.touched === false && typeof value === "number") {
        cell.textContent = "\u2013";  // a run this trial never touched: no counts, not zeros
      } else {
        cell.textContent = String(value);
      }
    });
  }

  function updateRuns(data) {
    var rows = data.runs;
    var mergedAt = datasets && Number(datasets.getAttribute("data-merged-at"));
    if (rows.length !== runs.querySelectorAll("tr[data-run-id]").length ||
        (datasets && Number(data.merged_at) !== mergedAt)) {
      window.location.reload();  // a new run or a new merge: redraw the whole page, plots included
      return;
    }
    rows.forEach(function (counts) {
      var tr = runs.querySelector('tr[data-run-id="' + Number(counts.run_id) + '"]');
      if (!tr) { return; }
      var row = Object.assign({}, counts, data.pipelines[String(Number(counts.run_id))]);
      if (tr.getAttribute("data-log") !== String(row.log_url)) {
        window.location.reload();  // a run failed: the page gets the link to its task log
        return;
      }
      showCells(tr, row);
      tr.querySelectorAll("progress[data-field]").forEach(function (bar) {
        bar.max = Math.max(Number(row.images), 1);
        bar.value = Number(row[bar.getAttribute("data-field")]);
      });
    });
  }

  function showStatuses(byStatus) {
    var table = document.getElementById("by-status");
    var rows = Object.keys(byStatus).sort().map(function (status) {
      var tr = document.createElement("tr"), name = document.createElement("td"), n = document.createElement("td");
      name.className = "name";
      name.textContent = status;
      n.textContent = String(Number(byStatus[status]));
      tr.append(name, n);
      return tr;
    });
    table.replaceChildren.apply(table, rows);
  }

  function updateFunnel(counts) {
    var images = Number(counts.images);
    var shown = Number(funnel.querySelector('td[data-field="images"]').textContent);
    showCells(funnel, counts);
    if (images === shown) { return; }
    showStatuses(counts.by_status);
    if (weather) {
      document.dispatchEvent(new CustomEvent("sfx-images", {detail: images}));  // weather.js redraws
    } else if (images > 0) {
      window.location.reload();  // the first images: the page gets its weather plot
    }
  }

  function poll() {
    fetch(source.getAttribute("data-refresh"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && runs) { updateRuns(data); } else if (data) { updateFunnel(data); }
      })
      .catch(function () { /* keep the last values; the next poll retries */ })
      .finally(function () { setTimeout(poll, PERIOD_MS); });
  }
  setTimeout(poll, PERIOD_MS);
})();
