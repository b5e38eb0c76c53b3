// On the dashboard and the certificate list: while renewals are in progress, ask the portal which are
// still open, and reload the page once one of them has finished, so its new state shows by itself.
(function () {
  "use strict";
  var marker = document.querySelector("[data-live-refresh]");
  if (!marker) return;
  var url = marker.getAttribute("data-live-refresh");
  var known = null;
  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) {
          var now = data.open.join(",");
          if (known !== null && now !== known) { window.location.reload(); return; }
          known = now;
        }
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 6000); });
  }
  poll();
})();
