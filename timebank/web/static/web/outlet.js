/* The outlet counter and the voucher page. Everything works without this file: codes can always be typed,
   and the browser's own print command prints the voucher. */
(function () {
  "use strict";

  // "Print the voucher" buttons appear only where a script can press print.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      window.print();
    });
  });

  // Scanning a voucher's QR code with the phone's camera: the browser's BarcodeDetector, where there is one.
  var button = document.querySelector("[data-scan]");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return;
  }
  var form = button.closest("form");
  var input = form && form.querySelector("input[name=code]");
  var video = form && form.querySelector("[data-scan-video]");
  var status = form && form.querySelector("[data-scan-status]");
  if (!input || !video || !status) {
    return;
  }
  var stream = null;
  var timer = null;

  function say(text) {
    status.textContent = text || "";
  }

  function stop() {
    if (timer) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    video.hidden = true;
    button.textContent = button.dataset.msgStart;
  }

  function found(value) {
    stop();
    input.value = value;
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  window.BarcodeDetector.getSupportedFormats()
    .then(function (formats) {
      if (formats.indexOf("qr_code") === -1) {
        return;
      }
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      button.hidden = false;

      function look() {
        detector
          .detect(video)
          .then(function (codes) {
            var hit = codes.find(function (c) {
              return /^(TBV:)?[0-9a-f]{4,40}$/i.test(c.rawValue || "");
            });
            if (hit) {
              found(hit.rawValue);
            } else if (stream) {
              timer = window.setTimeout(look, 250);
            }
          })
          .catch(function () {
            if (stream) {
              timer = window.setTimeout(look, 500);
            }
          });
      }

      button.addEventListener("click", function () {
        if (stream) {
          stop();
          say("");
          return;
        }
        navigator.mediaDevices
          .getUserMedia({ video: { facingMode: "environment" }, audio: false })
          .then(function (media) {
            stream = media;
            video.srcObject = media;
            video.hidden = false;
            button.textContent = button.dataset.msgStop;
            say(button.dataset.msgLooking);
            return video.play().then(look);
          })
          .catch(function () {
            stop();
            say(button.dataset.msgError);
            input.focus();
          });
      });
    })
    .catch(function () {
      /* No detector after all: typing the code still works. */
    });
})();
