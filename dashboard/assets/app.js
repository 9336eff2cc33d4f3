// hopper dashboard: confirm dialogs for actions, and live counts by short
// polling of a JSON endpoint. No dependencies; the pages work without it
// (actions then submit without a confirmation).
(function () {
  "use strict";

  // Every action form carries data-confirm: ask before it is sent.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh"), 10);
  var url = body.getAttribute("data-poll");
  if (!url || !(every > 0)) {
    return;
  }
  var indicator = document.getElementById("live");
  var jobState = document.getElementById("job-state");
  var timer = null;

  function each(sel, fn) {
    Array.prototype.forEach.call(document.querySelectorAll(sel), fn);
  }

  function apply(data) {
    var live = data.live || {}, spark = data.spark || {}, flags = data.flags || {};
    each("[data-live]", function (el) {
      var k = el.getAttribute("data-live");
      if (Object.prototype.hasOwnProperty.call(live, k) && el.textContent !== live[k]) {
        el.textContent = live[k]; // text only: never parsed as HTML
      }
    });
    each("[data-spark]", function (el) {
      var k = el.getAttribute("data-spark");
      if (Object.prototype.hasOwnProperty.call(spark, k)) {
        el.setAttribute("points", spark[k]);
      }
    });
    each("[data-flag]", function (el) {
      var k = el.getAttribute("data-flag");
      if (Object.prototype.hasOwnProperty.call(flags, k)) {
        el.hidden = !flags[k];
      }
    });
    // A job page reloads when its job changes state: most of it changes.
    if (jobState && data.state && data.state !== jobState.getAttribute("data-job-state")) {
      window.location.reload();
    }
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      return; // resumed by visibilitychange
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) {
          throw new Error(res.status);
        }
        return res.json();
      })
      .then(function (data) {
        apply(data);
        if (indicator) {
          indicator.className = "live";
        }
      })
      .catch(function () {
        if (indicator) {
          indicator.className = "live stale";
        }
      })
      .then(schedule);
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(poll, every);
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
      poll();
    }
  });
  schedule();
})();
