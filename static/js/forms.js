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

/* What the staff pages share: an amount as typed -> rials, as the server reads it
 * (servicedesk.i18n.money_from_input). window.Servicedesk, for reception.js and workbench.js. */
(function () {
  "use strict";
  var FA = "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9";
  var AR = "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669";

  /* "۱۲٬۰۰۰" -> "12000": ASCII digits, no separators, spaces or direction marks. */
  function asciiDigits(text) {
    var s = "";
    (text || "").split("").forEach(function (ch) {
      var i = FA.indexOf(ch), j = AR.indexOf(ch);
      if (i >= 0) s += String(i);
      else if (j >= 0) s += String(j);
      else if (ch === "\u066b") s += ".";
      else if (!/[\s,\u066c\u200e\u200f\u200c]/.test(ch)) s += ch;
    });
    return s;
  }

  /* An amount typed in the unit the shop shows money in (``el``'s data-money-unit) -> rials:
   * toman is rials / 10 and takes one decimal digit. NaN when it is not an amount. */
  function toRials(el, text) {
    var m = /^(\d+)(?:\.(\d)0?)?$/.exec(asciiDigits(text));
    if (!m) return NaN;
    if (el.getAttribute("data-money-unit") !== "toman") {
      return m[2] === undefined ? parseInt(m[1], 10) : NaN;
    }
    return parseInt(m[1], 10) * 10 + parseInt(m[2] || "0", 10);
  }

  window.Servicedesk = { asciiDigits: asciiDigits, toRials: toRials };
})();
