// Follows a renewal in progress on a certificate's page: asks the portal every few seconds and, when the
// new certificate is ready, opens it; when the renewal fails, reloads to show why. No library needed.
(function () {
  "use strict";
  var box = document.getElementById("renewal-progress");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var detail = box.querySelector("[data-renewal-detail]");
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) return setTimeout(poll, 5000);
        if (status.state === "issued" && status.new_certificate_url) {
          window.location.assign(status.new_certificate_url);
        } else if (status.state === "failed") {
          window.location.reload();
        } else {
          if (detail) {
            detail.textContent = "(" + status.progress + ")";
          }
          setTimeout(poll, 2000);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
