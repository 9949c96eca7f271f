// The valuation form: sends the form to POST /v1/valuations and shows the answer, or puts
// the API's errors, in Portuguese, next to the fields they name. The form is never reset.
"use strict";

(function () {
  const form = document.getElementById("valuation");
  if (!form) return;
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const $ = (id) => document.getElementById(id);
  const result = $("result");
  const status = $("form-status");
  const submit = $("submit");
  const TIMEOUT_MS = 20000;
  const SERVER_DOWN =
    "Desculpe, não conseguimos calcular agora. Tente de novo em alguns instantes: " +
    "o que você digitou continua no formulário.";

  // -- numbers as Brazilians read them (imovsp/web/brl.py formats the same way) -------------
  function number(value, decimals = 0) {
    const [whole, part] = Math.abs(value).toFixed(decimals).split(".");
    const sign = value < 0 && Number(whole + (part || "")) !== 0 ? "-" : "";
    return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ".") + (part ? "," + part : "");
  }
  const brl = (value, decimals = 0) => "R$\u00a0" + number(value, decimals); // never "R$" alone at a line end
  const perM2 = (value, negotiation) => brl(value, negotiation === "sale" ? 0 : 2);
  function percent(value) {
    const size = Math.abs(value);
    const text = number(size, size < 1 ? 1 : 0);
    return (value < 0 ? "−" : "+") + text + "%";
  }

  // "1.200,50" → 1200.5; "72.5" → 72.5; "1.500" → 1500. Text that is no number is sent as
  // typed, so that the API names the field and the page says why.
  function readNumber(text, { coordinate = false } = {}) {
    let t = text.trim().replace(/\s|R\$/g, "").replace("−", "-");
    if (t === "") return undefined;
    if (coordinate) t = t.replace(",", ".");
    else if (t.includes(",")) t = t.replace(/\./g, "").replace(",", ".");
    else if (/^-?\d{1,3}(\.\d{3})+$/.test(t)) t = t.replace(/\./g, "");
    const value = Number(t);
    return t !== "" && Number.isFinite(value) ? value : text.trim();
  }

  function body() {
    const data = new FormData(form);
    const out = { negotiation: data.get("negotiation"), district: data.get("district").trim() };
    for (const name of ["size_m2", "rooms", "toilets", "suites", "parking", "condo_fee"]) {
      const value = readNumber(data.get(name));
      if (value !== undefined) out[name] = value;
    }
    for (const name of ["latitude", "longitude"]) {
      const value = readNumber(data.get(name), { coordinate: true });
      if (value !== undefined) out[name] = value;
    }
    for (const name of ["elevator", "furnished", "swimming_pool", "new"]) {
      if (data.get(name)) out[name] = data.get(name) === "true";
    }
    return out;
  }

  // -- the month whose money the answer is in (the index covers different months by type) ---
  const monthName = (month) => {
    for (const list of Object.values(config.months || {})) {
      const found = list.find(([m]) => m === month);
      if (found) return found[1];
    }
    return month;
  };

  function fillMonths() {
    const select = $("as_of");
    if (!select || !config.months) return;
    const negotiation = new FormData(form).get("negotiation");
    const months = config.months[negotiation] || [];
    const chosen = select.value;
    const latest = document.createElement("option");
    latest.value = "";
    latest.textContent = months.length ? `${months[0][1]} (o mais recente)` : "o mais recente";
    const options = months.map(([value, label]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      return option;
    });
    select.replaceChildren(latest, ...options);
    // A month this type's index does not cover goes back to the latest one.
    select.value = months.some(([m]) => m === chosen) ? chosen : "";
  }

  function showAsOf(v) {
    if (v.as_of == null) {
      for (const id of ["as-of", "data-month-price", "comparables-note"]) $(id).textContent = "";
      return;
    }
    const capitalised = v.index_basis.charAt(0).toUpperCase() + v.index_basis.slice(1);
    const moved = v.as_of !== v.data_month;
    $("as-of").textContent = `${capitalised}.`;
    $("data-month-price").textContent = moved
      ? `Em ${monthName(v.data_month)}, mês dos anúncios do modelo: ` +
        `${brl(v.price_at_data_month)}${v.per_month ? "/mês" : ""} ` +
        `(fator ${number(v.index_factor, 3)}; fonte: ${v.index_credit}).`
      : "";
    $("comparables-note").textContent = moved
      ? `Preços anunciados em ${monthName(v.data_month)}, corrigidos para ` +
        `${monthName(v.as_of)} pelo mesmo índice.`
      : `Preços anunciados em ${monthName(v.data_month)}.`;
  }

  // -- errors next to their field -----------------------------------------------------------
  const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  function message(field, type) {
    const words = config.fields[field];
    if (!words) return null;
    switch (type) {
      case "missing":
        return `Informe ${words.phrase}.`;
      case "greater_than_equal":
      case "less_than_equal":
        return `${capital(words.phrase)} deve estar ${words.allowed}.`;
      case "float_parsing":
      case "float_type":
      case "finite_number":
        return "Digite só números, por exemplo 72 ou 72,5.";
      case "int_parsing":
      case "int_type":
        return "Digite um número inteiro, por exemplo 2.";
      case "int_from_float":
        return "Use um número inteiro, sem vírgula.";
      case "string_too_short":
        return `Informe ${words.phrase}.`;
      case "string_too_long":
        return "Nome longo demais: escolha um bairro da lista.";
      default:
        return `Confira ${words.phrase}.`;
    }
  }

  function clearErrors() {
    for (const el of form.querySelectorAll(".error")) el.replaceChildren();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    status.replaceChildren();
    status.className = "status";
  }

  function showError(field, text, extra) {
    const where = $(`${field}-error`);
    if (!where) return false;
    where.replaceChildren(text, ...(extra ? [extra] : []));
    const control = form.querySelector(`[name="${field}"]`);
    if (control) control.setAttribute("aria-invalid", "true");
    if (field === "latitude" || field === "longitude") $("location").open = true;
    return true;
  }

  function suggestionList(names) {
    const box = document.createElement("span");
    box.className = "suggestions";
    for (const name of names) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "suggestion";
      button.textContent = name;
      button.addEventListener("click", () => {
        $("district").value = name;
        form.requestSubmit();
      });
      box.append(button);
    }
    return box;
  }

  // The API's 422 answers: field errors, an unknown district, or coordinates it cannot use.
  function showProblem(problem, sent) {
    const shown = [];
    if (Array.isArray(problem.suggestions)) {
      const typed = `Não conhecemos o bairro “${sent.district}”.`;
      if (problem.suggestions.length) {
        showError("district", `${typed} Você quis dizer:`, suggestionList(problem.suggestions));
      } else {
        showError("district", `${typed} Escolha um bairro da lista.`);
      }
      shown.push("district");
    } else if (Array.isArray(problem.errors)) {
      for (const e of problem.errors) {
        if (shown.includes(e.field)) continue;
        const text = message(e.field, e.type);
        if (text && showError(e.field, text)) shown.push(e.field);
      }
    } else if (/^as_of:/.test(problem.detail || "")) {
      showError("as_of", "O índice não cobre esse mês: escolha outro.");
      shown.push("as_of");
    } else if (/outside São Paulo/.test(problem.detail || "")) {
      showError("latitude", "Essas coordenadas ficam fora da cidade de São Paulo.");
      shown.push("latitude");
    } else if (/both latitude and longitude/.test(problem.detail || "")) {
      const missing = sent.latitude === undefined ? "latitude" : "longitude";
      showError(missing, "Informe a latitude e a longitude, ou deixe as duas em branco.");
      shown.push(missing);
    }
    if (!shown.length) {
      status.textContent = "Não conseguimos avaliar com esses dados. Confira o formulário.";
      status.className = "status problem";
      return;
    }
    status.textContent =
      shown.length === 1 ? "Corrija o campo indicado." : `Corrija os ${shown.length} campos indicados.`;
    status.className = "status problem";
    const first = form.querySelector(`[name="${shown[0]}"]`);
    if (first) first.focus();
  }

  // -- the answer ---------------------------------------------------------------------------
  const plural = (n, one, many) => `${number(n)} ${n === 1 ? one : many}`;
  const NOT_GIVEN = {
    location: "localização exata",
    rooms: "quartos",
    toilets: "banheiros",
    suites: "suítes",
    parking: "vagas",
    condo_fee: "condomínio",
    elevator: "elevador",
    furnished: "mobília",
    swimming_pool: "piscina",
    new: "lançamento",
  };
  const unknown = (feature) => `${NOT_GIVEN[feature]} não informado`;
  const DESCRIBE = {
    location: (p, v) =>
      `Localização: ${p.district}${v.location_estimated ? " (sem coordenadas)" : ""}`,
    size_m2: (p) => `Área de ${number(p.size_m2, Number.isInteger(p.size_m2) ? 0 : 1)} m²`,
    rooms: (p) => (p.rooms == null ? "Quartos não informados" : plural(p.rooms, "quarto", "quartos")),
    toilets: (p) =>
      p.toilets == null ? "Banheiros não informados" : plural(p.toilets, "banheiro", "banheiros"),
    suites: (p) =>
      p.suites == null ? "Suítes não informadas" : p.suites ? plural(p.suites, "suíte", "suítes") : "Sem suíte",
    parking: (p) =>
      p.parking == null ? "Vagas não informadas" : p.parking ? plural(p.parking, "vaga", "vagas") : "Sem vaga",
    condo_fee: (p) => (p.condo_fee ? `Condomínio de ${brl(p.condo_fee)}/mês` : "Condomínio não informado"),
    elevator: (p) => (p.elevator == null ? "Elevador não informado" : p.elevator ? "Com elevador" : "Sem elevador"),
    furnished: (p) => (p.furnished == null ? "Mobília não informada" : p.furnished ? "Mobiliado" : "Sem mobília"),
    swimming_pool: (p) =>
      p.swimming_pool == null ? "Piscina não informada" : p.swimming_pool ? "Com piscina" : "Sem piscina",
    new: (p) => (p.new == null ? "Lançamento não informado" : p.new ? "Lançamento" : "Não é lançamento"),
  };
  // What is typical for the size, said as context ("3 banheiros"), never as what was priced.
  const TYPICAL = {
    rooms: (x) => plural(x, "quarto", "quartos"),
    toilets: (x) => plural(x, "banheiro", "banheiros"),
    suites: (x) => (x ? plural(x, "suíte", "suítes") : "nenhuma suíte"),
    parking: (x) => (x ? plural(x, "vaga", "vagas") : "nenhuma vaga"),
    condo_fee: (x) => `condomínio de ${brl(x)}/mês`,
    elevator: (x) => (x ? "elevador" : "sem elevador"),
    furnished: (x) => (x ? "mobiliado" : "sem mobília"),
    swimming_pool: (x) => (x ? "piscina" : "sem piscina"),
    new: (x) => (x ? "lançamento" : "não lançamento"),
  };
  // Where a field named by `sharpen` is on the form ("location": the coordinates' box).
  const FIELD_OF = (name) => (name === "location" ? $("location") : $(`field-${name}`));
  const describe = (feature, v) =>
    DESCRIBE[feature] ? DESCRIBE[feature](v.property, v) : feature;

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function showRange(v) {
    const range = $("range");
    range.hidden = v.price_low == null || v.price_high == null;
    if (range.hidden) return;
    const month = v.per_month ? "/mês" : "";
    const pct = Math.round(v.level * 100);
    $("range-text").textContent =
      `Faixa provável (${pct}% dos casos parecidos): de ${brl(v.price_low)}${month} a ` +
      `${brl(v.price_high)}${month}.`;
    $("range-low").textContent = brl(v.price_low);
    $("range-high").textContent = brl(v.price_high);
    const spread = v.price_high - v.price_low;
    const at = Math.min(Math.max(spread > 0 ? (v.price - v.price_low) / spread : 0.5, 0), 1);
    const marker = $("range-marker");
    marker.style.left = `${(at * 100).toFixed(1)}%`;
    // The estimate's label sits over the marker, kept inside the bar near either end.
    marker.className = `range-marker${at < 0.2 ? " at-start" : at > 0.8 ? " at-end" : ""}`;
    $("range-estimate").textContent = brl(v.price);
  }

  function showNotGiven(v) {
    const missing = (v.not_given || []).filter((f) => NOT_GIVEN[f]);
    const typical = Object.entries(v.typical || {})
      .filter(([f]) => TYPICAL[f])
      .map(([f, x]) => TYPICAL[f](x));
    $("defaulted").textContent = missing.length
      ? `Avaliado sem ${missing.map((f) => NOT_GIVEN[f]).join(", ")}: o modelo considera esses ` +
        "dados desconhecidos, e a faixa fica mais larga." +
        (typical.length ? ` Para essa área, o comum é ${typical.join(", ")}.` : "")
      : "";
    // What would narrow the range most, next to it; the form highlights those fields.
    for (const el of form.querySelectorAll(".sharpen")) el.classList.remove("sharpen");
    const hints = (v.sharpen || []).slice(0, 3);
    const half = (w) => `±${number(w / 2)}%`;
    $("sharpen").textContent = hints.length
      ? "Para estreitar a faixa, informe: " +
        hints
          .map((h) => `${h.fields.map((f) => NOT_GIVEN[f] || f).join(", ")} (${half(h.width_pct)}` +
            (v.width_pct != null ? ` em vez de ${half(v.width_pct)})` : ")"))
          .join("; ") +
        "."
      : "";
    for (const h of hints) {
      for (const f of h.fields) {
        const el = FIELD_OF(f);
        if (el) el.classList.add("sharpen");
      }
    }
  }

  function showPerM2(v) {
    const own = `${perM2(v.price_m2, v.negotiation)}/m²${v.per_month ? " por mês" : ""}`;
    const median = v.district_median_price_m2;
    if (median == null) {
      $("per-m2").textContent = `${own}.`;
      return;
    }
    const diff = (v.price_m2 / median - 1) * 100;
    const where =
      Math.abs(diff) < 0.5
        ? "igual à mediana"
        : `${number(Math.abs(diff))}% ${diff > 0 ? "acima" : "abaixo"} da mediana`;
    $("per-m2").textContent =
      `${own}: ${where} de ${v.district} (${perM2(median, v.negotiation)}/m²).`;
  }

  function showResult(v) {
    $("result-title").textContent = v.per_month ? "Aluguel estimado" : "Preço de venda estimado";
    $("price").textContent = brl(v.price);
    $("per-month").textContent = v.per_month ? "/mês" : "";
    const p = v.property;
    $("summary").textContent =
      `${v.per_month ? "Aluguel" : "Venda"} · ${v.district} · ` +
      `${number(p.size_m2, Number.isInteger(p.size_m2) ? 0 : 1)} m²`;
    showAsOf(v);
    showRange(v);
    showPerM2(v);

    showNotGiven(v);

    const reasons = (v.reasons || []).slice(0, 5);
    $("baseline").textContent =
      v.baseline != null ? `Comparado a um apartamento típico de ${brl(v.baseline)}:` : "";
    $("reasons").replaceChildren(
      ...reasons.map((r) => {
        const li = document.createElement("li");
        const effect = document.createElement("strong");
        effect.className = r.effect_pct >= 0 ? "up" : "down";
        effect.textContent = percent(r.effect_pct);
        li.append(`${describe(r.feature, v)}: `, effect);
        return li;
      }),
    );

    const rows = (v.comparables || []).map((c) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(c.district),
        cell(`${number(c.size_m2)} m²`, "num"),
        cell(number(c.rooms), "num wide"),
        cell(number(c.parking), "num wide"),
        cell(brl(c.price) + (v.per_month ? "/mês" : ""), "num"),
        cell(perM2(c.price_m2, v.negotiation), "num wide"),
        cell(`${number(c.distance_km, 1)} km`, "num"),
      );
      return tr;
    });
    $("comparables").tBodies[0].replaceChildren(...rows);
    $("chart-link").href = `bairros?bairro=${encodeURIComponent(v.district)}`;
    $("chart-link").textContent = `Ver ${v.district} no gráfico de preço por m² dos bairros`;
    result.hidden = false;
  }

  // -- sending ------------------------------------------------------------------------------
  async function send(event) {
    event.preventDefault();
    clearErrors();
    const sent = body();
    const asOf = $("as_of") ? $("as_of").value : "";
    const query =
      `explain=true&comparables=${config.comparables}&level=${config.level}` +
      (asOf ? `&as_of=${encodeURIComponent(asOf)}` : "");
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    submit.disabled = true;
    submit.textContent = "Calculando…";
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`v1/valuations?${query}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(sent),
        signal: controller.signal,
      });
      const answer = await response.json().catch(() => null);
      if (response.ok && answer) {
        showResult(answer);
        result.focus();
        return;
      }
      result.hidden = true;
      if (response.status === 422 && answer) showProblem(answer, sent);
      else if (response.status >= 500 || !answer) throw new Error(`HTTP ${response.status}`);
      else if (response.status === 429) {
        status.textContent = "Muitos pedidos em pouco tempo. Espere alguns segundos e tente de novo.";
        status.className = "status unavailable";
      }
      else {
        status.textContent = "Não conseguimos avaliar com esses dados. Confira o formulário.";
        status.className = "status problem";
      }
    } catch (error) {
      result.hidden = true;
      status.textContent = SERVER_DOWN;
      status.className = "status unavailable";
    } finally {
      clearTimeout(timer);
      submit.disabled = false;
      submit.textContent = "Calcular";
      form.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", send);
  for (const radio of form.querySelectorAll('[name="negotiation"]')) {
    radio.addEventListener("change", fillMonths);
  }
  fillMonths();
})();
