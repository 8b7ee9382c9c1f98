// The site owners' console: copy buttons, the widget preview, range outputs and the settings
// preview.
// A static file (no inline scripts); everything from the server is inserted as text.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Fallback for plain-http development hosts: a hidden textarea and execCommand.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      var status = button.nextElementSibling;
      if (!source) { return; }
      copyText(source.textContent).then(function () {
        if (status) { status.textContent = "Copied."; }
      }, function () {
        if (status) { status.textContent = "Could not copy; select the text and copy it."; }
      });
    });
  });

  document.querySelectorAll("output[data-output-for]").forEach(function (output) {
    var input = document.getElementById(output.getAttribute("data-output-for"));
    if (!input) { return; }
    input.addEventListener("input", function () {
      output.textContent = Number(input.value).toFixed(2);
    });
  });

  // The live preview on the site page: the theme radios reload the frame with that theme and
  // write it into the snippet (data-theme), so what is copied matches what is shown.
  var themes = document.getElementById("preview-themes");
  var frame = document.getElementById("preview-frame");
  if (themes && frame) {
    var snippet = document.getElementById(themes.getAttribute("data-snippet"));
    var original = snippet ? snippet.textContent : "";
    themes.addEventListener("change", function (event) {
      var theme = event.target.value;
      var src = new URL(frame.getAttribute("src"), window.location.href);
      src.searchParams.set("theme", theme);
      frame.setAttribute("src", src.pathname + src.search);
      if (snippet) {
        snippet.textContent = theme === "light" ? original :
          original.replace(/(data-site="[^"]*")/, '$1 data-theme="' + theme + '"');
      }
    });
  }

  var form = document.getElementById("settings-form");
  if (!form || !form.dataset.preview) { return; }
  var fields = ["mode", "spam_hold", "spam_reject", "abuse_hold", "abuse_reject",
                "banned_words", "suspect_words", "max_links"];
  var summary = document.getElementById("preview-summary");
  var table = document.getElementById("preview-table");
  var timer = null;
  var latest = 0;

  function fill(row, counts) {
    table.querySelectorAll('tr[data-row="' + row + '"] td').forEach(function (cell) {
      cell.textContent = String(counts[cell.getAttribute("data-status")] || 0);
    });
  }

  function show(data) {
    if (data.sample === 0) {
      summary.textContent = "The site has no comments yet to preview the settings on.";
      table.hidden = true;
      return;
    }
    summary.textContent = "Of the latest " + data.sample + " comments, " + data.changed +
      " would be routed differently with these values.";
    fill("current", data.current);
    fill("proposed", data.proposed);
    table.hidden = false;
    Object.keys(data.rules).forEach(function (name) {
      var note = form.querySelector('[data-rule="' + name + '"]');
      if (note) {
        note.textContent = "This rule would apply to " + data.rules[name] + " of the " +
          data.sample + " comments.";
      }
    });
  }

  function refresh() {
    var query = new URLSearchParams();
    fields.forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (input) { query.set(name, input.value); }
    });
    var ticket = ++latest;
    fetch(form.dataset.preview + "?" + query.toString(), {
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      if (ticket !== latest) { return; }  // a newer request is on its way
      if (!result.ok) {
        summary.textContent = result.data.error || "These values cannot be previewed.";
        return;
      }
      show(result.data);
    }).catch(function () {
      if (ticket === latest) { summary.textContent = "The preview is not available right now."; }
    });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 200);
  }

  fields.forEach(function (name) {
    var input = form.elements.namedItem(name);
    if (input) {
      input.addEventListener("input", schedule);
      input.addEventListener("change", schedule);
    }
  });
  refresh();
})();
