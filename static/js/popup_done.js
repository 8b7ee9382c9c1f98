// The end of a login in a popup: tell the comment widget that opened it, then close.
// The target origin comes from the server (this service's own origin), never "*", so the
// message cannot reach a page that navigated the opener elsewhere.
(function () {
  "use strict";
  var holder = document.getElementById("popup-done");
  var origin = holder ? holder.getAttribute("data-target-origin") : null;
  if (!origin || origin === "*" || !window.opener || window.opener.closed) {
    return; // opened directly (e.g. from the mail app): the page says what to do
  }
  window.opener.postMessage({ type: "moderation:login" }, origin);
  window.close();
})();
