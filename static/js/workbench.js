/* The technician's pages: the estimate editor (add and remove lines, a live total in the
 * page's language and money unit) and a guard against double submits. No inline scripts
 * anywhere (the CSP is default-src 'self'); pages opt in with data- attributes. */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  var ascii = window.Servicedesk.asciiDigits, toRials = window.Servicedesk.toRials;

  /* "۱۲٬۰۰۰" or "12,000" -> 12000; NaN when it is not a whole number. */
  function toInt(text) {
    var s = ascii(text);
    return /^\d+$/.test(s) ? parseInt(s, 10) : NaN;
  }

  /* Rials in the editor's unit: toman keeps odd rials as one decimal (the server's
   * servicedesk.i18n.format_money), so a total never switches unit. */
  function money(editor, rials) {
    var lang = editor.getAttribute("data-lang") === "fa" ? "fa-IR" : "en-US";
    var toman = editor.getAttribute("data-money-unit") === "toman";
    var amount = toman ? rials / 10 : rials;
    return new Intl.NumberFormat(lang, { maximumFractionDigits: toman ? 1 : 0 }).format(amount) +
      " " + editor.getAttribute("data-unit-word");
  }

  function recount(editor) {
    var total = 0, any = false;
    editor.querySelectorAll("[data-line]").forEach(function (row) {
      var qtyText = row.querySelector(".line-qty").value.trim();
      var qty = qtyText === "" ? 1 : toInt(qtyText);
      var price = toRials(editor, row.querySelector(".line-price").value);
      var cell = row.querySelector("[data-line-total]");
      if (!isNaN(qty) && !isNaN(price)) {
        cell.textContent = money(editor, qty * price);
        total += qty * price;
        any = true;
      } else {
        cell.textContent = "";
      }
    });
    editor.querySelector("[data-lines-total]").textContent = any ? money(editor, total) : "";
    editor.setAttribute("data-total", any ? String(total) : "");
  }

  function initEditor(editor) {
    var body = editor.querySelector("[data-lines]");
    var template = editor.querySelector("[data-line-template]");
    var add = editor.querySelector("[data-add-line]");
    add.hidden = false;
    add.addEventListener("click", function () {
      body.appendChild(template.content.firstElementChild.cloneNode(true));
      var rows = body.querySelectorAll("[data-line]");
      rows[rows.length - 1].querySelector("input[name$=line_description]").focus();
      recount(editor);
    });
    editor.addEventListener("click", function (ev) {
      var button = ev.target.closest("[data-remove-line]");
      if (!button) return;
      var row = button.closest("[data-line]");
      var note = row.nextElementSibling;  // the row's error, when the form came back with one
      if (note && note.classList.contains("line-error")) note.remove();
      if (body.querySelectorAll("[data-line]").length > 1) row.remove();
      else row.querySelectorAll("input").forEach(function (i) { i.value = ""; });
      recount(editor);
    });
    editor.addEventListener("input", function () { recount(editor); });
    // Enter in a line goes on to the next line (a new one after the last), as in a sheet: it
    // does not send the estimate or the bill, and its SMS, with the lines typed so far (a
    // tablet's keyboard has its Enter where the next line is asked for).
    editor.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter" || ev.isComposing || ev.target.tagName !== "INPUT") return;
      var row = ev.target.closest("[data-line]");
      if (!row) return;
      ev.preventDefault();
      var rows = Array.prototype.slice.call(body.querySelectorAll("[data-line]"));
      var next = rows[rows.indexOf(row) + 1];
      if (next) next.querySelector("input[name$=line_description]").focus();
      else add.click();
    });
    recount(editor);
  }

  function initForms() {
    // A slow network and a second tap must not send the event twice (the server refuses the
    // second one anyway: the form carries the ticket's version). Listened for on the document,
    // so the worklist's Claim forms keep the guard after its refresh replaced them.
    document.addEventListener("submit", function (ev) {
      var f = ev.target;
      if (!f.matches("form[data-event-form], form[data-claim-form]")) return;
      f.querySelectorAll("button:not([type=button])").forEach(function (b) { b.disabled = true; });
    });
    document.querySelectorAll("[data-event-link]").forEach(function (link) {
      link.addEventListener("click", function () {
        var form = document.getElementById("event-" + link.getAttribute("data-event-link"));
        var field = form && form.querySelector("input:not([type=hidden]), textarea, select");
        if (field) window.setTimeout(function () { field.focus(); }, 0);
      });
    });
  }

  /* The worklist replaces itself every few seconds (htmx): a problem the technician opened to
   * read stays open, a table scrolled sideways keeps its place and the keyboard's focus stays
   * on its row, instead of snapping back under the reader. Keyed by section and ticket (a
   * ticket can be in two sections). */
  var FOCUSABLE = ["summary", "[data-claim]", "a"];
  function keepWorklistState() {
    var list = document.getElementById("worklist");
    if (!list) return;
    var open = [], scrolled = [], focused = null;
    function key(el) {
      var section = el.closest(".worklist-section"), row = el.closest("[data-ticket]");
      return (section ? section.id : "") + "/" + (row ? row.getAttribute("data-ticket") : "");
    }
    list.addEventListener("htmx:beforeSwap", function (ev) {
      if (ev.detail.target !== list) return;
      open = [];
      scrolled = [];
      list.querySelectorAll("details[open]").forEach(function (d) { open.push(key(d)); });
      list.querySelectorAll(".worklist-section .table-responsive").forEach(function (box) {
        if (box.scrollLeft) scrolled.push([box.closest(".worklist-section").id, box.scrollLeft]);
      });
      var active = document.activeElement;
      focused = null;
      if (active && list.contains(active) && active.closest("[data-ticket]")) {
        FOCUSABLE.forEach(function (sel) {
          if (!focused && active.matches(sel)) focused = [key(active), sel];
        });
      }
    });
    list.addEventListener("htmx:afterSwap", function (ev) {
      if (ev.detail.target !== list) return;
      list.querySelectorAll("details").forEach(function (d) {
        if (open.indexOf(key(d)) >= 0) d.open = true;
      });
      scrolled.forEach(function (s) {
        var box = document.querySelector("#" + s[0] + " .table-responsive");
        if (box) box.scrollLeft = s[1];
      });
      if (focused) {
        var again = Array.prototype.filter.call(list.querySelectorAll(focused[1]), function (el) {
          return key(el) === focused[0];
        })[0];
        if (again) again.focus({ preventScroll: true });
      }
    });
  }

  ready(function () {
    document.querySelectorAll("[data-lines-editor]").forEach(initEditor);
    initForms();
    keepWorklistState();
  });
})();
