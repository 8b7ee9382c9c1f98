// The comment thread inside the widget's iframe: login, posting, replies, paging, resizing.
// Progressive: the server renders the published comments; this script adds everything else.
// User text is only ever set with textContent; the server's sanitised `html` is the only markup.
(function () {
  "use strict";
  var root = document.getElementById("thread");
  if (!root) return;
  var cfg = root.dataset;
  var parentOrigin = cfg.parentOrigin || "";
  var TOKEN_KEY = "moderation-embed-token:" + cfg.site;
  var MAX_DEPTH = 3;
  var strings = {
    awaiting: "Your comment is awaiting moderation.",
    notPublished: "Your comment was not published.",
    posted: "Your comment was published.",
    loggedIn: "You are logged in.",
    loggedOut: "You are logged out.",
    reply: "Reply",
    report: "Report",
    reported: "Thank you, the moderators will look at it.",
    edit: "Edit",
    del: "Delete",
    save: "Save",
    cancel: "Cancel",
    edited: "edited",
    like: "Like",
    likes: "likes",
    deleted: "Your comment was deleted.",
    send: "Send report",
    why: "Why are you reporting this comment?",
    replyingTo: "Replying to ",
    comment: "comment",
    comments: "comments",
    empty: "Write something first.",
    failed: "Something went wrong; please try again.",
  };
  var me = null;
  var liked = {};
  var mine = {};
  var replyTo = null;
  // The login lasts across reloads and visits without third-party cookies: localStorage, which
  // browsers partition per top-level site (this newspaper only); else the tab's sessionStorage;
  // else memory (storage blocked: the reader logs in again after a reload).
  var store = pickStore();
  var token = null;
  try { token = store ? store.getItem(TOKEN_KEY) : null; } catch (e) { token = null; }
  var $ = function (id) { return document.getElementById(id); };

  function pickStore() {
    var names = ["localStorage", "sessionStorage"];
    for (var i = 0; i < names.length; i++) {
      try {
        var area = window[names[i]];
        area.setItem(TOKEN_KEY + ":probe", "1");
        area.removeItem(TOKEN_KEY + ":probe");
        return area;
      } catch (e) { /* blocked or full: try the next */ }
    }
    return null;
  }

  // --- talking to the page that embeds us (origin checked both ways) -------------------------
  var lastHeight = 0;
  function postHeight() {
    if (!parentOrigin || window.parent === window) return;
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === lastHeight) return;
    lastHeight = height;
    window.parent.postMessage({ type: "moderation:height", height: height }, parentOrigin);
  }
  if (window.ResizeObserver) new ResizeObserver(postHeight).observe(document.documentElement);
  window.addEventListener("load", postHeight);
  // First thing: the server-rendered thread is on screen, so size the iframe to it now, and ask
  // for the page's options at once (the theme is in the URL already; only custom colours and
  // wording wait for the answer). Everything else below runs after.
  postHeight();
  if (parentOrigin && window.parent !== window) {
    window.parent.postMessage({ type: "moderation:ready" }, parentOrigin);
  }

  var CSS_VARS = /^--comments-[a-z-]{1,40}$/;
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (event.origin === window.location.origin && data.type === "moderation:embed-login") {
      if (typeof data.token !== "string") return;
      setToken(data.token);
      api("POST", "/embed/session"); // HTTPS: a partitioned cookie keeps the login across reloads
      loadMe(strings.loggedIn);
    } else if (parentOrigin && event.origin === parentOrigin && event.source === window.parent) {
      if (data.type === "moderation:config") configure(data);
      if (data.type === "moderation:hello") { lastHeight = 0; postHeight(); }
    }
  });

  function configure(data) {
    var vars = data.vars || {};
    Object.keys(vars).forEach(function (name) {
      // Custom properties only, as CSS values: no markup, no other properties.
      if (CSS_VARS.test(name) && typeof vars[name] === "string" && vars[name].length < 200) {
        document.documentElement.style.setProperty(name, vars[name]);
      }
    });
    var given = data.strings || {};
    Object.keys(given).forEach(function (name) {
      if (typeof given[name] !== "string") return;
      strings[name] = given[name];
      document.querySelectorAll('[data-string="' + name + '"]').forEach(function (node) {
        node.textContent = given[name];
      });
    });
    if (data.theme === "light" || data.theme === "dark" || data.theme === "auto") {
      document.documentElement.className = "theme-" + data.theme;
    }
    postHeight();
  }

  // --- the API ---------------------------------------------------------------------------------
  function setToken(value) {
    token = value;
    try {
      if (store && value) store.setItem(TOKEN_KEY, value);
      else if (store) store.removeItem(TOKEN_KEY);
    } catch (e) { /* storage blocked: the login lasts as long as the page */ }
  }

  // Another article of the same newspaper (another tab) logged in or out: follow it.
  window.addEventListener("storage", function (event) {
    if (!store || event.storageArea !== store || (event.key !== TOKEN_KEY && event.key !== null)) return;
    var value = event.key === null ? null : event.newValue;
    if (value === token) return;
    token = value;
    if (token) loadMe(strings.loggedIn);
    else forget(strings.loggedOut);
  });

  function api(method, path, body) {
    var headers = { "X-Requested-With": "fetch", Accept: "application/json" };
    if (token) headers["X-Embed-Token"] = token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method: method,
      headers: headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { status: response.status, ok: response.ok, data: json };
      });
    });
  }

  function announce(text) {
    var status = $("thread-status");
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  // --- login -----------------------------------------------------------------------------------
  function shownIds(items) {
    return Array.prototype.map.call(items, function (li) { return li.dataset.id; });
  }

  // Who is reading, their held comments on this article, and which of the comments `ids` (all
  // shown ones by default) they wrote or liked. Asked even without a token: on HTTPS the login
  // may be in the partitioned HttpOnly cookie, which this script cannot see.
  function loadMe(message, ids) {
    var all = ids === undefined;
    ids = all ? shownIds(document.querySelectorAll("#comments li.comment")) : ids;
    var query = new URLSearchParams({ ids: ids.slice(0, 200).join(",") });
    if (all) { query.set("site", cfg.site); query.set("url", cfg.url); }
    return api("GET", "/embed/me?" + query.toString()).then(function (answer) {
      if (!answer.ok) return; // a failed answer says nothing about the login: keep it
      var before = me && me.id;
      me = answer.data.user || null;
      if (before && (!me || me.id !== before)) { liked = {}; mine = {}; dropHeld(); }
      (answer.data.held || []).forEach(function (c) {
        if ($("comment-" + c.id)) return;
        c.mine = true;
        mine[c.id] = true;
        place(c, buildComment(c, 1), false);
      });
      refreshTimes();
      (answer.data.liked || []).forEach(function (id) { liked[id] = true; });
      (answer.data.mine || []).forEach(function (id) { mine[id] = true; });
      if (!me && token) setToken(null);
      showLogin();
      if (message) announce(me ? message : strings.loggedOut);
    });
  }

  // Logged out (here or in another tab): no one's likes, own comments or held comments remain.
  function forget(message) {
    me = null;
    liked = {};
    mine = {};
    dropHeld();
    showLogin();
    if (message) announce(message);
  }

  function dropHeld() {
    document.querySelectorAll("#comments li.comment--held").forEach(function (li) { li.remove(); });
  }

  function showLogin() {
    var anonymous = $("login-anonymous"), user = $("login-user");
    if (!anonymous) { decorateAll(); return; }
    anonymous.hidden = !!me;
    user.hidden = !me;
    $("guest-fields").hidden = !!me || cfg.allowGuests !== "true";
    if (me) {
      $("login-name").textContent = me.name;
      var provider = (me.providers || [])[0] || "email";
      $("login-provider").textContent = provider === "x" ? "X" : provider === "email" ? "e-mail" :
        provider.charAt(0).toUpperCase() + provider.slice(1);
    }
    decorateAll();
    postHeight();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-login]");
    if (!link) return;
    var popup = window.open(link.href, "moderation-login", "width=520,height=680");
    if (popup) event.preventDefault(); // a blocked popup falls back to the link's new tab
  });

  var logout = $("logout");
  if (logout) logout.addEventListener("click", function () {
    setToken(null);
    api("DELETE", "/embed/session");
    forget(strings.loggedOut);
    var first = document.querySelector("#login-anonymous a");
    if (first) first.focus();
  });

  // --- rendering comments ----------------------------------------------------------------------
  var relativeFormat;
  function relative(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    if (relativeFormat === undefined) {
      try {
        relativeFormat = new Intl.RelativeTimeFormat(document.documentElement.lang || "en", { numeric: "auto" });
      } catch (e) { relativeFormat = null; }
    }
    var format = relativeFormat;
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n >= 1) return format ? format.format(-n, units[i][0]) : n + " " + units[i][0] + "s ago";
    }
    return format ? format.format(0, "second") : "just now";
  }

  function refreshTimes() {
    document.querySelectorAll("time.comment__time").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date)) return;
      node.textContent = relative(date);
      node.title = date.toLocaleString();
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function buildComment(c, depth) {
    var li = element("li", "comment");
    li.id = "comment-" + c.id;
    li.dataset.id = c.id;
    li.dataset.depth = depth;
    var created = /Z|[+-]\d\d:\d\d$/.test(c.created_at) ? c.created_at : c.created_at + "Z";
    li.dataset.created = created;
    li.dataset.likes = c.like_count || 0;
    if (c.mine) li.dataset.mine = "true";
    var box = element("article", "comment__box");
    box.setAttribute("aria-labelledby", li.id + "-author");
    var meta = element("header", "comment__meta");
    var author = element("span", "comment__author", c.author.name);
    author.id = li.id + "-author";
    var time = element("time", "comment__time");
    time.setAttribute("datetime", created);
    meta.appendChild(author);
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(time);
    if (c.edited_at) meta.appendChild(element("span", "comment__edited", strings.edited));
    var body = element("div", "comment__body");
    body.innerHTML = c.html; // sanitised on the server (nh3): the one HTML we insert
    box.appendChild(meta);
    box.appendChild(body);
    if (c.status && c.status !== "published") {
      box.appendChild(element("p", "comment__held",
        c.status === "pending" ? strings.awaiting : strings.notPublished));
      li.classList.add("comment--held");
    }
    box.appendChild(element("footer", "comment__actions"));
    li.appendChild(box);
    li.appendChild(element("ol", "comments comments--replies"));
    return li;
  }

  function place(c, li, atTop) {
    var parent = c.parent_id ? $("comment-" + c.parent_id) : null;
    var list = $("comments");
    var depth = 1;
    if (parent) {
      var parentDepth = Number(parent.dataset.depth) || 1;
      depth = Math.min(parentDepth + 1, MAX_DEPTH);
      // Three levels, then flat: a reply to a third-level comment joins its parent's list.
      list = parentDepth < MAX_DEPTH ? parent.querySelector(":scope > .comments--replies") :
        parent.parentNode;
    }
    li.dataset.depth = depth;
    if (atTop && !parent) list.insertBefore(li, list.firstChild);
    else list.appendChild(li);
    $("thread-empty").hidden = true;
  }

  function canEdit(li) {
    var minutes = Number(cfg.editMinutes) || 0;
    var created = new Date(li.dataset.created);
    return li.dataset.mine === "true" && Date.now() - created.getTime() < minutes * 60000;
  }

  function decorate(li) {
    var actions = li.querySelector(":scope > .comment__box > .comment__actions");
    if (!actions) return;
    actions.textContent = "";
    var name = li.querySelector(".comment__author").textContent;
    var held = li.classList.contains("comment--held");
    if (cfg.closed !== "true" && !held) {
      actions.appendChild(button(strings.reply, "reply", strings.reply + " to " + name));
    }
    var likes = Number(li.dataset.likes) || 0;
    if (me && li.dataset.mine !== "true" && !held) {
      var like = button(strings.like + " (" + likes + ")", "like", strings.like + " comment by " + name +
        ", " + likes + " " + strings.likes);
      like.setAttribute("aria-pressed", liked[li.dataset.id] ? "true" : "false");
      actions.appendChild(like);
      actions.appendChild(button(strings.report, "report", strings.report + " comment by " + name));
    } else if (likes) {
      actions.appendChild(element("span", "comment__likes", likes + " " + strings.likes));
    }
    if (me && canEdit(li)) {
      actions.appendChild(button(strings.edit, "edit", strings.edit + " your comment"));
      actions.appendChild(button(strings.del, "delete", strings.del + " your comment"));
    }
  }

  function button(text, action, label) {
    var node = element("button", "link-button", text);
    node.type = "button";
    node.dataset.action = action;
    if (label) node.setAttribute("aria-label", label);
    return node;
  }

  function decorateAll() {
    document.querySelectorAll("#comments li.comment").forEach(function (li) {
      if (me && mine[li.dataset.id]) li.dataset.mine = "true";
      else delete li.dataset.mine;
      decorate(li);
    });
  }

  function setCount(delta) {
    var count = $("thread-count");
    var n = (Number(count.dataset.count) || 0) + delta;
    count.dataset.count = n;
    count.textContent = n;
    $("thread-count-label").textContent = n === 1 ? strings.comment : strings.comments;
  }

  // --- actions on comments ---------------------------------------------------------------------
  $("comments").addEventListener("click", function (event) {
    var target = event.target.closest("button[data-action]");
    if (!target) return;
    var li = target.closest("li.comment");
    var action = target.dataset.action;
    if (action === "reply") startReply(li);
    else if (action === "report") reportComment(li, target);
    else if (action === "like") likeComment(li, target);
    else if (action === "edit") editComment(li);
    else if (action === "delete") deleteComment(li);
  });

  function startReply(li) {
    var form = $("comment-form");
    if (!form) return;
    replyTo = li.dataset.id;
    $("replying-to").hidden = false;
    $("replying-to-text").textContent = strings.replyingTo + li.querySelector(".comment__author").textContent;
    $("comment-body").focus();
    postHeight();
  }

  var cancelReply = $("cancel-reply");
  if (cancelReply) cancelReply.addEventListener("click", function () {
    var back = replyTo && $("comment-" + replyTo);
    replyTo = null;
    $("replying-to").hidden = true;
    var again = back && back.querySelector('button[data-action="reply"]');
    if (again) again.focus();
    postHeight();
  });

  var REASONS = [["abuse", "Abusive or hateful"], ["spam", "Spam"], ["off_topic", "Off topic"], ["other", "Something else"]];

  function reportComment(li, target) {
    var form = element("form", "report-form");
    var id = "report-" + li.dataset.id;
    var label = element("label", "", strings.why);
    label.htmlFor = id;
    var select = element("select");
    select.id = id;
    REASONS.forEach(function (r) {
      var option = element("option", "", r[1]);
      option.value = r[0];
      select.appendChild(option);
    });
    var noteId = id + "-note";
    var noteLabel = element("label", "", "Note (optional)");
    noteLabel.htmlFor = noteId;
    var note = element("input");
    note.id = noteId;
    note.maxLength = 500;
    var sendButton = element("button", "", strings.send);
    sendButton.type = "submit";
    [label, select, noteLabel, note, sendButton].forEach(function (n) { form.appendChild(n); });
    target.replaceWith(form);
    select.focus();
    postHeight();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var payload = { reason: select.value };
      if (note.value.trim()) payload.note = note.value.trim();
      api("POST", "/api/v1/comments/" + li.dataset.id + "/reports", payload).then(function (answer) {
        var text = answer.ok || answer.status === 409 ? strings.reported : answer.data.error || strings.failed;
        var done = element("span", "comment__note", text);
        done.tabIndex = -1;
        form.replaceWith(done);
        done.focus();
        announce(text);
        postHeight();
      });
    });
  }

  function likeComment(li, target) {
    var on = target.getAttribute("aria-pressed") !== "true";
    api(on ? "POST" : "DELETE", "/api/v1/comments/" + li.dataset.id + "/like").then(function (answer) {
      if (!answer.ok) { announce(answer.data.error || strings.failed); return; }
      liked[li.dataset.id] = answer.data.comment.liked;
      li.dataset.likes = answer.data.comment.like_count;
      decorate(li);
      var again = li.querySelector(':scope > .comment__box button[data-action="like"]');
      if (again) again.focus();
    });
  }

  function editComment(li) {
    var box = li.querySelector(":scope > .comment__box");
    var body = box.querySelector(".comment__body");
    if (box.querySelector(".edit-form")) return;
    var form = element("form", "edit-form");
    var id = "edit-" + li.dataset.id;
    var label = element("label", "", strings.edit + " your comment");
    label.htmlFor = id;
    var field = element("textarea");
    field.id = id;
    field.rows = 4;
    field.maxLength = Number(cfg.maxBody) || 5000;
    field.value = body.textContent.trim();
    var save = element("button", "", strings.save);
    save.type = "submit";
    var cancel = button(strings.cancel, "cancel-edit");
    var error = element("p", "comment-form__error");
    error.setAttribute("role", "alert");
    [label, field, save, cancel, error].forEach(function (n) { form.appendChild(n); });
    var actions = box.querySelector(".comment__actions");
    body.hidden = true;
    actions.hidden = true; // one way to act while editing: Save or Cancel
    body.after(form);
    field.focus();
    postHeight();
    var close = function () {
      form.remove();
      body.hidden = false;
      actions.hidden = false;
      decorate(li);
      var edit = box.querySelector('button[data-action="edit"]');
      if (edit) edit.focus();
      postHeight();
    };
    cancel.addEventListener("click", close);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      api("PATCH", "/api/v1/comments/" + li.dataset.id, { body: field.value }).then(function (answer) {
        if (!answer.ok) { error.textContent = answer.data.error || strings.failed; postHeight(); return; }
        var c = answer.data.comment;
        body.innerHTML = c.html; // sanitised on the server
        if (!box.querySelector(".comment__edited")) {
          box.querySelector(".comment__meta").appendChild(element("span", "comment__edited", strings.edited));
        }
        if (c.status !== "published" && !box.querySelector(".comment__held")) {
          li.classList.add("comment--held");
          body.after(element("p", "comment__held", c.status === "pending" ? strings.awaiting : strings.notPublished));
          setCount(-1);
        }
        announce(c.status === "published" ? strings.posted : strings.awaiting);
        close();
      });
    });
  }

  function deleteComment(li) {
    if (!window.confirm(strings.del + "?")) return;
    api("DELETE", "/api/v1/comments/" + li.dataset.id).then(function (answer) {
      if (answer.status !== 204) { announce(answer.data.error || strings.failed); return; }
      if (!li.classList.contains("comment--held")) setCount(-1);
      li.remove();
      announce(strings.deleted);
      var field = $("comment-body");
      if (field) field.focus();
      postHeight();
    });
  }

  // --- the form --------------------------------------------------------------------------------
  var form = $("comment-form");
  if (form) {
    var bodyField = $("comment-body");
    var error = $("comment-error");
    var nudged = false;
    bodyField.addEventListener("input", function () {
      $("comment-chars").textContent = bodyField.value.length;
    });
    var showError = function (text) {
      error.textContent = text;
      error.hidden = !text;
      postHeight();
    };
    var send = function () {
      var text = bodyField.value.trim();
      if (!text) { showError(strings.empty); bodyField.focus(); return; }
      var payload = { site: cfg.site, url: cfg.url, body: text, nudge: !nudged, nudged: nudged };
      if (cfg.title) payload.title = cfg.title;
      if (replyTo) payload.parent_id = Number(replyTo);
      if (!me && cfg.allowGuests === "true") {
        payload.name = $("guest-name").value;
        payload.email = $("guest-email").value;
      }
      $("comment-submit").disabled = true;
      api("POST", "/api/v1/comments", payload).then(function (answer) {
        $("comment-submit").disabled = false;
        if (answer.status === 200 && answer.data.nudge) {
          $("nudge-message").textContent = answer.data.nudge.message;
          $("nudge").hidden = false;
          $("nudge-edit").focus();
          postHeight();
          return;
        }
        if (answer.status !== 201 && answer.status !== 202) {
          showError(answer.data.error || strings.failed);
          if (answer.status === 401) { setToken(null); loadMe(); }
          return;
        }
        var c = answer.data.comment;
        c.mine = true;
        mine[c.id] = true;
        showError("");
        nudged = false;
        $("nudge").hidden = true;
        var li = buildComment(c, 1);
        place(c, li, cfg.sort === "newest");
        decorate(li);
        if (c.status === "published") setCount(1);
        bodyField.value = "";
        $("comment-chars").textContent = "0";
        replyTo = null;
        $("replying-to").hidden = true;
        refreshTimes();
        li.tabIndex = -1;
        li.focus();
        announce(c.status === "published" ? strings.posted :
          c.status === "pending" ? strings.awaiting : strings.notPublished);
        postHeight();
      }, function () {
        $("comment-submit").disabled = false;
        showError(strings.failed);
      });
    };
    form.addEventListener("submit", function (event) { event.preventDefault(); send(); });
    $("nudge-edit").addEventListener("click", function () {
      nudged = true; // the next submission goes through, changed or not
      $("nudge").hidden = true;
      bodyField.focus();
      postHeight();
    });
    $("nudge-post").addEventListener("click", function () { nudged = true; send(); });
  }

  // --- sorting and paging ----------------------------------------------------------------------
  $("thread-sort").addEventListener("change", function (event) {
    var params = new URLSearchParams(window.location.search);
    params.set("sort", event.target.value);
    window.location.search = params.toString(); // the server renders the first page again
  });

  var more = $("load-more");
  more.addEventListener("click", function () {
    var query = new URLSearchParams({ site: cfg.site, url: cfg.url, sort: cfg.sort, limit: "50", cursor: cfg.nextCursor });
    more.disabled = true;
    api("GET", "/api/v1/comments?" + query.toString()).then(function (answer) {
      more.disabled = false;
      if (!answer.ok) return;
      var first = null, added = [];
      answer.data.comments.forEach(function (c) {
        if ($("comment-" + c.id)) return;
        var li = buildComment(c, 1);
        place(c, li, false);
        decorate(li);
        added.push(li);
        first = first || li;
      });
      cfg.nextCursor = answer.data.next_cursor || "";
      more.hidden = !cfg.nextCursor;
      refreshTimes();
      if (first) { first.tabIndex = -1; first.focus(); }
      postHeight();
      // The page of comments is the same for everyone: whose they are and what this reader
      // liked comes from /embed/me, for the new ones only.
      if (me && added.length) loadMe(undefined, shownIds(added));
    });
  });

  // The rest waits for the next task: the height message above leaves now, and the thread is
  // painted before relative times, buttons and who is reading are added (the action row keeps
  // its height in the CSS, so adding the buttons does not move anything).
  window.setTimeout(function () {
    refreshTimes();
    window.setInterval(refreshTimes, 60000);
    decorateAll();
    postHeight();
    loadMe();
  }, 0);
})();
