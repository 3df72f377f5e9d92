// Herald web console: progressive enhancement only; every page works without this file.
"use strict";

// Filters apply as soon as a choice changes (the Filter button stays for keyboards and JavaScript off).
document.querySelectorAll("form.filters select, form.filters input[type=checkbox]").forEach((control) => {
  control.addEventListener("change", () => control.form.requestSubmit());
});

// Contacts upload: a file dropped anywhere on the upload card goes into its file input.
document.querySelectorAll("form.upload").forEach((form) => {
  const input = form.querySelector("input[type=file]");
  const zone = form.querySelector(".dropzone");
  if (!input || !zone) return;
  form.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  form.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) input.files = event.dataTransfer.files;
  });
});
