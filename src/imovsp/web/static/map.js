// The city's map on the valuation form (drawn by the server: imovsp/web/citymap.py). A click
// or a tap marks where the apartment is, fills the coordinates and picks, in the list, the
// district the point lies in; picking a district in the list lights it up on the map; typed
// coordinates move the mark. By keyboard, the arrows go from district to district and Enter
// picks one (without coordinates: a district is not a point).
"use strict";

(function () {
  const svg = document.getElementById("map");
  if (!svg) return;
  const config = JSON.parse(document.getElementById("page-config").textContent).map;
  const $ = (id) => document.getElementById(id);
  const district = $("district");
  const lat = $("latitude");
  const lon = $("longitude");
  const marker = $("map-marker");
  const label = $("map-label");
  const status = $("map-status");
  const clear = $("map-clear");
  const shapes = [...svg.querySelectorAll("path.district")];
  const order = [...shapes].sort((a, b) =>
    a.dataset.district.localeCompare(b.dataset.district, "pt-BR"),
  );

  // Names as the API matches them: case, accents and "/São Paulo" do not matter.
  const fold = (text) =>
    text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/\/\s*sao paulo\s*$/, "")
      .trim()
      .split(/\s+/)
      .join(" ");
  const models = new Map(Object.keys(config.places).map((name) => [fold(name), name]));

  const toLonLat = (x, y) => [config.lon0 + x / config.kx, config.lat0 - y / config.ky];
  const toXY = (lo, la) => [(lo - config.lon0) * config.kx, (config.lat0 - la) * config.ky];
  const decimal = (value) => value.toFixed(5).replace(".", ",").replace("-", "−");
  const parse = (text) => {
    const t = text.trim().replace("−", "-").replace(",", ".");
    return t === "" ? NaN : Number(t);
  };

  let point = null; // where the mark is, in the map's units
  const shapeAt = (x, y) => shapes.find((s) => s.isPointInFill(new DOMPoint(x, y))) || null;

  function mark(x, y) {
    point = { x, y };
    marker.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    marker.classList.remove("off");
    clear.hidden = false;
  }

  function unmark() {
    point = null;
    marker.classList.add("off");
    clear.hidden = true;
  }

  function clearFieldError(field) {
    $(`${field}-error`).replaceChildren();
    $(field).removeAttribute("aria-invalid");
  }

  // The official districts the name in the list stands for (a neighbourhood such as
  // Brooklin stands for the districts it lies in).
  const officialsOf = (name) => new Set(config.places[models.get(fold(name))] || []);

  function focusable(shape) {
    for (const s of shapes) s.tabIndex = s === shape ? 0 : -1;
  }

  function highlight() {
    const officials = officialsOf(district.value);
    for (const s of shapes) s.classList.toggle("selected", officials.has(s.dataset.official));
    const first = shapes.find((s) => officials.has(s.dataset.official));
    if (first) focusable(first);
    label.textContent = first ? district.value : "";
    return officials;
  }

  // Puts the district a shape stands for in the list and says what was picked.
  function pick(shape, marked) {
    const name = shape.dataset.district;
    const model = shape.dataset.model;
    district.value = model || shape.dataset.nearest || district.value;
    clearFieldError("district");
    highlight();
    focusable(shape);
    const where = marked
      ? `Ponto marcado em ${name} (${lat.value}; ${lon.value})`
      : `Escolhido: ${name}`;
    if (!model) {
      status.textContent =
        `${where}, distrito sem anúncios nos nossos dados: o bairro da avaliação é o mais ` +
        `próximo com anúncios, ${district.value}${marked ? ", com a localização do ponto" : ""}.`;
    } else if (fold(model) !== fold(name)) {
      status.textContent = `${where} (na lista: ${model}).`;
    } else {
      status.textContent = `${where}.`;
    }
  }

  function markAt(x, y) {
    const shape = shapeAt(x, y);
    if (!shape) {
      status.textContent = "Esse ponto fica fora da cidade de São Paulo. Marque um ponto dentro dela.";
      return;
    }
    mark(x, y);
    const [lo, la] = toLonLat(x, y);
    lat.value = decimal(la);
    lon.value = decimal(lo);
    clearFieldError("latitude");
    clearFieldError("longitude");
    pick(shape, true);
  }

  svg.addEventListener("click", (event) => {
    const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(
      svg.getScreenCTM().inverse(),
    );
    markAt(at.x, at.y);
  });

  // -- the keyboard -------------------------------------------------------------------------
  const STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  svg.addEventListener("keydown", (event) => {
    const shape = event.target.closest("path.district");
    if (!shape) return;
    let next = null;
    if (event.key in STEPS) {
      const i = order.indexOf(shape) + STEPS[event.key];
      next = order[(i + order.length) % order.length];
    } else if (event.key === "Home") next = order[0];
    else if (event.key === "End") next = order[order.length - 1];
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (point && shapeAt(point.x, point.y) !== shape) {
        unmark();
        lat.value = lon.value = "";
      }
      pick(shape, false);
      return;
    }
    if (!next) return;
    event.preventDefault();
    focusable(next);
    next.focus();
  });

  // -- the name of the district under the pointer, or in focus ------------------------------
  function name(event) {
    const shape = event.target.closest && event.target.closest("path.district");
    if (!shape) return;
    label.textContent =
      shape.dataset.district + (shape.dataset.model ? "" : " · sem anúncios nos nossos dados");
  }
  // Drawn over every district, so that no neighbour hides part of the focused one's outline.
  const ring = $("map-focus");
  svg.addEventListener("pointerover", name);
  svg.addEventListener("focusin", (event) => {
    name(event);
    const shape = event.target.closest && event.target.closest("path.district");
    ring.setAttribute("d", shape ? shape.getAttribute("d") : "M0 0");
  });
  svg.addEventListener("pointerleave", highlight);
  svg.addEventListener("focusout", () => {
    ring.setAttribute("d", "M0 0");
    highlight();
  });

  // -- the list and the typed coordinates ---------------------------------------------------
  // A name put in by the page itself (a suggested district) lights up when it is sent.
  district.form.addEventListener("submit", highlight);
  district.addEventListener("input", () => {
    if (models.has(fold(district.value))) highlight();
  });
  district.addEventListener("change", () => {
    const officials = highlight();
    if (!point || !officials.size) return;
    const shape = shapeAt(point.x, point.y);
    if (shape && officials.has(shape.dataset.official)) return;
    unmark();
    lat.value = lon.value = "";
    const chosen = models.get(fold(district.value));
    status.textContent = `O ponto marcado ficava fora de ${chosen} e foi removido.`;
  });

  function fromCoordinates() {
    const la = parse(lat.value);
    const lo = parse(lon.value);
    if (!Number.isFinite(la) || !Number.isFinite(lo)) {
      unmark();
      return;
    }
    const [x, y] = toXY(lo, la);
    const shape = shapeAt(x, y);
    if (!shape) {
      unmark();
      status.textContent = "Essas coordenadas ficam fora do mapa da cidade.";
      return;
    }
    mark(x, y);
    pick(shape, true);
  }
  lat.addEventListener("change", fromCoordinates);
  lon.addEventListener("change", fromCoordinates);

  clear.addEventListener("click", () => {
    unmark();
    lat.value = lon.value = "";
    status.textContent = "Ponto removido.";
    (shapes.find((s) => s.tabIndex === 0) || svg).focus();
  });

  highlight();
  if (lat.value && lon.value) fromCoordinates(); // a form the browser kept, going back
})();
