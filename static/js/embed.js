/* Newsroom comments loader: <div id="comments" data-site="KEY"></div><script src="HOST/embed.js" async></script>
   Frames HOST/embed/thread when the section nears the viewport and sizes it to its content. */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector('script[src*="/embed.js"]');
  if (!script) return;
  var host = new URL(script.src, w.location.href).origin;
  var VARS = /^--comments-[a-z-]{1,40}$/;

  function attr(node, name, fallback) {
    var value = node.getAttribute("data-" + name);
    return value === null || value === "" ? fallback : value;
  }

  function canonical() {
    var link = d.querySelector('link[rel="canonical"]');
    return link && link.href ? link.href : w.location.href.split("#")[0];
  }

  // Custom properties named --comments-* set on the section (or inherited) are passed on.
  function cssVars(node) {
    var vars = {}, style = w.getComputedStyle(node), names = [];
    for (var i = 0; i < style.length; i++) names.push(style[i]);
    (attr(node, "css-vars", "").split(/[\s,]+/)).forEach(function (n) { if (n) names.push(n); });
    names.forEach(function (name) {
      if (VARS.test(name)) {
        var value = style.getPropertyValue(name).trim();
        if (value) vars[name] = value;
      }
    });
    return vars;
  }

  function mount(box) {
    if (box.getAttribute("data-mounted")) return;
    box.setAttribute("data-mounted", "1");
    var theme = attr(box, "theme", "light");
    var params = new URLSearchParams({
      site: attr(box, "site", ""),
      url: attr(box, "url", canonical()),
      title: attr(box, "title", d.title),
      theme: theme,
      lang: attr(box, "lang", d.documentElement.lang || "en"),
      origin: w.location.origin
    });
    var frame = d.createElement("iframe");
    frame.src = host + "/embed/thread?" + params.toString();
    frame.title = attr(box, "frame-title", "Comments");
    frame.setAttribute("scrolling", "no");
    frame.setAttribute("loading", "eager");
    frame.style.cssText = "width:100%;border:0;display:block;height:" + (box.offsetHeight || 300) + "px;overflow:hidden;color-scheme:normal";
    var strings = {};
    try { strings = JSON.parse(attr(box, "strings", "{}")); } catch (e) { strings = {}; }

    w.addEventListener("message", function (event) {
      // Only our own frame, from our own host, may talk to us.
      if (event.origin !== host || event.source !== frame.contentWindow) return;
      var data = event.data || {};
      if (data.type === "moderation:height" && typeof data.height === "number") {
        frame.style.height = Math.max(50, Math.min(data.height, 1e6)) + "px";
      } else if (data.type === "moderation:ready") {
        frame.contentWindow.postMessage({ type: "moderation:config", theme: theme, vars: cssVars(box), strings: strings }, host);
      }
    });
    box.textContent = "";
    box.appendChild(frame);
  }

  function count() {
    var links = d.querySelectorAll("[data-comment-count]");
    var box = d.querySelector("[data-site]");
    var key = script.getAttribute("data-site") || (box && box.getAttribute("data-site"));
    if (!links.length || !key) return;
    var query = new URLSearchParams({ site: key });
    var urls = [];
    links.forEach(function (a) {
      var url = new URL(a.getAttribute("data-comment-count"), w.location.href).href;
      if (urls.indexOf(url) < 0) { urls.push(url); query.append("url", url); }
    });
    fetch(host + "/embed/counts?" + query.toString(), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : { counts: {} }; })
      .then(function (data) {
        links.forEach(function (a) {
          var n = data.counts[new URL(a.getAttribute("data-comment-count"), w.location.href).href] || 0;
          var one = a.getAttribute("data-one") || "1 comment";
          var many = a.getAttribute("data-many") || "{n} comments";
          a.textContent = n === 1 ? one : many.replace("{n}", n);
        });
      });
  }

  // Near the viewport already: start now, not when an IntersectionObserver first reports.
  function near(box) {
    var r = box.getBoundingClientRect(), h = w.innerHeight || d.documentElement.clientHeight;
    return r.top < h + 600 && r.bottom > -600;
  }

  function start() {
    var boxes = d.querySelectorAll("#comments[data-site], .comments-embed[data-site]");
    boxes.forEach(function (box) {
      if (box.getAttribute("data-mounted") || box.getAttribute("data-watched")) return;
      if (!("IntersectionObserver" in w) || box.getAttribute("data-lazy") === "false" || near(box)) return mount(box);
      var seen = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (entry.isIntersecting) { seen.disconnect(); mount(box); }
        });
      }, { rootMargin: "600px 0px" });
      box.setAttribute("data-watched", "1");
      seen.observe(box);
    });
  }

  // The snippet's div is usually parsed already: start now, and again once all is parsed.
  start();
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", function () { start(); count(); });
  else count();
})(window, document);
