/* The volunteer's check-in: with the volunteer's consent (the box they tick), the phone's location goes with
   the check-in, so the community can see the visit took place. Without this file, or without a location,
   checking in works as before. The server keeps it only to about 100 metres. */
(function () {
  "use strict";

  if (!("geolocation" in navigator)) {
    return;
  }

  function offer(root) {
    root.querySelectorAll("[data-geo]").forEach(function (box) {
      box.hidden = false;
    });
  }

  function fill(form, lat, lng) {
    form.querySelector("input[name=latitude]").value = lat;
    form.querySelector("input[name=longitude]").value = lng;
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-geo] input[name=share_location]")) {
      return;
    }
    var form = box.closest("form");
    var status = form.querySelector("[data-geo-status]");
    fill(form, "", "");
    if (!box.checked) {
      status.textContent = "";
      return;
    }
    status.textContent = status.dataset.wait || "";
    navigator.geolocation.getCurrentPosition(
      function (position) {
        if (!box.checked) {
          return;
        }
        fill(form, position.coords.latitude.toFixed(3), position.coords.longitude.toFixed(3));
        status.textContent = status.dataset.ok || "";
      },
      function () {
        box.checked = false;
        status.textContent = status.dataset.fail || "";
      },
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 }
    );
  });

  offer(document);
  // A card swapped in by htmx offers it too.
  document.addEventListener("htmx:afterSwap", function () {
    offer(document);
  });
})();
