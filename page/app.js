// The drawing page: strokes on a canvas, sent to /api/read (and /api/gates); the answer played back frame by frame
// (a frame: a row read, or on the pixel tasks 28 pixels).
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen");
const STEP_MS = 70;  // animation time per frame
const GATE_CELL = 6;  // pixels across of one frame in a gate map
const GATE_HEIGHT = 256;  // pixels down of a gate map, shared by its units
let strokes = [];    // each stroke: a list of [x, y] in canvas pixels
let playing = null;  // the timer of the running animation
let reads = 0;       // how many reads were started: only the latest one's answer is shown
window.lastDrawing = null;  // what was last sent (tests read it)
window.lastGates = null;  // the gates of the last drawing, as the server gave them: {layers: [...]}
const layerChoice = document.getElementById("layer");  // which layer's gates are drawn (several: a stacked LSTM)
let frameShown = -1;  // the frame outlined in the gate maps

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
  if (strokes.length === 0) {
    window.lastGates = null;
    drawGates(null, -1);
    return show(null);
  }
  const rgba = ink.getImageData(0, 0, pad.width, pad.height).data;
  const pixels = new Array(pad.width * pad.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rgba[4 * i];
  window.lastDrawing = {width: pad.width, height: pad.height, pixels: pixels};
  document.body.dataset.state = "reading";
  readGates(mine);
  try {
    const result = await post("/api/read");
    if (mine !== reads) return;
    show(result);
  } catch (error) {
    if (mine !== reads) return;
    document.body.dataset.state = "error";
    document.getElementById("answer").textContent = "The server did not answer: " + error.message;
  }
}

async function post(path) {
  /* The server's answer to the last drawing at `path` (/api/read or /api/gates), or an Error. */
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(window.lastDrawing)});
  const result = await response.json();
  if (!response.ok) throw new Error(result.error || response.statusText);
  return result;
}

async function readGates(mine) {
  /* A request of its own: the probabilities come as soon as they are ready, the gates beside them. */
  let result = null;
  try {
    result = await post("/api/gates");
  } catch (error) {
    result = null;  // the read request says what went wrong
  }
  if (mine !== reads) return;
  window.lastGates = result;
  showLayers(result ? result.layers.length : 1);
  drawGates(result, -1);
}

function showLayers(count) {
  /* The layer choice, offered where the model has several layers (its bottom one first). */
  if (layerChoice.options.length !== count) {
    layerChoice.innerHTML = Array.from({length: count}, (_, k) =>
      `<option value="${k}">layer ${k + 1}${k === 0 ? " (reads the image)" : ""}</option>`).join("");
  }
  document.getElementById("layers").hidden = count < 2;
}

layerChoice.addEventListener("change", () => drawGates(window.lastGates, frameShown));

function drawGates(gates, frame) {
  /* Each map of the chosen layer: the units (in its units' order) down, the frames across; `frame` (from 0) is
     outlined. */
  frameShown = frame;
  const result = gates ? gates.layers[Number(layerChoice.value) || 0] : null;
  for (const name of ["write", "keep", "read", "cell"]) {
    const canvas = document.getElementById("gate-" + name);
    const view = canvas.getContext("2d");
    if (!result) {
      view.clearRect(0, 0, canvas.width, canvas.height);
      continue;
    }
    const units = result.units, frames = result[name].length;
    const unitPixels = Math.max(1, Math.floor(GATE_HEIGHT / units.length));
    canvas.width = frames * GATE_CELL;
    canvas.height = units.length * unitPixels;
    for (let t = 0; t < frames; t++) {
      units.forEach((unit, k) => {
        view.fillStyle = gateColour(name, result[name][t][unit]);
        view.fillRect(t * GATE_CELL, k * unitPixels, GATE_CELL, unitPixels);
      });
    }
    if (frame >= 0) {
      view.strokeStyle = "#e33";
      view.lineWidth = 1;
      view.strokeRect(frame * GATE_CELL + 0.5, 0.5, GATE_CELL - 1, canvas.height - 1);
    }
  }
  document.getElementById("gates").dataset.filled = String(Boolean(result));
}

