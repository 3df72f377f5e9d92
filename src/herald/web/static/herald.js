// Herald web console: progressive enhancement only; every page works without this file.
"use strict";

// Filters apply as soon as a choice changes (the Filter button stays for keyboards and JavaScript off).
document.querySelectorAll("form.filters select, form.filters input[type=checkbox]").forEach((control) => {
  control.addEventListener("change", () => control.form.requestSubmit());
});
