// The actions page's forms: each sends its change as JSON with the session's CSRF token in the
// X-CSRF-Token header (the server refuses a write without it), then shows the answer as text and
// reloads the page so the tags, datasets and audit log show the change.
(function () {
  "use strict";
  var box = document.getElementById("actions");
  if (!box) { return; }
  var result = document.getElementById("action-result");
  var experiment = box.getAttribute("data-experiment");

  function chosenRuns() {
    return Array.from(document.querySelectorAll('input[name="run_id"]:checked'))
      .map(function (input) { return Number(input.value); });
  }

  function field(form, name) { return form.elements.namedItem(name).value.trim(); }

  var bodies = {
    tag: function (form) { return {experiment: experiment, run_ids: chosenRuns(), tag: field(form, "tag")}; },
    dataset: function (form) {
      var tags = field(form, "tags").split(",").map(function (t) { return t.trim(); }).filter(Boolean);
      var splits = field(form, "splits").split(";").map(function (t) { return t.trim(); }).filter(Boolean);
      return {experiment: experiment, name: field(form, "name"), tags: tags, splits: splits};
    },
    untag: function (form) { return {experiment: experiment, run_ids: chosenRuns(), tag: field(form, "tag")}; },
    "delete-dataset": function (form) { return {experiment: experiment, name: field(form, "name")}; },
    "default-trial": function (form) { return {experiment: experiment, trial_id: Number(field(form, "trial_id"))}; },
    reprocess: function (form) {
      return {experiment: experiment, run_ids: chosenRuns(), trial: field(form, "trial"),
              trial_params: JSON.parse(field(form, "trial_params") || "{}")};
    }
  };

  function detailText(detail) {
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  function send(form) {
    var action = form.getAttribute("data-action"), body;
    try { body = bodies[action](form); } catch (error) {
      result.textContent = "not sent: " + error.message;
      return;
    }
    result.textContent = "sending\u2026";
    fetch("actions/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": box.getAttribute("data-csrf")},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return {ok: response.ok, data: data}; });
    }).then(function (answer) {
      result.textContent = answer.ok ? answer.data.outcome : "refused: " + detailText(answer.data.detail);
      if (answer.ok) { setTimeout(function () { window.location.reload(); }, 800); }
    }).catch(function (error) { result.textContent = "failed: " + error.message; });
  }

  box.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); send(form); });
  });
})();