function gateColour(name, value) {
  if (name === "cell") {  // red above 0, blue below, white at 0
    const v = Math.min(Math.abs(value), 1), fade = Math.round(255 * (1 - v));
    return value >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
  }
  const v = Math.round(255 * value);  // a gate: dark shut, bright open
  return `rgb(${Math.round(v * 0.95)},${v},${Math.round(40 + v * 0.5)})`;
}

function show(result) {
  clearInterval(playing);
  const answer = document.getElementById("answer");
  const table = document.getElementById("steps");
  table.innerHTML = "";
  drawSeen(result ? result.image : null, -1, null);
  if (!result || result.blank) {
    answer.textContent = "Draw a digit.";
    answer.dataset.digit = "";
    document.getElementById("row").innerHTML = "&nbsp;";
    drawBars(new Array(10).fill(0));
    document.body.dataset.state = "empty";
    return;
  }
  const header = table.insertRow();
  const how = result.reading;  // what a step reads, and in what order
  for (const title of document.querySelectorAll(".by-step")) title.textContent = `${how.step} by ${how.step}`;
  document.getElementById("how").textContent = `${how.n_steps} ${how.step}s, one per time step` +
    (how.step === "pixel" ? (how.order ? ", in a fixed random order" : ", in reading order") : "");
  header.insertCell().outerHTML = `<th>${how.step}</th>`;
  for (let d = 0; d < 10; d++) header.insertCell().outerHTML = `<th>${d}</th>`;
  answer.textContent = "…";
  answer.dataset.digit = "";
  let t = 0;
  playing = setInterval(() => {
    const p = result.steps[t], step = (t + 1) * how.every;
    const row = table.insertRow();
    row.className = "step";
    row.insertCell().outerHTML = `<th>${step}</th>`;
    for (let d = 0; d < 10; d++) {
      const cell = row.insertCell();
      cell.className = "cell";
      cell.style.setProperty("--p", p[d].toFixed(3));
      cell.title = `after ${how.step} ${step}: ${d} with probability ${p[d].toFixed(3)}`;
    }
    for (const r of table.querySelectorAll("tr.current")) r.classList.remove("current");
    row.classList.add("current");
    drawSeen(result.image, t, how);
    if (window.lastGates) drawGates(window.lastGates, t);
    drawBars(p);
    const best = p.indexOf(Math.max(...p));
    document.getElementById("row").textContent = `after ${how.step} ${step} of ${how.n_steps}: ${best}`;
    t += 1;
    if (t === result.steps.length) {
      clearInterval(playing);
      answer.textContent = `Answer: ${result.answer}`;
      answer.dataset.digit = String(result.answer);
      document.body.dataset.state = "done";
    }
  }, STEP_MS);
}

function drawSeen(image, frame, how) {
  /* The 28x28 image; from `frame` (from 0) on, the pixels not read yet are dimmed, in the order `how` reads
     them (how.order, or reading order), and in reading order the row read last is outlined. */
  const view = seen.getContext("2d");
  const cell = seen.width / 28;
  view.fillStyle = "#000";
  view.fillRect(0, 0, seen.width, seen.height);
  if (!image) return;
  const read = new Uint8Array(image.length).fill(frame < 0 ? 1 : 0);
  const readSoFar = frame < 0 ? 0 : (frame + 1) * how.every * image.length / how.n_steps;
  for (let k = 0; k < readSoFar; k++) read[how.order ? how.order[k] : k] = 1;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = Math.round(255 * image[28 * y + x] * (read[28 * y + x] ? 1 : 0.25));
      view.fillStyle = `rgb(${v},${v},${v})`;
      view.fillRect(x * cell, y * cell, cell, cell);
    }
  }
  if (frame >= 0 && !how.order) {
    view.strokeStyle = "#e33";
    view.lineWidth = 2;
    view.strokeRect(1, Math.floor((readSoFar - 1) / 28) * cell, seen.width - 2, cell);
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
showLayers(1);
drawBars(new Array(10).fill(0));
drawSeen(null, -1, null);
