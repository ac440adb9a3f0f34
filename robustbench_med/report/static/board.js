/* medrobust leaderboard: sortable columns and row filters, plain JavaScript, no dependencies. */
(function () {
  "use strict";
  var table = document.querySelector("table.board");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);

  function key(row, index) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-v") : "";
    if (raw === null || raw === "") { return null; }
    var num = Number(raw);
    return isNaN(num) ? raw.toLowerCase() : num;
  }

  heads.forEach(function (th, index) {
    th.addEventListener("click", function () {
      var desc = th.classList.contains("sorted-asc");
      heads.forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(desc ? "sorted-desc" : "sorted-asc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, index), y = key(b, index);
        if (x === null && y === null) { return 0; }
        if (x === null) { return 1; }   /* empty cells last, either way */
        if (y === null) { return -1; }
        var order = x < y ? -1 : x > y ? 1 : 0;
        return desc ? -order : order;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });

  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var shown = document.getElementById("shown");
  function filter() {
    var visible = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var keep = selects.every(function (s) {
        return s.value === "" || row.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
      });
      row.hidden = !keep;
      if (keep) { visible += 1; }
    });
    if (shown) { shown.textContent = visible + " of " + body.rows.length + " rows shown"; }
  }
  selects.forEach(function (s) { s.addEventListener("change", filter); });
  filter();
})();
