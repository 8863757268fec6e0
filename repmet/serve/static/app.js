// The page of metric-serve: enroll classes from dropped images (boxes drawn on them for a
// detector), query an image, list and remove classes. Plain JavaScript over the JSON API; no
// build step and nothing fetched from elsewhere, so it works offline.
"use strict";

const $ = (id) => document.getElementById(id);
let task = "classification";
let enrollImages = [];  // {name, base64, image, boxes: [[x1, y1, x2, y2], ...]} in the image's pixels

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  sessionStorage.setItem("repmet-token", token);
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await response.json().catch(() => ({ error: "the server answered " + response.status }));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = reader.result;
      const image = new Image();
      image.onload = () => resolve({ name: file.name, base64: url.slice(url.indexOf(",") + 1), image, boxes: [] });
      image.onerror = () => reject(new Error(file.name + " is not an image this browser can show"));
      image.src = url;
    };
    reader.onerror = () => reject(new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}

function drawBoxes(canvas, image, boxes, labels) {
  const ctx = canvas.getContext("2d");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  ctx.drawImage(image, 0, 0);
  ctx.lineWidth = Math.max(2, image.naturalWidth / 200);
  ctx.font = Math.max(12, image.naturalWidth / 30) + "px sans-serif";
  boxes.forEach((b, i) => {
    ctx.strokeStyle = ctx.fillStyle = labels ? "#ff3030" : "#30c030";
    ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    if (labels) ctx.fillText(labels[i], b[0] + 3, Math.max(b[1] - 4, 14));
  });
}

// A detector enrolls boxes: drag on a preview to draw one (none drawn: the whole image is the box).
function enableDrawing(canvas, entry) {
  let start = null;
  const toImage = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height];
  };
  canvas.addEventListener("mousedown", (e) => { start = toImage(e); });
  canvas.addEventListener("mouseup", (e) => {
    if (!start) return;
    const end = toImage(e);
    const box = [Math.min(start[0], end[0]), Math.min(start[1], end[1]), Math.max(start[0], end[0]), Math.max(start[1], end[1])];
    start = null;
    if (box[2] - box[0] > 2 && box[3] - box[1] > 2) entry.boxes.push(box.map(Math.round));
    drawBoxes(canvas, entry.image, entry.boxes);
  });
}

async function addEnrollFiles(files) {
  try {
    for (const file of files) {
      const entry = await readFile(file);
      enrollImages.push(entry);
      const canvas = document.createElement("canvas");
      canvas.title = entry.name;
      drawBoxes(canvas, entry.image, entry.boxes);
      if (task === "detection") enableDrawing(canvas, entry);
      $("enroll-previews").appendChild(canvas);
    }
    status(enrollImages.length + " image(s) ready to enroll");
  } catch (error) {
    status(error.message, true);
  }
}

async function enroll() {
  const label = $("label").value.trim();
  if (!label) return status("give the class a label first", true);
  if (!enrollImages.length) return status("choose or drop a few images of the class first", true);
  const body = task === "detection"
    ? { examples: enrollImages.map((e) => ({ image: e.base64,
        boxes: e.boxes.length ? e.boxes : [[0, 0, e.image.naturalWidth, e.image.naturalHeight]] })) }
    : { images: enrollImages.map((e) => e.base64) };
  status("enrolling " + label + "...");
  try {
    const answer = await api("POST", "/classes/" + encodeURIComponent(label), body);
    status("enrolled " + answer.label + " from " + answer.used + (task === "detection" ? " box(es)" : " image(s)"));
    enrollImages = [];
    $("enroll-previews").innerHTML = "";
    $("enroll-files").value = "";
    $("label").value = "";
    await refreshClasses();
  } catch (error) {
    status(error.message, true);
  }
}

async function query(file) {
  $("results").innerHTML = "";
  try {
    const entry = await readFile(file);
    const canvas = $("query-canvas");
    drawBoxes(canvas, entry.image, []);
    status("asking...");
    if (task === "detection") {
      const answer = await api("POST", "/detect", { images: [entry.base64], score_threshold: Number($("score").value) });
      const found = answer.detections[0];
      drawBoxes(canvas, entry.image, found.map((d) => d.box), found.map((d) => d.label + " " + d.score.toFixed(2)));
      found.forEach((d) => addResult(d.label, d.score));
      status(found.length + " detection(s)");
    } else {
      const answer = await api("POST", "/classify", { images: [entry.base64], top_k: Number($("top-k").value) });
      const p = answer.predictions[0];
      p.labels.forEach((label, i) => addResult(label, p.posteriors[i]));
      status("classified " + entry.name);
    }
  } catch (error) {
    status(error.message, true);
  }
}

function addResult(label, score) {
  const item = document.createElement("li");
  item.dataset.label = label;
  item.textContent = label + " (" + score.toFixed(3) + ")";
  $("results").appendChild(item);
}

async function refreshClasses() {
  try {
    const answer = await api("GET", "/classes");
    const list = $("classes");
    list.innerHTML = "";
    answer.classes.forEach((c) => {
      const item = document.createElement("li");
      item.dataset.label = c.label;
      const name = document.createElement("span");
      name.textContent = c.label + " · " + c.representatives + " representative" + (c.representatives === 1 ? "" : "s");
      const remove = document.createElement("button");
      remove.textContent = "remove";
      remove.className = "remove";
      remove.onclick = async () => {
        try {
          await api("DELETE", "/classes/" + encodeURIComponent(c.label));
          status("removed " + c.label);
          await refreshClasses();
        } catch (error) {
          status(error.message, true);
        }
      };
      item.append(name, remove);
      list.appendChild(item);
    });
    $("class-count").textContent = "(" + answer.classes.length + ")";
    $("health").textContent = $("health").textContent.replace(/^\d+ classes/, answer.classes.length + " classes");
  } catch (error) {
    status(error.message, true);
  }
}

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); onFiles([...e.dataTransfer.files]); });
}

async function start() {
  $("token").value = sessionStorage.getItem("repmet-token") || "";
  try {
    const health = await api("GET", "/health");
    task = health.task;
    $("task").textContent = task;
    $("health").textContent = health.classes + " classes, backend " + health.backend;
    if (task === "detection") {
      $("enroll-hint").textContent = "Drop a few images of one class; drag on each to draw its boxes (none drawn: the whole image).";
      $("topk-label").hidden = true;
    } else {
      $("score-label").hidden = true;
    }
  } catch (error) {
    status(error.message, true);
  }
  $("enroll-files").addEventListener("change", (e) => addEnrollFiles([...e.target.files]));
  $("query-file").addEventListener("change", (e) => { if (e.target.files.length) query(e.target.files[0]); });
  $("enroll-button").addEventListener("click", enroll);
  $("token").addEventListener("change", refreshClasses);
  dropZone($("enroll-drop"), addEnrollFiles);
  dropZone($("query-drop"), (files) => { if (files.length) query(files[0]); });
  await refreshClasses();
}

start();
