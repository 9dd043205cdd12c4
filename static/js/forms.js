/* Every page's forms: a form sent back with errors puts the cursor in the first field the
 * server refused (the page's autofocus field may be another), so a keyboard user mends it
 * without looking for it. The error is tied to its field in the markup (aria-describedby). */
(function () {
  "use strict";
  function focusFirstError() {
    var bad = document.querySelector("main [aria-invalid=true], main .is-invalid");
    if (!bad || bad.disabled) return;
    // not a date (the cursor there opens its calendar over the page), nor on the kiosk
    // (it would bring up a touch screen's keyboard over the services)
    if (bad.matches("[data-date], input[name$='date']") || bad.closest(".kiosk")) return;
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
