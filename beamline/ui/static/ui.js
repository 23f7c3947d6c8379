// Beamline UI: live updates without reloading. An element with data-poll="URL" is refreshed
// from that JSON endpoint every data-interval ms: the server renders the HTML (one
// implementation, shared with the static report), the script swaps the fragments whose
// version changed. Polling pauses while the tab is hidden and stops when data.live is false.
(function () {
  "use strict";

  function setStatus(text) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; }
  }

  function apply(data) {
    var fragments = data.fragments || {};
    Object.keys(fragments).forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.getAttribute("data-version") !== fragments[id].version) {
        el.innerHTML = fragments[id].html;
        el.setAttribute("data-version", fragments[id].version);
      }
    });
  }

  function poll(el) {
    var target = el.getAttribute("data-poll");
    var interval = parseInt(el.getAttribute("data-interval") || "2000", 10);
    function tick() {
      if (document.hidden) { window.setTimeout(tick, interval); return; }
      fetch(target, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          apply(data);
          setStatus("updated " + new Date().toLocaleTimeString());
          if (data.live === false) { setStatus("finished"); return; }
          window.setTimeout(tick, interval);
        })
        .catch(function (error) {
          setStatus("not updating: " + error.message);
          window.setTimeout(tick, interval * 2);
        });
    }
    window.setTimeout(tick, interval);
  }

  function wireCompare() {
    // Two checked runs on the runs page open the comparison.
    var button = document.getElementById("compare-selected");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var picked = Array.prototype.slice.call(
        document.querySelectorAll("input.pick:checked")).map(function (box) { return box.value; });
      if (picked.length !== 2) { setStatus("pick two runs to compare"); return; }
      window.location.href = "/compare?a=" + encodeURIComponent(picked[1]) +
        "&b=" + encodeURIComponent(picked[0]);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll]"), poll);
    wireCompare();
  });
})();
