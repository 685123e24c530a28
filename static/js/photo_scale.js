// Mark a known length on a wound photo: two clicks, then the length in cm; the server keeps the
// scale. Points are sent in the photo's own pixels, whatever size the photo is shown at.
const SVG = "http://www.w3.org/2000/svg";

function mark(svg, tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  svg.appendChild(el);
  return el;
}

function setUp(panel) {
  const img = panel.querySelector(".measure-photo");
  const svg = panel.querySelector(".measure-marks");
  const form = panel.querySelector(".measure-form");
  const status = panel.querySelector(".measure-status");
  const save = form.querySelector("button[type=submit]");
  const width = Number(img.getAttribute("width"));
  const height = Number(img.getAttribute("height"));
  // Marks stay legible whether the photo is 200 or 4000 pixels wide.
  const size = Math.max(width, height) / 120;
  let points = [];

  function draw(colour) {
    svg.replaceChildren();
    if (points.length === 2) {
      const [[x1, y1], [x2, y2]] = points;
      mark(svg, "line", { x1, y1, x2, y2, stroke: colour, "stroke-width": size / 2 });
    }
    for (const [cx, cy] of points) {
      mark(svg, "circle", { cx, cy, r: size, fill: "none", stroke: colour, "stroke-width": size / 2 });
    }
  }

  function fill() {
    const [[x1, y1], [x2, y2]] = points;
    Object.entries({ x1, y1, x2, y2 }).forEach(([name, value]) => {
      form.elements[name].value = value.toFixed(1);
    });
    const distance = Math.hypot(x2 - x1, y2 - y1);
    status.textContent = `${Math.round(distance)} px between the two points. Enter their distance in cm and save.`;
    save.disabled = false;
  }

  function reset() {
    points = [];
    draw("#ffd400");
    save.disabled = true;
    status.textContent = "Click the first end of the known length.";
  }

  img.addEventListener("click", (event) => {
    const box = img.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * width;
    const y = ((event.clientY - box.top) / box.height) * height;
    if (points.length === 2) points = [];
    points.push([Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)]);
    draw("#ffd400");
    if (points.length === 2) fill();
    else status.textContent = "Now click the other end.";
  });
  panel.querySelector(".measure-reset").addEventListener("click", reset);

  // Show the length marked before, if any, until someone marks a new one.
  const saved = (img.dataset.points || "").split(",").map(Number);
  if (saved.length === 4 && saved.every(Number.isFinite)) {
    points = [saved.slice(0, 2), saved.slice(2)];
    draw("#3ddc84");
    points = [];
  }
}

document.querySelectorAll("details.measure").forEach(setUp);
