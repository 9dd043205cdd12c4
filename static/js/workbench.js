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

  /* The estimate's alternatives (tickets/_alternatives_editor.html): "Add an alternative"
   * copies the blank slot (its "__N__" the new place, "__NUM__" that number in the page's
   * digits), up to the most an estimate offers (data-max); an empty slot can be removed while
   * two stay, and the ones after it are numbered again (their fields' names and ids, their
   * labels), so "Alternative 3" is the third one the customer will see. */
  function initAlternatives(box) {
    var slots = box.querySelector("[data-alternative-slots]");
    var template = box.querySelector("[data-alternative-template]");
    var add = box.querySelector("[data-add-alternative]");
    if (!slots || !template || !add) return;
    var max = parseInt(slots.getAttribute("data-max"), 10) || 4;
    var editor = box.querySelector("[data-lines-editor]");
    var digits = new Intl.NumberFormat(
      editor && editor.getAttribute("data-lang") === "fa" ? "fa-IR" : "en-US");

    function all() {
      return Array.prototype.filter.call(slots.children, function (el) {
        return el.hasAttribute("data-alternative");
      });
    }
    function empty(slot) {
      return Array.prototype.every.call(slot.querySelectorAll("input"), function (i) {
        return i.value.trim() === "";
      });
    }
    function renumber(slot, n) {
      var old = slot.getAttribute("data-alternative");
      if (old === String(n)) return;
      var from = new RegExp("\\balt" + old + "([_-])", "g");
      function fix(text) { return text.replace(from, "alt" + n + "$1"); }
      slot.querySelectorAll("[name], [id], [for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          if (el.hasAttribute(attr)) el.setAttribute(attr, fix(el.getAttribute(attr)));
        });
      });
      // the lines editor's blank row, copied when a line is added
      slot.querySelectorAll("template").forEach(function (t) { t.innerHTML = fix(t.innerHTML); });
      slot.querySelectorAll("[data-numbered]").forEach(function (el) {
        el.textContent = el.getAttribute("data-numbered").replace("[[n]]", digits.format(n));
      });
      slot.setAttribute("data-alternative", String(n));
    }
    function refresh() {
      var list = all();
      list.forEach(function (slot, i) { renumber(slot, i + 1); });
      add.hidden = list.length >= max;
      list.forEach(function (slot) {
        slot.querySelector("[data-remove-alternative]").hidden = list.length <= 2 || !empty(slot);
      });
    }
    add.addEventListener("click", function () {
      var n = all().length + 1;
      if (n > max) return;
      var holder = document.createElement("template");
      holder.innerHTML = template.innerHTML.replace(/__N__/g, String(n))
        .replace(/__NUM__/g, digits.format(n));
      var slot = holder.content.firstElementChild;
      slots.appendChild(slot);
      slot.querySelectorAll("[data-lines-editor]").forEach(initEditor);
      refresh();
      slot.querySelector("input[name$=_name]").focus();
    });
    slots.addEventListener("click", function (ev) {
      var button = ev.target.closest("[data-remove-alternative]");
      if (button) {
        var slot = button.closest("[data-alternative]");
        if (!empty(slot) || all().length <= 2) return;
        slot.remove();
        refresh();
        add.focus();
        return;
      }
      refresh();  // a line removed (emptied) in a slot: it may be removable now
    });
    slots.addEventListener("input", refresh);
    refresh();
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
    // (the blank alternative's editor, inside a <template>, is not found: set up when added)
    document.querySelectorAll("[data-lines-editor]").forEach(initEditor);
    document.querySelectorAll("[data-alternatives]").forEach(initAlternatives);
    initForms();
    keepWorklistState();
  });
})();
