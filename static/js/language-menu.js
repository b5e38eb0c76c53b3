// The language menu changes language as soon as a language is chosen (without script, a button does it).
// A file rather than an inline handler, so the Content-Security-Policy can forbid inline script.
document.addEventListener("change", function (event) {
  "use strict";
  if (event.target && event.target.id === "language") event.target.form.submit();
});
