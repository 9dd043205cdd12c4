/* Every page's forms: a form sent back with errors puts the cursor in the first field the
 * server refused (the page's autofocus field may be another), so a keyboard user mends it
 * without looking for it. The error is tied to its field in the markup (aria-describedby). */
(function () {
  "use strict";
  var FIELDS = "input:not([type=hidden]), select, textarea, button, a[href], [tabindex]";
  /* The field a refused element stands for: itself, or the first field inside a group marked
     as a whole (the delivery desk's payment buttons), which focus() could not reach. */
  function field(el) {
    return el.matches(FIELDS) ? el : el.querySelector(FIELDS);
  }
  function focusFirstError() {
    // not a date (the cursor there opens its calendar over the page): the next refused field;
    // nor on the kiosk (a touch screen's keyboard would cover the services)
    var bad = Array.prototype.map.call(
      document.querySelectorAll("main [aria-invalid=true], main .is-invalid"), field).find(
      function (el) { return el && !el.disabled && !el.matches("[data-date], input[name$='date']"); });
    if (!bad || bad.closest(".kiosk")) return;
    if (document.activeElement && document.activeElement.matches &&
        document.activeElement.matches("[aria-invalid=true], .is-invalid")) return;
    bad.focus();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirstError);
  } else {
    focusFirstError();
  }
})();

/* A form marked data-submit-once is sent once: a second click or Enter while the first is on
 * its way does nothing (the server also knows the form's key; this spares the second round
 * trip). Buttons stay enabled so the one clicked still sends its name and value; a page
 * brought back by the Back button can be sent again. */
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form[data-submit-once]")) return;
    if (form.getAttribute("data-sent")) { e.preventDefault(); return; }
    form.setAttribute("data-sent", "1");
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sent]").forEach(function (f) {
      f.removeAttribute("data-sent");
    });
  });
})();
