// mailferry web UI: the little that needs a script. Everything works without it; this only
// helps (focus on problems, the account picker). htmx and its SSE extension do the live parts.
(function () {
  "use strict";

  // After a refused form, put the keyboard (and the screen reader) on the list of problems.
  document.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector("[data-focus]");
    if (first) {
      first.focus();
    }
  });

  // After htmx put a list's check or results in place, the keyboard goes there too (only
  // there: the live updates of the Active tab never move the focus).
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "outcome") {
      return;
    }
    var first = target.querySelector("[data-focus]") || target.querySelector("h2[tabindex]");
    if (first) {
      first.focus();
    }
    // Once a list is submitted its text (with its passwords) leaves the box.
    if (target.querySelector("[data-clear-list]")) {
      var list = document.getElementById("list");
      var file = document.getElementById("file");
      if (list) {
        list.value = "";
      }
      if (file) {
        file.value = "";
      }
    }
  });

  // The account picker fills the target's username, address and (when configured) server.
  document.addEventListener("change", function (event) {
    var picker = event.target.closest ? event.target.closest("[data-picker]") : null;
    if (!picker || !picker.form) {
      return;
    }
    var option = picker.selectedOptions[0];
    if (!option || !option.value) {
      return;
    }
    var fields = picker.form.elements;
    fields["target.username"].value = option.value;
    if (option.dataset.email) {
      fields["target.email"].value = option.dataset.email;
    }
    if (option.dataset.server) {
      fields["target.server"].value = option.dataset.server;
    }
  });

  // The file chosen for a list replaces what was pasted, so say so beside the field.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[type=file][data-list-file]")) {
      return;
    }
    var note = document.getElementById(input.id + "-chosen");
    if (note) {
      note.textContent = input.files.length ? "The file " + input.files[0].name + " is checked instead of the pasted text." : "";
    }
  });
})();
