// Live progress: re-read the runs table every few seconds and update the cells in place.
// Values are written with textContent / numeric properties only, never as HTML.
(function () {
  "use strict";
  var table = document.getElementById("runs");
  if (!table) { return; }
  var PERIOD_MS = 3000;

  function show(row, cell, key) {
    var value = row[key];
    if (key === "turnaround_s") {
      cell.textContent = value === null ? "\u2013" : Math.round(value) + " s";
    } else {
      cell.textContent = String(value);
    }
  }

  function update(rows) {
    if (rows.length !== table.querySelectorAll("tr[data-run-id]").length) {
      window.location.reload();  // a new run appeared: redraw the whole page
      return;
    }
    rows.forEach(function (row) {
      var tr = table.querySelector('tr[data-run-id="' + Number(row.run_id) + '"]');
      if (!tr) { return; }
      tr.querySelectorAll("td[data-field]").forEach(function (cell) {
        show(row, cell, cell.getAttribute("data-field"));
      });
      tr.querySelectorAll("progress[data-field]").forEach(function (bar) {
        bar.max = Math.max(Number(row.images), 1);
        bar.value = Number(row[bar.getAttribute("data-field")]);
      });
    });
  }

  function poll() {
    fetch(table.getAttribute("data-refresh"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { update(data.runs); } })
      .catch(function () { /* keep the last values; the next poll retries */ })
      .finally(function () { setTimeout(poll, PERIOD_MS); });
  }
  setTimeout(poll, PERIOD_MS);
})();
