// The moderators' review desk: a thin page over the desk's JSON API (/api/v1/moderation).
//
// Safety rule of this file: everything users wrote (comment bodies, names, notes, reasons typed
// by moderators) reaches the page through text nodes (el(), textContent), never through
// innerHTML, so a hostile comment is shown as the text it is.
// Requests carry the session cookie and "X-Requested-With", which is the API's CSRF defence.
(function () {
  "use strict";

  var root = document.getElementById("desk");
  if (!root) {
    return;
  }
  var API = root.getAttribute("data-api") || "/api/v1/moderation";
  var UNDO_MS = 10000; // the server accepts an undo for UNDO_SECONDS (10) after the decision
  // Cards per request: 50, or ?limit=N in the address (1 to 200) for smaller or bigger pages.
  var PAGE_SIZE = Math.min(200, Math.max(1, parseInt(new URLSearchParams(window.location.search).get("limit"), 10) || 50));
  var COUNTS_EVERY_MS = 20000;
  var LOCAL_COUNTS_TRUSTED_MS = 15000; // server counts are cached a few seconds: ours win meanwhile

  // --- small helpers ------------------------------------------------------------------------

  /** An element with attributes and children (strings become text nodes, never markup). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) {
          return;
        }
        if (name === "className") {
          node.className = value;
        } else if (name === "text") {
          node.textContent = value;
        } else if (name.slice(0, 2) === "on" && typeof value === "function") {
          node.addEventListener(name.slice(2), value);
        } else {
          node.setAttribute(name, value === true ? "" : String(value));
        }
      });
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === null || children === undefined) {
      return node;
    }
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === null || child === undefined || child === false) {
        return;
      }
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  /** Call the JSON API; resolves to {ok, status, data} (data is {} when the body is not JSON). */
  function api(method, path, body) {
    var headers = { "X-Requested-With": "fetch", Accept: "application/json" };
    var options = { method: method, credentials: "same-origin", headers: headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options)
      .then(function (response) {
        if (response.status === 401) {
          // The session ended: log in again and come back here.
          var here = window.location.pathname + window.location.search;
          window.location.assign("/auth/login?next=" + encodeURIComponent(here));
        }
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            return { ok: response.ok, status: response.status, data: data || {} };
          });
      })
      .catch(function () {
        return { ok: false, status: 0, data: { error: "The server could not be reached." } };
      });
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (name) {
      var value = params[name];
      (Array.isArray(value) ? value : [value]).forEach(function (item) {
        if (item !== "" && item !== null && item !== undefined) {
          parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(item));
        }
      });
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function parseTime(value) {
    if (!value) {
      return null;
    }
    // Naive ISO times from the API are UTC.
    var text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : value + "Z";
    var moment = new Date(text);
    return isNaN(moment.getTime()) ? null : moment;
  }

  function ago(value) {
    var moment = parseTime(value);
    if (!moment) {
      return "";
    }
    var seconds = Math.max(0, (Date.now() - moment.getTime()) / 1000);
    if (seconds < 60) {
      return "just now";
    }
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + " min ago";
    }
    if (seconds < 86400) {
      return Math.floor(seconds / 3600) + " h ago";
    }
    return Math.floor(seconds / 86400) + " d ago";
  }

  function age(value) {
    var moment = parseTime(value);
    if (!moment) {
      return "unknown";
    }
    var days = Math.floor((Date.now() - moment.getTime()) / 86400000);
    if (days < 1) {
      return "less than a day";
    }
    if (days < 60) {
      return days + (days === 1 ? " day" : " days");
    }
    if (days < 730) {
      return Math.floor(days / 30) + " months";
    }
    return Math.floor(days / 365) + " years";
  }

  function timeEl(value) {
    var moment = parseTime(value);
    if (!moment) {
      return el("span", { text: "" });
    }
    return el("time", {
      datetime: moment.toISOString(),
      title: moment.toISOString().replace("T", " ").slice(0, 16) + " UTC",
      text: ago(value),
    });
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function isTyping(target) {
    if (!target || !target.tagName) {
      return false;
    }
    if (target.isContentEditable) {
      return true;
    }
    var tag = target.tagName.toUpperCase();
    if (tag === "TEXTAREA" || tag === "SELECT") {
      return true;
    }
    if (tag === "INPUT") {
      var type = (target.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset"].indexOf(type) === -1;
    }
    return false;
  }

  /** Site key -> name, from the site filter the server rendered (names, not keys, on cards). */
  function siteNames() {
    var names = {};
    Array.prototype.forEach.call(document.querySelectorAll('select[data-filter="site"] option'), function (option) {
      if (option.value) {
        names[option.value] = option.textContent;
      }
    });
    return names;
  }
  var SITE_NAMES = siteNames();

  function siteName(key) {
    return SITE_NAMES[key] || key || "";
  }

  function anyDialogOpen() {
    return document.querySelector("dialog[open]") !== null;
  }

  // --- toasts (aria-live) ---------------------------------------------------------------------

  var toasts = document.getElementById("desk-toasts");

  /** Show a short message; ``action`` = {label, run} adds a button. Returns a remover. */
  function toast(message, kind, action, lifetime) {
    var node = el("div", { className: "desk-toast desk-toast--" + (kind || "info") }, [
      el("span", { className: "desk-toast__text", text: message }),
    ]);
    var removed = false;
    function remove() {
      if (!removed && node.parentNode) {
        node.parentNode.removeChild(node);
      }
      removed = true;
    }
    if (action) {
      node.appendChild(
        el("button", {
          type: "button",
          className: "desk-toast__action",
          text: action.label,
          onclick: function () {
            remove();
            action.run();
          },
        })
      );
    }
    if (toasts) {
      toasts.appendChild(node);
      while (toasts.children.length > 4) {
        toasts.removeChild(toasts.firstChild);
      }
    }
    window.setTimeout(remove, lifetime || (kind === "error" ? 8000 : 5000));
    return remove;
  }

  // --- the confirm dialog (reject reason, ban message, suspend hours) ----------------------------

  var confirmDialog = document.getElementById("desk-confirm");

  /** Ask with the shared dialog; resolves to {message, hours} or null when cancelled. */
  function ask(options) {
    return new Promise(function (resolve) {
      if (!confirmDialog || typeof confirmDialog.showModal !== "function") {
        resolve(window.confirm(options.text) ? { message: "", hours: 24 } : null);
        return;
      }
      var form = document.getElementById("desk-confirm-form");
      var message = document.getElementById("desk-confirm-message");
      var hours = document.getElementById("desk-confirm-hours");
      document.getElementById("desk-confirm-title").textContent = options.title;
      document.getElementById("desk-confirm-text").textContent = options.text;
      document.getElementById("desk-confirm-ok").textContent = options.ok || "Confirm";
      document.getElementById("desk-confirm-message-label").textContent =
        options.messageLabel || "Message";
      document.getElementById("desk-confirm-message-field").hidden = !options.messageLabel;
      document.getElementById("desk-confirm-hours-field").hidden = !options.hours;
      message.value = "";
      hours.value = "24";
      var opener = document.activeElement;
      function done() {
        confirmDialog.removeEventListener("close", done);
        var ok = confirmDialog.returnValue === "ok";
        confirmDialog.returnValue = "";
        if (opener && typeof opener.focus === "function") {
          opener.focus();
        }
        resolve(ok ? { message: message.value.trim(), hours: parseInt(hours.value, 10) } : null);
      }
      confirmDialog.addEventListener("close", done);
      form.reset();
      confirmDialog.returnValue = "";
      confirmDialog.showModal();
      (options.messageLabel ? message : document.getElementById("desk-confirm-ok")).focus();
    });
  }

  if (confirmDialog) {
    // Enter in the textarea adds a line; Ctrl/Cmd+Enter confirms without the mouse.
    confirmDialog.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        confirmDialog.close("ok");
      }
    });
  }

  // --- pages ------------------------------------------------------------------------------------

  if (root.getAttribute("data-page") === "queue") {
    startQueue();
  } else if (root.getAttribute("data-page") === "audit") {
    startAudit();
  }

  // ============================================================================================
  // The queue
  // ============================================================================================

  function startQueue() {
    var list = document.getElementById("desk-cards");
    var emptyState = document.getElementById("desk-empty");
    var moreButton = document.getElementById("desk-more");
    var statusLine = document.getElementById("desk-status");
    var filtersForm = document.getElementById("desk-filters");
    var bulkBar = document.getElementById("desk-bulk");
    var bulkCount = document.getElementById("desk-bulk-count");
    var drawer = document.getElementById("desk-drawer");
    var drawerBody = document.getElementById("desk-drawer-body");
    var drawerTitle = document.getElementById("desk-drawer-title");
    var helpDialog = document.getElementById("desk-help");
    var reasonList = document.getElementById("desk-reasons");

    var state = {
      queue: root.getAttribute("data-queue") || "pending",
      cards: [], // [{comment, node, notice}] in display order
      cursor: null,
      focus: 0,
      selected: {}, // id -> true
      loading: false,
      generation: 0, // bumps on every reload, so late answers of an older query are dropped
      counts: {},
      countsTouchedAt: 0,
      lastUndo: null, // {entries: [{comment, index, from}], expires, dismiss}
      drawerFor: null,
      reasons: {},
    };

    // --- filters and the URL ---

    function filterInputs() {
      return Array.prototype.slice.call(filtersForm.querySelectorAll("[data-filter]"));
    }

    function readFilters() {
      var filters = {};
      filterInputs().forEach(function (input) {
        var value = (input.value || "").trim();
        if (value !== "") {
          filters[input.getAttribute("data-filter")] = value;
        }
      });
      if (filters.sort === "oldest") {
        delete filters.sort; // the default
      }
      return filters;
    }

    function loadFiltersFromUrl() {
      var params = new URLSearchParams(window.location.search);
      filterInputs().forEach(function (input) {
        var name = input.getAttribute("data-filter");
        if (params.has(name) && name !== "site") {
          input.value = params.get(name);
        }
      });
      var queue = params.get("queue");
      if (queue && document.querySelector('[data-queue-tab="' + CSS.escape(queue) + '"]')) {
        state.queue = queue;
      }
    }

    function saveUrl() {
      var filters = readFilters();
      if (state.queue !== "pending") {
        filters.queue = state.queue;
      }
      if (PAGE_SIZE !== 50) {
        filters.limit = PAGE_SIZE;
      }
      var search = query(filters);
      window.history.replaceState(null, "", window.location.pathname + search);
    }

    function siteParams() {
      var site = readFilters().site;
      return site ? { site: site } : {};
    }

    // --- counts ---

    function showCounts() {
      Array.prototype.forEach.call(document.querySelectorAll("[data-count]"), function (node) {
        var name = node.getAttribute("data-count");
        var value = state.counts[name];
        node.textContent = value === undefined || value === null ? "–" : String(value);
        node.setAttribute("aria-label", (value === undefined ? "unknown" : value) + " " + name);
      });
    }

    function takeServerCounts(counts, force) {
      if (!counts) {
        return;
      }
      if (!force && Date.now() - state.countsTouchedAt < LOCAL_COUNTS_TRUSTED_MS) {
        return; // our own recent decisions are newer than the server's cached numbers
      }
      state.counts = Object.assign({}, counts);
      showCounts();
    }

    function moveCount(from, to, n) {
      if (from === to) {
        return;
      }
      if (typeof state.counts[from] === "number") {
        state.counts[from] = Math.max(0, state.counts[from] - n);
      }
      if (typeof state.counts[to] === "number") {
        state.counts[to] += n;
      }
      state.countsTouchedAt = Date.now();
      showCounts();
    }

    function refreshCounts() {
      api("GET", "/counts" + query(siteParams())).then(function (res) {
        if (res.ok) {
          takeServerCounts(res.data.counts, false);
        }
      });
    }

    // --- loading the queue ---

    function reload() {
      state.generation += 1;
      state.cards.forEach(function (card) {
        card.node.remove();
      });
      state.cards = [];
      state.cursor = null;
      state.focus = 0;
      state.selected = {};
      updateBulk();
      saveUrl();
      Array.prototype.forEach.call(document.querySelectorAll("[data-queue-tab]"), function (tab) {
        tab.setAttribute(
          "aria-pressed",
          tab.getAttribute("data-queue-tab") === state.queue ? "true" : "false"
        );
      });
      return loadPage(true);
    }

    function loadPage(first) {
      if (state.loading && !first) {
        return Promise.resolve();
      }
      var generation = state.generation;
      state.loading = true;
      statusLine.textContent = "Loading…";
      var params = Object.assign(readFilters(), {
        queue: state.queue,
        limit: PAGE_SIZE,
        expand: "author",
        cursor: first ? null : state.cursor,
      });
      return api("GET", "/queue" + query(params)).then(function (res) {
        if (generation !== state.generation) {
          return;
        }
        state.loading = false;
        if (!res.ok) {
          statusLine.textContent = res.data.error || "The queue could not be loaded.";
          return;
        }
        statusLine.textContent = "";
        takeServerCounts(res.data.counts, first);
        state.cursor = res.data.next_cursor || null;
        var known = {};
        state.cards.forEach(function (card) {
          known[card.comment.id] = true;
        });
        (res.data.comments || []).forEach(function (comment) {
          if (!known[comment.id]) {
            addCard(comment, state.cards.length);
          }
        });
        afterListChange();
        if (first) {
          focusCard(0, false);
        }
      });
    }

    function afterListChange() {
      emptyState.hidden = state.cards.length > 0 || state.loading;
      moreButton.hidden = !state.cursor;
    }

    // --- cards ---

    function addCard(comment, index) {
      var card = { comment: comment, node: null, notice: null };
      card.node = el("li", { className: "desk-card", tabindex: "-1" });
      renderCard(card);
      if (seen) {
        seen.observe(card.node); // the author's record loads once the card scrolls into view
      }
      var before = state.cards[index] ? state.cards[index].node : null;
      list.insertBefore(card.node, before);
      state.cards.splice(index, 0, card);
      (comment.reasons || []).forEach(function (reason) {
        if (reason && reason.code && !state.reasons[reason.code]) {
          state.reasons[reason.code] = true;
          reasonList.appendChild(el("option", { value: reason.code }));
        }
      });
      return card;
    }

    var seen =
      "IntersectionObserver" in window
        ? new IntersectionObserver(function (entries) {
            entries.forEach(function (entry) {
              if (!entry.isIntersecting) {
                return;
              }
              seen.unobserve(entry.target);
              state.cards.forEach(function (card) {
                if (card.node === entry.target) {
                  ensureSummary(card);
                }
              });
            });
          })
        : null;

    function indexOfCard(card) {
      return state.cards.indexOf(card);
    }

    function cardById(id) {
      for (var i = 0; i < state.cards.length; i += 1) {
        if (state.cards[i].comment.id === id) {
          return state.cards[i];
        }
      }
      return null;
    }

    function removeCard(card) {
      var index = indexOfCard(card);
      if (index === -1) {
        return -1;
      }
      var hadFocus = card.node.contains(document.activeElement) || index === state.focus;
      state.cards.splice(index, 1);
      card.node.remove();
      delete state.selected[card.comment.id];
      updateBulk();
      if (index < state.focus) {
        state.focus -= 1;
      }
      if (state.cards.length && state.cards.length - state.focus <= 3 && state.cursor) {
        loadPage(false); // keep cards coming while the moderator works down the list
      }
      if (!state.cards.length && !state.cursor) {
        // Cleared: look again, new comments may have arrived meanwhile.
        window.setTimeout(function () {
          if (!state.cards.length) {
            loadPage(true);
          }
        }, 300);
      }
      afterListChange();
      if (hadFocus) {
        focusCard(Math.min(state.focus, state.cards.length - 1), true);
      }
      return index;
    }

    /** The body as text nodes, with the flagged ranges in <mark> (offsets are code points). */
    function highlightedBody(body, highlights) {
      var points = Array.from(body || "");
      var nodes = [];
      var at = 0;
      (highlights || [])
        .slice()
        .sort(function (a, b) {
          return a.start - b.start;
        })
        .forEach(function (mark) {
          var start = Math.max(at, Math.min(points.length, mark.start | 0));
          var end = Math.max(start, Math.min(points.length, mark.end | 0));
          if (end <= start) {
            return;
          }
          if (start > at) {
            nodes.push(points.slice(at, start).join(""));
          }
          var why = (mark.label || mark.source || "flagged").toString();
          nodes.push(
            el("mark", {
              className: "desk-mark desk-mark--" + String(mark.source || "other").replace(/[^a-z_]/g, ""),
              title: why,
              text: points.slice(start, end).join(""),
            })
          );
          at = end;
        });
      if (at < points.length) {
        nodes.push(points.slice(at).join(""));
      }
      return nodes;
    }

    function scoreBar(name, value) {
      var number = typeof value === "number" ? value : null;
      var percent = number === null ? 0 : Math.round(number * 100);
      var level = number === null ? "none" : number >= 0.8 ? "high" : number >= 0.5 ? "mid" : "low";
      var fill = el("span", { className: "desk-score__fill" });
      fill.style.width = percent + "%"; // through the CSSOM, which a strict CSP allows
      return el("div", { className: "desk-score desk-score--" + level }, [
        el("span", { className: "desk-score__name", text: name }),
        el(
          "span",
          {
            className: "desk-score__bar",
            role: "meter",
            "aria-label": name + " score",
            "aria-valuemin": "0",
            "aria-valuemax": "100",
            "aria-valuenow": String(percent),
          },
          [fill]
        ),
        el("span", { className: "desk-score__value", text: number === null ? "–" : number.toFixed(2) }),
      ]);
    }

    function authorFacts(summary) {
      if (!summary) {
        return [el("span", { className: "desk-muted", text: "The author's record loads when the card is shown…" })];
      }
      var flagsOf = summary.state || {};
      var facts = [];
      var methods = (summary.login_methods || []).join(", ") || (summary.id ? "none" : "guest");
      facts.push(el("span", { text: "Login: " + methods }));
      if (summary.account_created_at) {
        facts.push(el("span", { text: "Account: " + age(summary.account_created_at) }));
      }
      facts.push(
        el("span", {
          text: (summary.approved || 0) + " approved · " + (summary.rejected || 0) + " rejected",
        })
      );
      facts.push(
        el("span", {
          text:
            "Reports: " + (summary.reports_made || 0) + " made · " + (summary.reports_received || 0) + " received",
        })
      );
      facts.push(el("span", { text: plural(summary.notes_count || 0, "note") }));
      var flags = [];
      if (flagsOf.banned) flags.push("banned");
      if (flagsOf.suspended_until) flags.push("suspended until " + String(flagsOf.suspended_until).slice(0, 16));
      if (flagsOf.premoderate) flags.push("always pre-moderated");
      if (flagsOf.trusted) flags.push("trusted");
      if (flagsOf.shadow_banned) flags.push("shadow banned");
      flags.forEach(function (flag) {
        facts.push(el("span", { className: "desk-flag", text: flag }));
      });
      return facts;
    }

    function renderCard(card) {
      var c = card.comment;
      var author = c.author || {};
      var thread = c.thread || {};
      var node = card.node;
      clear(node);
      node.setAttribute("data-id", String(c.id));
      node.setAttribute("data-status", String(c.status || ""));
      node.setAttribute("aria-label", "Comment by " + (author.name || "unknown") + (thread.title ? " on " + thread.title : ""));
      node.classList.toggle("is-selected", !!state.selected[c.id]);

      var checkbox = el("input", {
        type: "checkbox",
        className: "desk-card__select",
        "aria-label": "Select this comment",
        onchange: function (event) {
          setSelected(card, event.target.checked);
        },
      });
      checkbox.checked = !!state.selected[c.id];

      var articleLink = thread.url
        ? el("a", { href: thread.url, target: "_blank", rel: "noopener noreferrer", text: thread.title || thread.url })
        : el("span", { text: thread.title || "" });

      var top = el("div", { className: "desk-card__top" }, [
        checkbox,
        el("span", { className: "desk-card__site", title: c.site || "", text: siteName(c.site) }),
        el("span", { className: "desk-card__article" }, ["on ", articleLink]),
        timeEl(c.created_at),
        el("span", { className: "desk-badge desk-badge--" + String(c.status || ""), text: c.status || "" }),
        c.model_version ? el("span", { className: "desk-muted", title: "Model that scored it", text: "model " + c.model_version }) : null,
      ]);

      var parent = null;
      if (c.parent) {
        parent = el("blockquote", { className: "desk-card__parent" }, [
          el("span", { className: "desk-muted", text: "In reply to " + ((c.parent.author || {}).name || "a comment") + " (" + (c.parent.status || "") + "): " }),
          el("span", { text: String(c.parent.body || "").slice(0, 400) }),
        ]);
      }

      var body = el("p", { className: "desk-card__body" }, highlightedBody(c.body, c.highlights));

      var scores = el("div", { className: "desk-card__scores" }, [
        scoreBar("Spam", (c.scores || {}).spam),
        scoreBar("Abuse", (c.scores || {}).abuse),
      ]);

      var reasons = el(
        "ul",
        { className: "desk-card__reasons", "aria-label": "Why it is here" },
        (c.reasons || []).map(function (reason) {
          return el("li", { "data-code": reason.code || "", text: reason.message || reason.code || "" });
        })
      );
      var reportList = null;
      if (c.report_count) {
        var summaryText =
          plural(c.report_count, "reader report") + (c.report_weight ? " (weight " + Number(c.report_weight).toFixed(1) + ")" : "");
        reportList = el("ol", { className: "desk-card__report-list", id: "desk-reports-" + c.id, hidden: true });
        reasons.appendChild(
          el("li", { className: "desk-card__reports" }, [
            summaryText + " ",
            el("button", {
              type: "button",
              className: "desk-link",
              "aria-expanded": "false",
              "aria-controls": "desk-reports-" + c.id,
              text: "Show the reports",
              onclick: function (event) {
                toggleReports(card, event.currentTarget, reportList);
              },
            }),
          ])
        );
      }

      var authorButton = el("button", {
        type: "button",
        className: "desk-link desk-card__author-name",
        text: author.name || "unknown",
        "aria-label": "Open the author panel for " + (author.name || "this author"),
        onclick: function () {
          openDrawer(card);
        },
      });
      var authorBox = el("div", { className: "desk-card__author" }, [
        authorButton,
        author.guest ? el("span", { className: "desk-flag", text: "guest" }) : null,
        el("span", { className: "desk-card__facts" }, authorFacts(c.author_summary)),
      ]);

      card.noticeNode = el("p", { className: "desk-card__notice", role: "alert", hidden: !card.notice, text: card.notice || "" });

      function actionButton(label, key, run) {
        return el("button", {
          type: "button",
          className: "desk-action desk-action--" + label.toLowerCase().replace(/\W+/g, "-"),
          "aria-keyshortcuts": key,
          onclick: run,
        }, [label, " ", el("kbd", { "aria-hidden": "true", text: key })]);
      }
      var actions = el("div", { className: "desk-card__actions" }, [
        actionButton("Approve", "a", function () { decideOne(card, "approve"); }),
        actionButton("Reject", "r", function () { decideOne(card, "reject"); }),
        actionButton("Reject with reason", "R", function () { rejectWithReason(card); }),
        actionButton("Spam", "s", function () { decideOne(card, "spam"); }),
        authorTarget(c) ? actionButton("Ban author", "b", function () { banAuthor(card); }) : null,
      ]);

      append(node, [top, parent, body, scores, reasons, reportList, authorBox, card.noticeNode, actions]);
    }

    /** Reader reports of a comment: reason, note, reporter and weight (new accounts weigh less). */
    function toggleReports(card, button, target) {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      button.textContent = open ? "Show the reports" : "Hide the reports";
      target.hidden = open;
      if (open || target.getAttribute("data-loaded")) {
        return;
      }
      target.setAttribute("data-loaded", "1");
      append(target, el("li", { className: "desk-muted", text: "Loading…" }));
      api("GET", "/comments/" + card.comment.id + "/reports").then(function (res) {
        clear(target);
        if (!res.ok) {
          target.removeAttribute("data-loaded");
          append(target, el("li", { text: res.data.error || "The reports could not be loaded." }));
          return;
        }
        (res.data.reports || []).forEach(function (report) {
          var reporter = report.reporter || {};
          append(
            target,
            el("li", {}, [
              el("strong", { text: report.reason || "" }),
              report.note ? ": " : "",
              report.note ? el("span", { className: "desk-report__note", text: report.note }) : null,
              el("span", {
                className: "desk-muted",
                text:
                  " (by " + (reporter.name || "a reader") +
                  (reporter.new_account ? ", a new account" : "") +
                  ", weight " + Number(report.weight || 0).toFixed(1) + ", " + ago(report.created_at) + ")",
              }),
            ])
          );
        });
      });
    }

    function ensureSummary(card) {
      if (card.comment.author_summary || card.summaryRequested) {
        return;
      }
      card.summaryRequested = true;
      api("GET", "/comments/" + card.comment.id + "?expand=author").then(function (res) {
        if (res.ok && res.data.comment && indexOfCard(card) !== -1) {
          card.comment.author_summary = res.data.comment.author_summary || null;
          if (card.comment.author_summary) {
            renderCard(card);
          }
        }
      });
    }

    // --- focus and selection ---

    function focusCard(index, scroll) {
      if (!state.cards.length) {
        state.focus = 0;
        return;
      }
      index = Math.max(0, Math.min(state.cards.length - 1, index));
      state.cards.forEach(function (card, i) {
        card.node.classList.toggle("is-focused", i === index);
      });
      state.focus = index;
      var card = state.cards[index];
      if (scroll !== false || document.activeElement === document.body) {
        card.node.focus({ preventScroll: true });
        card.node.scrollIntoView({ block: "nearest" });
      }
      ensureSummary(card);
      if (state.cards[index + 1]) {
        ensureSummary(state.cards[index + 1]); // ready before the moderator gets there
      }
      if (state.cards.length - index <= 3 && state.cursor) {
        loadPage(false);
      }
    }

    function focused() {
      return state.cards[state.focus] || null;
    }

    function setSelected(card, on) {
      if (on) {
        state.selected[card.comment.id] = true;
      } else {
        delete state.selected[card.comment.id];
      }
      card.node.classList.toggle("is-selected", on);
      var box = card.node.querySelector(".desk-card__select");
      if (box) {
        box.checked = on;
      }
      updateBulk();
    }

    function selectedCards() {
      return state.cards.filter(function (card) {
        return state.selected[card.comment.id];
      });
    }

    function updateBulk() {
      var n = Object.keys(state.selected).length;
      bulkBar.hidden = n === 0;
      bulkCount.textContent = n + " selected";
    }

    // --- decisions ---

    var ACTION_WORDS = { approve: "Approved", reject: "Rejected", spam: "Marked as spam" };
    var ACTION_QUEUE = { approve: "approved", reject: "rejected", spam: "spam" };

    /** The queue a comment is counted in now (a card whose comment someone else moved has left ours). */
    function queueOf(comment) {
      var status = comment.status;
      if (status === "published") {
        return comment.needs_review || state.queue === "reported" ? "reported" : "approved";
      }
      return status === "pending" || status === "spam" || status === "rejected" ? status : state.queue;
    }

    function decideOne(card, action, reason) {
      if (!card || card.busy) {
        return;
      }
      card.busy = true;
      var from = queueOf(card.comment);
      var index = removeCard(card); // at once, so the next key acts on the next comment
      moveCount(from, ACTION_QUEUE[action], 1);
      var body = { action: action, version: card.comment.version };
      if (reason) {
        body.reason = reason;
      }
      api("POST", "/comments/" + card.comment.id + "/decision", body).then(function (res) {
        card.busy = false;
        if (res.ok && res.data.comment) {
          var who = (card.comment.author || {}).name || "the author";
          offerUndo([{ comment: res.data.comment, index: index, from: from, to: ACTION_QUEUE[action] }],
            ACTION_WORDS[action] + " the comment by " + who + ".");
          return;
        }
        moveCount(ACTION_QUEUE[action], from, 1);
        putBack(card, index, res);
      });
    }

    /** A decision that did not happen: the card returns, with the reason on it. */
    function putBack(card, index, res) {
      if (res.status === 404) {
        toast(res.data.error || "That comment no longer exists.", "error");
        return;
      }
      if (res.status === 409) {
        if (res.data.comment) {
          card.comment = Object.assign({}, res.data.comment, {
            author_summary: res.data.comment.author_summary || card.comment.author_summary,
          });
        }
        var decided = res.data.status && res.data.status !== card.comment.status ? res.data.status : null;
        if (decided) {
          card.comment.status = decided;
        }
        card.notice = res.data.error || "Someone else decided on this comment first.";
        // The other moderator's decision moved it out of this queue.
        if (card.comment.status && card.comment.status !== "pending" && state.queue === "pending") {
          moveCount("pending", null, 1);
        }
      } else {
        card.notice = res.data.error || "The decision failed; try again.";
      }
      var at = Math.min(index < 0 ? 0 : index, state.cards.length);
      state.cards.splice(at, 0, card);
      list.insertBefore(card.node, state.cards[at + 1] ? state.cards[at + 1].node : null);
      renderCard(card);
      card.node.classList.add("is-conflict");
      afterListChange();
      focusCard(at, true);
      toast(card.notice, "error");
    }

    function decideSelection(action) {
      var cards = selectedCards();
      if (!cards.length) {
        return;
      }
      var from = queueOf(cards[0].comment);
      var indexes = {};
      cards.forEach(function (card) {
        card.busy = true;
      });
      // Remove from the bottom up so the recorded indexes stay right for putting back.
      cards
        .slice()
        .reverse()
        .forEach(function (card) {
          indexes[card.comment.id] = removeCard(card);
        });
      moveCount(from, ACTION_QUEUE[action], cards.length);
      var payload = {
        action: action,
        comments: cards.map(function (card) {
          return { id: card.comment.id, version: card.comment.version };
        }),
      };
      api("POST", "/decisions", payload).then(function (res) {
        cards.forEach(function (card) {
          card.busy = false;
        });
        if (!res.ok) {
          moveCount(ACTION_QUEUE[action], from, cards.length);
          cards.forEach(function (card) {
            putBack(card, indexes[card.comment.id], res);
          });
          return;
        }
        var done = [];
        var failed = 0;
        (res.data.results || []).forEach(function (result) {
          var card = cards.filter(function (c) {
            return c.comment.id === result.id;
          })[0];
          if (!card) {
            return;
          }
          if (result.ok) {
            done.push({ comment: result.comment, index: indexes[card.comment.id], from: from, to: ACTION_QUEUE[action] });
          } else {
            failed += 1;
            moveCount(ACTION_QUEUE[action], from, 1);
            putBack(card, indexes[card.comment.id], {
              status: result.status,
              data: { error: result.error, comment: result.comment, status: result.status_now },
            });
          }
        });
        if (done.length) {
          offerUndo(done, ACTION_WORDS[action] + " " + plural(done.length, "comment") + (failed ? " (" + failed + " failed)" : "") + ".");
        }
      });
    }

    function decide(action) {
      if (selectedCards().length) {
        decideSelection(action);
      } else {
        decideOne(focused(), action);
      }
    }

    function rejectWithReason(card) {
      if (!card) {
        return;
      }
      ask({
        title: "Reject this comment",
        text: "The author may be told why (if the site sends decision e-mails).",
        messageLabel: "Reason for the author (optional)",
        ok: "Reject",
      }).then(function (answer) {
        if (answer) {
          decideOne(card, "reject", answer.message);
        }
      });
    }

    // --- undo ---

    function offerUndo(entries, message) {
      if (state.lastUndo && state.lastUndo.dismiss) {
        state.lastUndo.dismiss();
      }
      var undo = { entries: entries, expires: Date.now() + UNDO_MS, dismiss: null };
      undo.dismiss = toast(message, "success", { label: "Undo (u)", run: function () { runUndo(undo); } }, UNDO_MS);
      state.lastUndo = undo;
    }

    function runUndo(undo) {
      undo = undo || state.lastUndo;
      if (!undo || undo.used) {
        toast("There is no decision to undo.", "info");
        return;
      }
      if (Date.now() > undo.expires) {
        toast("Too late to undo: decisions can be undone for 10 seconds.", "error");
        return;
      }
      undo.used = true;
      if (undo.dismiss) {
        undo.dismiss();
      }
      if (state.lastUndo === undo) {
        state.lastUndo = null;
      }
      // Put back in the original order: lowest index first.
      var entries = undo.entries.slice().sort(function (a, b) {
        return a.index - b.index;
      });
      Promise.all(
        entries.map(function (entry) {
          return api("POST", "/comments/" + entry.comment.id + "/undo", {});
        })
      ).then(function (answers) {
        var restored = 0;
        answers.forEach(function (res, i) {
          var entry = entries[i];
          if (!res.ok) {
            toast(res.data.error || "That decision can no longer be undone.", "error");
            return;
          }
          restored += 1;
          moveCount(entry.to, entry.from, 1);
          if (res.data.comment && !cardById(res.data.comment.id)) {
            var previous = entry.comment;
            var comment = Object.assign({}, res.data.comment, {
              author_summary: res.data.comment.author_summary || previous.author_summary,
            });
            var card = addCard(comment, Math.min(Math.max(entry.index, 0), state.cards.length));
            if (i === 0) {
              focusCard(indexOfCard(card), true);
            }
          }
        });
        afterListChange();
        if (restored) {
          toast("Undone: " + plural(restored, "comment") + " back in the queue.", "info");
        }
      });
    }

    // --- the author: ban from the card, and the drawer ---

    /** Where the author's record lives: a user by id, or a guest by e-mail address. */
    function authorTarget(comment) {
      var author = comment.author || {};
      var summary = comment.author_summary || {};
      if (author.id) {
        return { base: "/authors/" + author.id, params: { site: comment.site }, key: comment.site + " user " + author.id };
      }
      if (summary.guest_email) {
        return {
          base: "/guests",
          params: { site: comment.site, email: summary.guest_email },
          key: comment.site + " guest " + summary.guest_email,
        };
      }
      return null;
    }

    function authorPath(comment, what) {
      var target = authorTarget(comment);
      return target ? target.base + (what ? "/" + what : "") + query(target.params) : null;
    }

    function authorAction(comment, action, extra) {
      var target = authorTarget(comment);
      var body = Object.assign({ action: action }, extra || {});
      return api("POST", authorPath(comment, "actions"), body).then(function (res) {
        if (!res.ok) {
          toast(res.data.error || "That did not work.", "error");
          return null;
        }
        var summary = res.data.author;
        state.cards.forEach(function (card) {
          var other = authorTarget(card.comment);
          if (other && other.key === target.key) {
            card.comment.author_summary = Object.assign({}, card.comment.author_summary || {}, summary);
            renderCard(card);
          }
        });
        focusCard(state.focus, false);
        return summary;
      });
    }

    function banAuthor(card) {
      if (!card) {
        return;
      }
      var author = card.comment.author || {};
      if (!authorTarget(card.comment)) {
        toast("This guest left no e-mail address, so there is nobody to ban; reject or mark the comment as spam instead.", "error");
        return;
      }
      ask({
        title: "Ban " + (author.name || "this author"),
        text: "They will no longer be able to comment on " + siteName(card.comment.site) + ". The message is e-mailed to them.",
        messageLabel: "Message to the author",
        ok: "Ban",
      }).then(function (answer) {
        if (!answer) {
          return;
        }
        authorAction(card.comment, "ban", { message: answer.message }).then(function (summary) {
          if (summary) {
            toast((author.name || "The author") + " is banned.", "success");
            if (drawer && !drawer.hidden && state.drawerFor === card) {
              openDrawer(card);
            }
          }
        });
      });
    }

    function closeDrawer() {
      if (drawer.hidden) {
        return;
      }
      drawer.hidden = true;
      var card = state.drawerFor;
      state.drawerFor = null;
      if (card && indexOfCard(card) !== -1) {
        focusCard(indexOfCard(card), true);
      }
    }

    function openDrawer(card) {
      if (!card) {
        return;
      }
      var comment = card.comment;
      var path = authorPath(comment);
      state.drawerFor = card;
      drawerTitle.textContent = (comment.author || {}).name || "Author";
      clear(drawerBody);
      drawer.hidden = false;
      drawer.focus();
      if (!path) {
        drawerBody.appendChild(el("p", { text: "This guest left no e-mail address: there is no history to show." }));
        return;
      }
      drawerBody.appendChild(el("p", { className: "desk-muted", text: "Loading…" }));
      api("GET", path).then(function (res) {
        if (state.drawerFor !== card) {
          return;
        }
        clear(drawerBody);
        if (!res.ok) {
          drawerBody.appendChild(el("p", { text: res.data.error || "The author could not be loaded." }));
          return;
        }
        renderDrawer(card, res.data);
      });
    }

    function renderDrawer(card, data) {
      var comment = card.comment;
      var summary = data.author || {};
      var flags = summary.state || {};
      var registered = authorTarget(comment) !== null; // a user, or a guest known by address

      drawerBody.appendChild(el("div", { className: "desk-card__facts desk-drawer__facts" }, authorFacts(summary)));
      if (flags.ban_message) {
        drawerBody.appendChild(el("p", { className: "desk-muted", text: "Ban message: " + flags.ban_message }));
      }

      if (registered) {
        var toggles = [
          ["banned", "ban", "unban", "Ban", "Lift the ban"],
          ["premoderate", "premoderate", "unpremoderate", "Always pre-moderate", "Stop pre-moderating"],
          ["trusted", "trust", "untrust", "Trust (skip first-comment holds)", "Stop trusting"],
          ["shadow_banned", "shadow_ban", "unshadow_ban", "Shadow ban", "Lift the shadow ban"],
        ];
        var buttons = toggles.map(function (t) {
          var on = !!flags[t[0]];
          return el("button", {
            type: "button",
            className: "desk-action",
            "aria-pressed": on ? "true" : "false",
            text: on ? t[4] : t[3],
            onclick: function () {
              if (t[1] === "ban" && !on) {
                banAuthor(card);
                return;
              }
              authorAction(comment, on ? t[2] : t[1]).then(function (next) {
                if (next) {
                  toast("Done: " + (on ? t[4] : t[3]).toLowerCase() + ".", "success");
                  openDrawer(card);
                }
              });
            },
          });
        });
        var suspended = !!flags.suspended_until && (parseTime(flags.suspended_until) || 0) > new Date();
        buttons.push(
          el("button", {
            type: "button",
            className: "desk-action",
            text: suspended ? "Lift the suspension" : "Suspend…",
            onclick: function () {
              if (suspended) {
                authorAction(comment, "unsuspend").then(function (next) {
                  if (next) {
                    openDrawer(card);
                  }
                });
                return;
              }
              ask({
                title: "Suspend " + ((comment.author || {}).name || "this author"),
                text: "They cannot comment until the suspension ends.",
                messageLabel: "Message to the author",
                hours: true,
                ok: "Suspend",
              }).then(function (answer) {
                if (!answer) {
                  return;
                }
                var hours = answer.hours;
                if (!(hours >= 1 && hours <= 8760)) {
                  toast("A suspension lasts from 1 to 8760 hours.", "error");
                  return;
                }
                authorAction(comment, "suspend", { hours: hours, message: answer.message }).then(function (next) {
                  if (next) {
                    toast("Suspended for " + plural(hours, "hour") + ".", "success");
                    openDrawer(card);
                  }
                });
              });
            },
          })
        );
        drawerBody.appendChild(el("div", { className: "desk-drawer__actions" }, buttons));
      }

      // Notes
      var notes = el("ol", { className: "desk-notes" }, (data.notes || []).map(function (note) {
        return el("li", {}, [
          el("p", { text: note.body || "" }),
          el("p", { className: "desk-muted" }, [(note.moderator && note.moderator.name) || note.moderator || "", " · ", timeEl(note.created_at)]),
        ]);
      }));
      drawerBody.appendChild(el("h3", { text: "Notes" }));
      if (!(data.notes || []).length) {
        drawerBody.appendChild(el("p", { className: "desk-muted", text: "No notes yet." }));
      }
      drawerBody.appendChild(notes);
      if (registered) {
        var textarea = el("textarea", { id: "desk-note-body", rows: "2", maxlength: "2000", required: true });
        var form = el("form", { className: "desk-note-form" }, [
          el("label", { for: "desk-note-body", className: "desk-field__label", text: "Add a note for other moderators" }),
          textarea,
          el("button", { type: "submit", text: "Add note" }),
        ]);
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          var text = textarea.value.trim();
          if (!text) {
            return;
          }
          api("POST", authorPath(comment, "notes"), { body: text }).then(function (res) {
            if (!res.ok) {
              toast(res.data.error || "The note was not saved.", "error");
              return;
            }
            toast("Note added.", "success");
            if (comment.author_summary) {
              comment.author_summary.notes_count = (comment.author_summary.notes_count || 0) + 1;
              renderCard(card);
            }
            openDrawer(card);
          });
        });
        drawerBody.appendChild(form);
      }

      // Recent comments
      drawerBody.appendChild(el("h3", { text: "Recent comments" }));
      var recent = el("ol", { className: "desk-recent" }, (data.comments || []).map(function (item) {
        return el("li", {}, [
          el("span", { className: "desk-badge desk-badge--" + String(item.status || ""), text: item.status || "" }),
          " ",
          timeEl(item.created_at),
          el("p", { text: String(item.body || "").slice(0, 300) }),
        ]);
      }));
      drawerBody.appendChild(recent);

      if ((data.events || []).length) {
        drawerBody.appendChild(el("h3", { text: "History" }));
        drawerBody.appendChild(el("ol", { className: "desk-recent" }, data.events.map(function (event) {
          return el("li", {}, [
            el("strong", { text: event.action || "" }),
            " by " + ((event.actor && event.actor.name) || event.actor || "system") + " ",
            timeEl(event.created_at),
            event.message ? el("p", { text: event.message }) : null,
          ]);
        })));
      }
    }

    // --- wiring ---

    Array.prototype.forEach.call(document.querySelectorAll("[data-queue-tab]"), function (tab) {
      tab.addEventListener("click", function () {
        state.queue = tab.getAttribute("data-queue-tab");
        reload();
      });
    });
    filtersForm.addEventListener("submit", function (event) {
      event.preventDefault();
      reload();
      refreshCounts();
    });
    filtersForm.addEventListener("reset", function () {
      window.setTimeout(function () {
        reload();
        refreshCounts();
      }, 0);
    });
    moreButton.addEventListener("click", function () {
      loadPage(false);
    });
    bulkBar.addEventListener("click", function (event) {
      var button = event.target.closest("[data-bulk]");
      if (!button) {
        return;
      }
      var action = button.getAttribute("data-bulk");
      if (action === "clear") {
        selectedCards().forEach(function (card) {
          setSelected(card, false);
        });
        state.selected = {};
        updateBulk();
      } else {
        decideSelection(action);
      }
    });
    list.addEventListener("focusin", function (event) {
      var node = event.target.closest(".desk-card");
      if (!node) {
        return;
      }
      for (var i = 0; i < state.cards.length; i += 1) {
        if (state.cards[i].node === node && i !== state.focus) {
          state.cards.forEach(function (card, j) {
            card.node.classList.toggle("is-focused", j === i);
          });
          state.focus = i;
          ensureSummary(state.cards[i]);
        }
      }
    });
    drawer.addEventListener("click", function (event) {
      if (event.target.closest("[data-close-drawer]")) {
        closeDrawer();
      }
    });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      if (event.key === "Escape") {
        if (anyDialogOpen()) {
          return; // the dialog closes itself
        }
        if (!drawer.hidden) {
          event.preventDefault();
          closeDrawer();
        } else if (Object.keys(state.selected).length) {
          event.preventDefault();
          bulkBar.querySelector('[data-bulk="clear"]').click();
        }
        return;
      }
      if (anyDialogOpen() || isTyping(event.target)) {
        return;
      }
      var handled = true;
      switch (event.key) {
        case "j":
          focusCard(state.focus + 1, true);
          break;
        case "k":
          focusCard(state.focus - 1, true);
          break;
        case "a":
          decide("approve");
          break;
        case "r":
          decide("reject");
          break;
        case "R":
          rejectWithReason(focused());
          break;
        case "s":
          decide("spam");
          break;
        case "x":
          if (focused()) {
            setSelected(focused(), !state.selected[focused().comment.id]);
          }
          break;
        case "b":
          banAuthor(focused());
          break;
        case "o":
          openDrawer(focused());
          break;
        case "u":
          runUndo(null);
          break;
        case "?":
          if (helpDialog && typeof helpDialog.showModal === "function") {
            helpDialog.showModal();
          }
          break;
        default:
          handled = false;
      }
      if (handled) {
        event.preventDefault();
      }
    });

    loadFiltersFromUrl();
    reload();
    window.setInterval(function () {
      if (!document.hidden) {
        refreshCounts();
      }
    }, COUNTS_EVERY_MS);
  }

  // ============================================================================================
  // The audit log
  // ============================================================================================

  function startAudit() {
    var form = document.getElementById("desk-audit-filters");
    var tbody = document.querySelector("#desk-audit-table tbody");
    var moreButton = document.getElementById("desk-more");
    var statusLine = document.getElementById("desk-status");
    var csvLink = document.getElementById("desk-audit-csv");
    var chart = document.getElementById("desk-activity-chart");
    var median = document.getElementById("desk-activity-median");
    var perModerator = document.querySelector("#desk-activity-table tbody");
    var state = { cursor: null, generation: 0 };

    function filters() {
      var values = {};
      Array.prototype.forEach.call(form.querySelectorAll("[data-filter]"), function (input) {
        var value = (input.value || "").trim();
        if (value) {
          values[input.getAttribute("data-filter")] = value;
        }
      });
      if (!values.site) {
        // "All my sites": the audit API wants the keys spelled out (only admins may omit them).
        values.site = Array.prototype.map
          .call(form.querySelectorAll('select[data-filter="site"] option'), function (option) {
            return option.value;
          })
          .filter(Boolean);
      }
      return values;
    }

    function actorName(actor) {
      if (!actor || actor.type === "system") {
        return (actor && actor.name) || "system";
      }
      return typeof actor === "object" ? actor.name || "user " + actor.id : String(actor);
    }

    function reasonsText(entry) {
      var reasons = entry.reasons || [];
      var parts = reasons.map(function (reason) {
        return typeof reason === "object" ? reason.message || reason.code || "" : String(reason);
      });
      if (entry.reason) {
        parts.push(entry.reason);
      }
      return parts.join("; ");
    }

    function subject(entry) {
      if (entry.comment_id !== null && entry.comment_id !== undefined) {
        return "comment " + entry.comment_id;
      }
      var author = entry.author || {};
      var who = author.name || author.guest_email || (author.id ? "user " + author.id : "");
      var until = entry.until ? " until " + String(entry.until).replace("T", " ").slice(0, 16) : "";
      return who ? "author " + who + until : "";
    }

    function row(entry) {
      var moment = parseTime(entry.created_at || entry.at);
      return el("tr", {}, [
        el("td", {}, moment ? el("time", { datetime: moment.toISOString(), text: moment.toISOString().replace("T", " ").slice(0, 19) }) : ""),
        el("td", { title: entry.site || "", text: siteName(entry.site) }),
        el("td", { text: subject(entry) }),
        el("td", { text: actorName(entry.actor) }),
        el("td", { text: entry.action || "" }),
        el("td", { text: entry.from_status || "" }),
        el("td", { text: entry.to_status || "" }),
        el("td", { text: reasonsText(entry) }),
      ]);
    }

    function load(first) {
      if (first) {
        state.generation += 1;
        state.cursor = null;
        clear(tbody);
      }
      var generation = state.generation;
      var params = Object.assign(filters(), { cursor: first ? null : state.cursor });
      csvLink.setAttribute("href", API + "/audit.csv" + query(filters()));
      window.history.replaceState(null, "", window.location.pathname + query(filters()));
      statusLine.textContent = "Loading…";
      return api("GET", "/audit" + query(params)).then(function (res) {
        if (generation !== state.generation) {
          return;
        }
        if (!res.ok) {
          statusLine.textContent = res.data.error || "The audit log could not be loaded.";
          return;
        }
        var entries = res.data.entries || [];
        entries.forEach(function (entry) {
          tbody.appendChild(row(entry));
        });
        statusLine.textContent = tbody.children.length ? "" : "No decisions match these filters.";
        state.cursor = res.data.next_cursor || null;
        moreButton.hidden = !state.cursor;
      });
    }

    var SVG = "http://www.w3.org/2000/svg";
    function svg(tag, attrs, text) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs || {}).forEach(function (name) {
        node.setAttribute(name, String(attrs[name]));
      });
      if (text !== undefined) {
        node.textContent = text;
      }
      return node;
    }

    function hourly(data) {
      return (data.per_hour || []).map(function (item) {
        return { hour: item.hour || "", count: Number(item.count || 0) };
      });
    }

    function drawChart(rows) {
      Array.prototype.slice.call(chart.querySelectorAll("svg, p")).forEach(function (node) {
        node.remove();
      });
      if (!rows.length) {
        chart.appendChild(el("p", { className: "desk-muted", text: "No decisions in this period." }));
        return;
      }
      var width = 720;
      var height = 160;
      var pad = 24;
      var max = Math.max.apply(null, rows.map(function (r) { return r.count; }).concat([1]));
      var step = (width - pad * 2) / rows.length;
      var total = rows.reduce(function (sum, r) { return sum + r.count; }, 0);
      var image = svg("svg", {
        viewBox: "0 0 " + width + " " + height,
        role: "img",
        "aria-label": total + " decisions over " + rows.length + " hours; the busiest hour had " + max,
        class: "desk-chart__svg",
      });
      image.appendChild(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "desk-chart__axis" }));
      image.appendChild(svg("text", { x: 2, y: pad, class: "desk-chart__label" }, String(max)));
      rows.forEach(function (r, i) {
        var h = ((height - pad * 2) * r.count) / max;
        var bar = svg("rect", {
          x: (pad + i * step).toFixed(1),
          y: (height - pad - h).toFixed(1),
          width: Math.max(1, step - 1).toFixed(1),
          height: h.toFixed(1),
          class: "desk-chart__bar",
        });
        bar.appendChild(svg("title", {}, String(r.hour).replace("T", " ").slice(0, 16) + ": " + plural(r.count, "decision")));
        image.appendChild(bar);
      });
      var first = rows[0].hour;
      var last = rows[rows.length - 1].hour;
      image.appendChild(svg("text", { x: pad, y: height - 6, class: "desk-chart__label" }, String(first).replace("T", " ").slice(0, 13)));
      image.appendChild(svg("text", { x: width - pad, y: height - 6, "text-anchor": "end", class: "desk-chart__label" }, String(last).replace("T", " ").slice(0, 13)));
      chart.appendChild(image);
    }

    function loadActivity() {
      var site = filters().site;
      return api("GET", "/activity" + query({ site: site, days: 7 })).then(function (res) {
        clear(perModerator);
        if (!res.ok) {
          median.textContent = res.data.error || "Activity could not be loaded.";
          drawChart([]);
          return;
        }
        var data = res.data;
        var minutes = data.median_minutes;
        median.textContent =
          minutes === null || minutes === undefined
            ? "No comment got its first human decision in this period."
            : "Median time from post to first decision: " + Number(minutes).toFixed(1) + " minutes" +
              (data.p90_minutes !== null && data.p90_minutes !== undefined ? " (90% within " + Number(data.p90_minutes).toFixed(1) + ")" : "") +
              ", over " + plural(data.decided_comments || 0, "comment") + ".";
        drawChart(hourly(data));
        (data.moderators || []).forEach(function (item) {
          perModerator.appendChild(
            el("tr", {}, [
              el("th", { scope: "row", text: item.name || (item.id ? "user " + item.id : "unknown") }),
              el("td", { text: String(item.decisions || 0) }),
              el("td", { text: String(item.approve || 0) }),
              el("td", { text: String(item.reject || 0) }),
              el("td", { text: String(item.spam || 0) }),
              el("td", { text: String(item.author_actions || 0) }),
            ])
          );
        });
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      load(true);
      loadActivity();
    });
    form.addEventListener("reset", function () {
      window.setTimeout(function () {
        load(true);
        loadActivity();
      }, 0);
    });
    moreButton.addEventListener("click", function () {
      load(false);
    });

    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(form.querySelectorAll("[data-filter]"), function (input) {
      var name = input.getAttribute("data-filter");
      if (params.has(name) && name !== "site") {
        input.value = params.get(name);
      }
    });
    load(true);
    loadActivity();
  }
})();
