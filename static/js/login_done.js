// The end of a login in the comment widget's popup: hand the embed token to the comment frame
// that opened it (this service's own origin only, never "*"), then close.
(function () {
  "use strict";
  var holder = document.getElementById("login-done");
  if (!holder || !window.opener || window.opener.closed) return;
  var token = holder.getAttribute("data-token");
  var origin = holder.getAttribute("data-target-origin");
  if (!token || !origin) return;
  window.opener.postMessage({ type: "moderation:embed-login", token: token }, origin);
  window.close();
})();
