// The drawing page: strokes on a canvas, sent to /api/read; the answer played back row by row.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen");
const STEP_MS = 70;  // animation time per row read
let strokes = [];    // each stroke: a list of [x, y] in canvas pixels
let playing = null;  // the timer of the running animation
let reads = 0;       // how many reads were started: only the latest one's answer is shown
window.lastDrawing = null;  // what was last sent (tests read it)

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function redraw() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#fff";
  ink.lineWidth = 20;
  ink.lineCap = ink.lineJoin = "round";
  for (const stroke of strokes) {
    ink.beginPath();
    ink.moveTo(...stroke[0]);
    for (const p of stroke.length > 1 ? stroke.slice(1) : [stroke[0]]) ink.lineTo(...p);
    ink.stroke();
  }
}

pad.addEventListener("pointerdown", (event) => {
  pad.setPointerCapture(event.pointerId);
  strokes.push([point(event)]);
  redraw();
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  strokes[strokes.length - 1].push(point(event));
  redraw();
});
pad.addEventListener("pointerup", (event) => {
  pad.releasePointerCapture(event.pointerId);
  read();
});

document.getElementById("undo").addEventListener("click", () => { strokes.pop(); redraw(); read(); });
document.getElementById("clear").addEventListener("click", () => { strokes = []; redraw(); read(); });

async function read() {
  const mine = ++reads;  // an answer to an older drawing (a quick undo) must not replace a newer one
  if (strokes.length === 0) return show(null);
  const rgba = ink.getImageData(0, 0, pad.width, pad.height).data;
  const pixels = new Array(pad.width * pad.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[4 * i];
  window.lastDrawing = {width: pad.width, height: pad.height, pixels: pixels};
  document.body.dataset.state = "reading";
  try {
    const response = await fetch("/api/read", {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify(window.lastDrawing)});
    const result = await response.json();
    if (mine !== reads) return;
    if (!response.ok) throw new Error(result.error || response.statusText);
    show(result);
  } catch (error) {
    if (mine !== reads) return;
    document.body.dataset.state = "error";
    document.getElementById("answer").textContent = "The server did not answer: " + error.message;
  }
}

function show(result) {
  clearInterval(playing);
  const answer = document.getElementById("answer");
  const table = document.getElementById("steps");
  table.innerHTML = "";
  drawSeen(result ? result.image : null, -1);
  if (!result || result.blank) {
    answer.textContent = "Draw a digit.";
    answer.dataset.digit = "";
    document.getElementById("row").innerHTML = "&nbsp;";
    drawBars(new Array(10).fill(0));
    document.body.dataset.state = "empty";
    return;
  }
  const header = table.insertRow();
  header.insertCell().outerHTML = "<th>row</th>";
  for (let d = 0; d < 10; d++) header.insertCell().outerHTML = `<th>${d}</th>`;
  answer.textContent = "…";
  answer.dataset.digit = "";
  let t = 0;
  playing = setInterval(() => {
    const p = result.steps[t];
    const row = table.insertRow();
    row.className = "step";
    row.insertCell().outerHTML = `<th>${t + 1}</th>`;
    for (let d = 0; d < 10; d++) {
      const cell = row.insertCell();
      cell.className = "cell";
      cell.style.setProperty("--p", p[d].toFixed(3));
      cell.title = `after row ${t + 1}: ${d} with probability ${p[d].toFixed(3)}`;
    }
    for (const r of table.querySelectorAll("tr.current")) r.classList.remove("current");
    row.classList.add("current");
    drawSeen(result.image, t);
    drawBars(p);
    const best = p.indexOf(Math.max(...p));
    document.getElementById("row").textContent = `after row ${t + 1} of ${result.steps.length}: ${best}`;
    t += 1;
    if (t === result.steps.length) {
      clearInterval(playing);
      answer.textContent = `Answer: ${result.answer}`;
      answer.dataset.digit = String(result.answer);
      document.body.dataset.state = "done";
    }
  }, STEP_MS);
}

function drawSeen(image, row) {
  const view = seen.getContext("2d");
  const cell = seen.width / 28;
  view.fillStyle = "#000";
  view.fillRect(0, 0, seen.width, seen.height);
  if (!image) return;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = Math.round(255 * image[28 * y + x] * (row < 0 || y <= row ? 1 : 0.25));
      view.fillStyle = `rgb(${v},${v},${v})`;
      view.fillRect(x * cell, y * cell, cell, cell);
    }
  }
  if (row >= 0) {
    view.strokeStyle = "#e33";
    view.lineWidth = 2;
    view.strokeRect(1, row * cell, seen.width - 2, cell);
  }
}

function drawBars(p) {
  const bars = document.getElementById("bars");
  const best = p.indexOf(Math.max(...p));
  bars.innerHTML = p.map((value, d) =>
    `<span>${d}</span><div class="bar${d === best && value > 0 ? " top" : ""}">` +
    `<span style="width:${(100 * value).toFixed(1)}%"></span></div><span>${value.toFixed(3)}</span>`).join("");
}

redraw();
drawBars(new Array(10).fill(0));
drawSeen(null, -1);
