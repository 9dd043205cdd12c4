/* The customer's signature on the counter's screen (templates/reception/_signature.html):
   drawn with a finger, a pen or the mouse on a canvas, sent as a PNG data URL in the form's
   hidden "signature" field. Shown only where this script runs; empty, nothing is sent and the
   printed slip is signed on paper. The shop's setting asking for it, the form also offers "signed
   the paper slip instead" with a reason (plain fields, for a keyboard or a browser without this
   script): one or the other is sent, so ticking it clears the drawing, and drawing unticks it. */
(function () {
  "use strict";

  document.querySelectorAll("[data-signature-pad]").forEach(function (pad) {
    var canvas = pad.querySelector("canvas");
    var input = pad.querySelector('input[name="signature"]');
    var state = pad.querySelector("[data-signature-state]");
    var ctx = canvas.getContext("2d");
    var drawing = false, drawn = false, last = null;

    pad.hidden = false;
    var ratio = Math.min(window.devicePixelRatio || 1, 2);
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#111";

    function say() {
      state.textContent = pad.getAttribute(drawn ? "data-signed" : "data-empty");
      pad.toggleAttribute("data-signed-now", drawn);
    }

    function at(event) {
      var box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    }

    function keep() {
      input.value = drawn ? canvas.toDataURL("image/png") : "";
      say();
    }

    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drawing = true;
      last = at(event);
      if (canvas.setPointerCapture) canvas.setPointerCapture(event.pointerId);
      ctx.beginPath();  // a dot, for a tap
      ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var here = at(event);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(here.x, here.y);
      ctx.stroke();
      last = here;
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () {
        if (!drawing) return;
        drawing = false;
        keep();
      });
    });
    function clear() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      drawn = false;
      keep();
    }
    pad.querySelector("[data-signature-clear]").addEventListener("click", clear);

    var form = pad.closest("form");
    var paper = form && form.querySelector("[data-signature-paper-box]");
    if (paper) {
      paper.addEventListener("change", function () {
        if (paper.checked && drawn) clear();
      });
      canvas.addEventListener("pointerdown", function () { paper.checked = false; });
    }

    // The form came back with another field to mend: the signature drawn is kept.
    if (input.value.indexOf("data:image/png;base64,") === 0) {
      var picture = new Image();
      picture.onload = function () {
        ctx.drawImage(picture, 0, 0, canvas.clientWidth, canvas.clientHeight);
        drawn = true;
        say();
      };
      picture.src = input.value;
    }
    say();
  });
})();
