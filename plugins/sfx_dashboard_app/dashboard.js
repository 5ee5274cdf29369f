// Live progress: re-read the counts every few seconds and update the cells in place — the runs
// table on the overview, the funnel on a run's page. Values are written with textContent and
// numeric properties only, never as HTML.
(function () {
  "use strict";
  var runs = document.getElementById("runs");
  var funnel = document.getElementById("funnel");
  var source = runs || funnel;
  if (!source) { return; }
  var PERIOD_MS = 3000;

  function showCells(container, values) {
    container.querySelectorAll("td[data-field]").forEach(function (cell) {
      var key = cell.getAttribute("data-field"), value = values[key];
      if (key === "turnaround_s") {
        cell.textContent = value === null ? "\u2013" : Math.round(value) + " s";
      } else {
        cell.textContent = String(value);
      }
    });
  }

  function updateRuns(rows) {
    if (rows.length !== runs.querySelectorAll("tr[data-run-id]").length) {
      window.location.reload();  // a new run appeared: redraw the whole page
      return;
    }
    rows.forEach(function (row) {
      var tr = runs.querySelector('tr[data-run-id="' + Number(row.run_id) + '"]');
      if (!tr) { return; }
      showCells(tr, row);
      tr.querySelectorAll("progress[data-field]").forEach(function (bar) {
        bar.max = Math.max(Number(row.images), 1);
        bar.value = Number(row[bar.getAttribute("data-field")]);
      });
    });
  }

  function poll() {
    fetch(source.getAttribute("data-refresh"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && runs) { updateRuns(data.runs); } else if (data) { showCells(funnel, data); }
      })
      .catch(function () { /* keep the last values; the next poll retries */ })
      .finally(function () { setTimeout(poll, PERIOD_MS); });
  }
  setTimeout(poll, PERIOD_MS);
})();
