/* Small helpers for the pages. Every page works without this file; it only makes things smoother. */
(function () {
  "use strict";

  // After htmx swaps a card, move keyboard and screen-reader focus to its message (or the card itself).
  document.addEventListener("htmx:afterSwap", function (event) {
    // As-you-type search: whoever is typing keeps the focus while the results change below.
    var trigger = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    if (trigger && trigger === document.activeElement && trigger.matches("input[type=search]")) {
      return;
    }
    var target = event.detail && event.detail.elt;
    if (!target || !target.isConnected) {
      var id = event.detail && event.detail.target && event.detail.target.id;
      target = id ? document.getElementById(id) : null;
    }
    if (!target) {
      return;
    }
    // A region that refreshes itself (a progress bar polled by htmx) must not pull focus away every second.
    if (target.hasAttribute("data-poll")) {
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

  // A wide table scrolls sideways inside its .table-wrap on a phone: such a box can be reached and scrolled with
  // the keyboard (tabindex), and a screen reader names it after the table's caption or the heading above it.
  function focusableScrollers(root) {
    (root || document).querySelectorAll(".table-wrap").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight;
      if (!scrolls) {
        if (box.hasAttribute("data-scroller")) {
          ["tabindex", "data-scroller", "role", "aria-label"].forEach(function (attribute) {
            box.removeAttribute(attribute);
          });
        }
        return;
      }
      if (box.hasAttribute("tabindex")) {
        return;
      }
      box.setAttribute("tabindex", "0");
      box.setAttribute("data-scroller", "");
      var caption = box.querySelector("caption");
      var heading = box.previousElementSibling;
      while (heading && !/^H[1-6]$/.test(heading.tagName)) {
        heading = heading.previousElementSibling;
      }
      var name = (caption || heading || { textContent: "" }).textContent.trim();
      if (name) {
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", name);
      }
    });
  }
  focusableScrollers(document);
  document.addEventListener("htmx:afterSettle", function (event) {
    focusableScrollers(event.detail && event.detail.elt && event.detail.elt.parentNode);
  });
  window.addEventListener("resize", function () {
    focusableScrollers(document);
  });
})();
