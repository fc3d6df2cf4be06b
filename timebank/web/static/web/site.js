/* Small helpers for the pages. Every page works without this file; it only makes things smoother. */
(function () {
  "use strict";

  // After htmx swaps a card, move keyboard and screen-reader focus to its message (or the card itself).
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.elt;
    if (!target || !target.isConnected) {
      var id = event.detail && event.detail.target && event.detail.target.id;
      target = id ? document.getElementById(id) : null;
    }
    if (!target) {
      return;
    }
    var focusable = target.querySelector("[data-focus]") || target;
    if (!focusable.hasAttribute("tabindex")) {
      focusable.setAttribute("tabindex", "-1");
    }
    focusable.focus();
  });

  // A plain form that moves time is sent once: its buttons are disabled right after the first submit.
  // (The server refuses a second transfer anyway, through the form's idempotency key.)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) {
      return;
    }
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.disabled = true;
      });
    }, 0);
  });
})();
