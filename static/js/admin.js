/* Admin pages: clicking a variable next to an SMS template inserts it at the cursor; the
 * textarea's input event then refreshes the live preview (htmx). No inline script (CSP). */
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("[data-insert]");
    if (!button) return;
    var area = document.getElementById(button.getAttribute("data-target"));
    if (!area) return;
    var text = button.getAttribute("data-insert");
    var start = area.selectionStart || 0, end = area.selectionEnd || 0;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.focus();
    area.selectionStart = area.selectionEnd = start + text.length;
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();
