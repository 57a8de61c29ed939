// BluePeak Benefits provider center: a single-page app in plain JavaScript (no build step).
// Every view is drawn here from the JSON API; the shell's #bp-config holds the words of the
// current redesign. "cosmetic" changes classes, ids, wrappers and order, never an accessible name.
"use strict";

(function () {
  const CONFIG = JSON.parse(document.getElementById("bp-config").textContent);
  const W = CONFIG.words;
  const V2 = CONFIG.redesign === "cosmetic";
  const RENAMED = CONFIG.redesign === "renamed";
  const root = document.querySelector("[data-root]");
  const toasts = document.querySelector("[data-toasts]");
  let user = null; // the signed-in person's display name; null until the session is known
  let current = 0; // the route being drawn; a slower, older one must not draw over it
  let serial = 0;

  // -- drawing -------------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(2)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const cls = (plain, v2) => (V2 ? v2 : plain);
  const uid = (name) => (V2 ? `pk-${name}__${++serial}` : `bp-${name}-${++serial}`);
  const button = (label, attrs) =>
    h("button", { type: "button", class: cls("btn", "pk-btn pk-btn--primary"), ...attrs }, label);

  function field(name, label, input) {
    input.id = uid(name);
    const lab = h("label", { for: input.id, class: cls("label", "pk-field__label") }, label);
    if (V2) return h("div", { class: "pk-field" }, h("div", { class: "pk-field__top" }, lab), h("div", { class: "pk-field__control" }, input));
    return h("p", { class: "field" }, lab, h("br"), input);
  }

  function item(key, label, value) {
    const id = uid(key);
    const dt = h("dt", { id, class: cls("term", "pk-term") }, label);
    const dd = h("dd", { "aria-labelledby": id, class: cls("value", "pk-value") }, value == null ? "—" : value);
    return V2 ? h("div", { class: "pk-pair" }, dt, dd) : [dt, dd];
  }

  function spinner(label) {
    return h("div", { class: cls("spinner", "pk-loader"), role: "progressbar", "aria-label": label || "Loading" });
  }

  function link(href, text) {
    return h("a", { href, onclick: (e) => { e.preventDefault(); go(href); } }, text);
  }

  function nav() {
    const links = [["/app/claims", W.nav_claims], ["/app/pa", W.nav_pas], ["/app/appeals", W.nav_appeals]];
    if (V2) links.reverse();
    return h(
      "nav",
      { "aria-label": "Main", class: cls("nav", "pk-nav") },
      links.map(([href, label]) => link(href, label)),
      h("span", { class: cls("who", "pk-who") }, user),
      h("button", { type: "button", class: cls("link-button", "pk-btn pk-btn--ghost"), onclick: signOut }, W.sign_out),
    );
  }

  function layout(...content) {
    const header = h("header", { class: cls("header", "pk-topbar") }, h("span", { class: cls("brand", "pk-brand") }, W.brand), user ? nav() : null);
    const main = h("main", { id: cls("content", "pk-main") }, ...content);
    const footer = h("footer", {}, h("small", {}, "BluePeak Benefits is a fictional payer. Sandbox portal."));
    if (V2) root.replaceChildren(h("div", { class: "pk-shell" }, h("div", { class: "pk-shell__inner" }, header, main, footer)));
    else root.replaceChildren(header, main, footer);
    return main;
  }

  function table(caption, headers, rows) {
    let order = headers.map((_, i) => i);
    if (V2) order = [0, ...order.slice(1).reverse()];
    return h(
      "div",
      { class: cls("table-wrap", "pk-card pk-card--table") },
      h(
        "table",
        { class: cls("table", "pk-table") },
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, order.map((i) => h("th", { scope: "col" }, headers[i])))),
        h("tbody", {}, rows.map((row) => h("tr", {}, order.map((i) => h("td", {}, row[i]))))),
      ),
    );
  }

  function toast(text) {
    const note = h("div", { role: "status", class: cls("toast", "pk-toast") }, text);
    toasts.append(note);
    setTimeout(() => note.remove(), 5000);
  }

  // -- the API -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin" };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { kind: "network" };
    }
    if (res.status === 503 && res.headers.get("Retry-After")) return { kind: "maintenance" };
    if (res.status >= 500) return { kind: "server", status: res.status };
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      return { kind: "network" }; // the answer broke off mid-body
    }
    if (res.ok) return { kind: "ok", data };
    return { kind: "problem", status: res.status, error: data && data.error, message: data && data.message };
  }

  function serverError(status) {
    return h(
      "div",
      { role: "alert", class: cls("app-error", "pk-alert pk-alert--error") },
      h("h2", {}, "Something went wrong"),
      h("p", {}, `BluePeak could not complete your request (error ${status}). Please try again.`),
      button("Try again", { onclick: () => route() }),
    );
  }

  function networkError() {
    return h(
      "div",
      { role: "alert", class: cls("app-error", "pk-alert pk-alert--error") },
      h("h2", {}, "Connection problem"),
      h("p", {}, "We could not reach BluePeak. Check your connection and try again."),
    );
  }

  // What a failed call shows: some take the whole page (sign-in, terms, maintenance), the others
  // a message where the answer would have been.
  function failed(result, where) {
    if (result.kind === "problem" && result.status === 401) {
      user = null;
      return go("/app/login" + (result.error === "session_expired" ? "?expired=1" : ""), true);
    }
    if (result.kind === "problem" && result.error === "terms_required") return showTerms();
    if (result.kind === "maintenance") return showMaintenance();
    if (result.kind === "server") return where.replaceChildren(serverError(result.status));
    if (result.kind === "network") return where.replaceChildren(networkError());
    where.replaceChildren(h("p", { role: "alert", class: cls("problem", "pk-alert") }, result.message || "Something is not right"));
  }

  async function load(token, path, where) {
    const result = await api("GET", path);
    if (token !== current) return null;
    if (result.kind === "ok") return result.data;
    failed(result, where);
    return null;
  }

  // -- routing -------------------------------------------------------------------------------

  function go(path, replace) {
    if (replace) history.replaceState({}, "", path);
    else history.pushState({}, "", path);
    route();
  }

  async function route() {
    const token = ++current;
    const url = new URL(location.href);
    const path = url.pathname.replace(/\/+$/, "");
    if (path === "/app/login") return loginView(token, url);
    if (user === null) {
      const main = layout(spinner());
      const session = await api("GET", "/api/session");
      if (token !== current) return;
      if (session.kind !== "ok") return failed(session, main);
      if (!session.data.signed_in) return go("/app/login" + (session.data.expired ? "?expired=1" : ""), true);
      user = session.data.user;
    }
    let m;
    if (path === "/app/claims") return claimsView(token, url);
    if ((m = path.match(/^\/app\/claims\/([\w-]+)$/))) return claimView(token, m[1]);
    if (path === "/app/pa") return pasView(token, url);
    if ((m = path.match(/^\/app\/pa\/([\w-]+)$/))) return paView(token, m[1]);
    if (path === "/app/appeals") return appealsView(token, url);
    return go("/app/claims", true);
  }

  window.addEventListener("popstate", () => route());

  // -- sign-in -------------------------------------------------------------------------------

  async function loginView(token, url) {
    user = null;
    const main = layout(h("h1", {}, W.sign_in_heading), spinner());
    const session = await api("GET", "/api/session");
    if (token !== current) return;
    if (session.kind !== "ok") return failed(session, main);
    if (session.data.signed_in) {
      user = session.data.user;
      return go("/app/claims", true);
    }
    if (session.data.captcha) return showCaptcha();
    const messages = h("div", { class: cls("messages", "pk-messages") });
    if (url.searchParams.get("expired")) {
      messages.append(h("p", { role: "status", class: cls("notice", "pk-alert pk-alert--info") }, "Your session has expired. Please sign in again."));
    }
    const username = h("input", { name: "username", type: "text", autocomplete: "username" });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password" });
    const submit = h("button", { type: "submit", class: cls("btn", "pk-btn pk-btn--primary") }, W.sign_in);
    const form = h(
      "form",
      {
        class: cls("form", "pk-form"),
        onsubmit: async (e) => {
          e.preventDefault();
          submit.disabled = true;
          messages.replaceChildren(spinner("Signing in"));
          const result = await api("POST", "/api/login", { username: username.value, password: password.value });
          if (token !== current) return;
          submit.disabled = false;
          messages.replaceChildren();
          if (result.kind === "ok") return questionStep(token, result.data.question);
          if (result.kind === "problem" && result.error === "captcha") return showCaptcha();
          if (result.kind === "problem" && result.error === "password_expired") return showPasswordExpired();
          if (result.kind === "problem") return messages.replaceChildren(h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, result.message));
          failed(result, messages);
        },
      },
      V2 ? h("p", { class: "pk-help" }, "Use your BluePeak provider account.") : null,
      field("username", W.username, username),
      field("password", W.password, password),
      submit,
    );
    main.replaceChildren(h("h1", {}, W.sign_in_heading), messages, form);
  }

  function questionStep(token, question) {
    const main = layout();
    const messages = h("div", { class: cls("messages", "pk-messages") });
    const answer = h("input", { name: "answer", type: "password", autocomplete: "off" });
    const submit = h("button", { type: "submit", class: cls("btn", "pk-btn pk-btn--primary") }, W.verify);
    const form = h(
      "form",
      {
        class: cls("form", "pk-form"),
        onsubmit: async (e) => {
          e.preventDefault();
          submit.disabled = true;
          messages.replaceChildren(spinner("Verifying"));
          const result = await api("POST", "/api/login/answer", { answer: answer.value });
          if (token !== current) return;
          submit.disabled = false;
          messages.replaceChildren();
          if (result.kind === "ok") {
            user = result.data.user;
            return go("/app/claims");
          }
          if (result.kind === "problem") return messages.replaceChildren(h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, result.message));
          failed(result, messages);
        },
      },
      h("dl", { class: cls("question", "pk-question") }, item("question", W.question, question)),
      field("answer", W.answer, answer),
      submit,
    );
    main.replaceChildren(h("h1", {}, "Confirm it's you"), messages, form);
  }

  function showCaptcha() {
    layout(
      h("h1", {}, "Verify you are human"),
      h("p", {}, "We noticed several sign-in attempts. Complete the CAPTCHA to continue."),
      h(
        "div",
        { role: "group", "aria-label": "CAPTCHA challenge", class: cls("captcha", "pk-captcha") },
        h("input", { type: "checkbox", id: "not-a-robot" }),
        h("label", { for: "not-a-robot" }, "I'm not a robot"),
        h("p", {}, h("em", {}, "This challenge can only be answered by a person.")),
      ),
    );
  }

  function showPasswordExpired() {
    const messages = h("div", {});
    const fresh = h("input", { type: "password", autocomplete: "new-password" });
    const again = h("input", { type: "password", autocomplete: "new-password" });
    layout(
      h("h1", {}, "Change your password"),
      h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, "Your password has expired and must be changed"),
      messages,
      h(
        "form",
        {
          onsubmit: (e) => {
            e.preventDefault();
            messages.replaceChildren(h("p", { role: "alert" }, "Password changes are not available"));
          },
        },
        field("new-password", "New password", fresh),
        field("confirm-password", "Confirm new password", again),
        h("button", { type: "submit", class: cls("btn", "pk-btn pk-btn--primary") }, "Change password"),
      ),
    );
  }

  function showMaintenance() {
    user = null;
    layout(
      h("h1", {}, "Scheduled maintenance"),
      h("p", {}, "BluePeak Benefits is down for scheduled maintenance. Please try again later."),
    );
  }

  function showTerms() {
    const main = layout(
      h("h1", {}, W.terms),
      h(
        "div",
        { class: cls("terms", "pk-terms") },
        h("p", {}, "The provider center is for the business of your practice only. Keep patient information confidential, and use it only as HIPAA permits."),
        h("p", {}, "BluePeak may update these terms; you will be asked to accept them again when it does."),
      ),
      button(W.agree, {
        onclick: async () => {
          main.replaceChildren(spinner("Saving"));
          const result = await api("POST", "/api/terms");
          if (result.kind === "ok") return route();
          failed(result, main);
        },
      }),
    );
  }

  async function signOut() {
    await api("POST", "/api/logout");
    user = null;
    go("/app/login");
  }

  // -- lists ---------------------------------------------------------------------------------

  function searchForm(base, member) {
    const input = h("input", { name: "member", type: "search", value: member });
    return h(
      "form",
      {
        role: "search",
        class: cls("search", "pk-search"),
        onsubmit: (e) => {
          e.preventDefault();
          const value = input.value.trim();
          go(base + (value ? "?member=" + encodeURIComponent(value) : ""));
        },
      },
      field("member", W.member_id, input),
      h("button", { type: "submit", class: cls("btn", "pk-btn") }, W.search),
    );
  }

  function pager(base, data, member) {
    const to = (n) => base + "?" + new URLSearchParams({ ...(member ? { member } : {}), page: String(n) });
    const prev = h("button", { type: "button", class: cls("btn", "pk-btn pk-btn--ghost"), disabled: data.page <= 1, onclick: () => go(to(data.page - 1)) }, W.previous);
    const next = h("button", { type: "button", class: cls("btn", "pk-btn pk-btn--ghost"), disabled: data.page >= data.pages, onclick: () => go(to(data.page + 1)) }, W.next);
    const label = h("span", { class: cls("page-label", "pk-pager__label") }, `Page ${data.page} of ${data.pages}`);
    return h("nav", { "aria-label": "Pagination", class: cls("pager", "pk-pager") }, V2 ? [label, next, prev] : [prev, label, next]);
  }

  async function listView(token, url, spec) {
    const member = url.searchParams.get("member") || "";
    const page = url.searchParams.get("page") || "1";
    const results = h("div", { class: cls("results", "pk-results") }, spinner());
    layout(h("h1", {}, spec.heading), searchForm(spec.base, member), results);
    const query = new URLSearchParams({ page, ...(member ? { member } : {}) });
    const data = await load(token, `${spec.api}?${query}`, results);
    if (data === null) return;
    if (!data.items.length) {
      return results.replaceChildren(h("p", { role: "status", class: cls("empty", "pk-empty") }, spec.empty));
    }
    results.replaceChildren(table(spec.caption, spec.headers, data.items.map(spec.row)), pager(spec.base, data, member));
  }

  function claimsView(token, url) {
    return listView(token, url, {
      heading: "Claims",
      base: "/app/claims",
      api: "/api/claims",
      caption: W.claims_table,
      empty: "No claims found",
      headers: [W.claim_number, "Service date", "Billed amount", W.status],
      row: (c) => [link(`/app/claims/${c.id}`, c.claim_number), c.service_date, c.billed, c.status],
    });
  }

  function pasView(token, url) {
    return listView(token, url, {
      heading: "Prior authorizations",
      base: "/app/pa",
      api: "/api/pas",
      caption: W.pas_table,
      empty: "No authorizations found",
      headers: [W.pa_number, "Service", W.status],
      row: (p) => [link(`/app/pa/${p.id}`, p.pa_number), p.service, p.status],
    });
  }

  // -- details -------------------------------------------------------------------------------

  function patientSection(p) {
    return h(
      "section",
      { "aria-label": "Patient", class: cls("card", "pk-card") },
      h("h2", {}, "Patient"),
      h("dl", {}, item("patient-name", "Patient name", p.name), item("member-id", "Member ID", p.member_id), item("dob", "Date of birth", p.date_of_birth)),
    );
  }

  function section(label, heading, items) {
    return h("section", { "aria-label": label, class: cls("card", "pk-card") }, h("h2", {}, heading), h("dl", {}, V2 ? [items[items.length - 1], ...items.slice(0, -1)] : items));
  }

  function sideBySide(first, second) {
    return V2 ? [h("div", { class: "pk-grid" }, second, first)] : [first, second];
  }

  async function claimView(token, id) {
    const main = layout(spinner());
    const c = await load(token, `/api/claims/${id}`, main);
    if (c === null) return;
    const claim = section("Claim", "Claim details", [
      item("claim-number", W.claim_number, c.claim_number),
      item("service-date", "Service date", c.service_date),
      item("billed", "Billed amount", c.billed),
      item("paid", "Paid amount", c.paid),
      item("patient-responsibility", "Patient responsibility", c.patient_responsibility),
      item("status", W.status, c.status),
    ]);
    const columns = ["Code type", "Group", "Code", "Description", "Amount"];
    const codes = c.codes.length
      ? table(W.codes, columns, c.codes.map((x) => [x.type, x.group, x.code, x.description || "", x.amount]))
      : h("p", { class: cls("note", "pk-note") }, "No adjustment codes on this claim.");
    const actions = c.appealable
      ? button(W.file_appeal, { onclick: () => openAppeal(c) })
      : h("p", { class: cls("note", "pk-note") }, "Appeals can be filed once the claim is finalized.");
    main.replaceChildren(h("h1", {}, `Claim ${c.claim_number}`), ...sideBySide(patientSection(c.patient), claim), codes, h("div", { class: cls("actions", "pk-actions") }, actions));
  }

  async function paView(token, id) {
    const main = layout(spinner());
    const p = await load(token, `/api/pas/${id}`, main);
    if (p === null) return;
    const items = [
      item("pa-number", W.pa_number, p.pa_number),
      item("service", "Service", p.service),
      item("valid-from", "Valid from", p.valid_from),
      item("valid-to", "Valid to", p.valid_to),
    ];
    if (p.reason) items.push(item("reason", "Decision reason", p.reason));
    items.push(item("status", W.status, p.status));
    main.replaceChildren(h("h1", {}, `Authorization ${p.pa_number}`), ...sideBySide(patientSection(p.patient), section("Authorization", "Authorization details", items)));
  }

  // -- appeals -------------------------------------------------------------------------------

  async function appealsView(token, url) {
    const reference = url.searchParams.get("reference") || "";
    const input = h("input", { name: "reference", type: "search", value: reference });
    const results = h("div", { class: cls("results", "pk-results") });
    const form = h(
      "form",
      {
        role: "search",
        class: cls("search", "pk-search"),
        onsubmit: (e) => {
          e.preventDefault();
          go("/app/appeals?reference=" + encodeURIComponent(input.value.trim()));
        },
      },
      field("history-reference", W.history_reference, input),
      h("button", { type: "submit", class: cls("btn", "pk-btn") }, W.search),
    );
    layout(h("h1", {}, "Appeals"), form, results);
    if (!reference) return results.replaceChildren(h("p", {}, "Search your appeals by the reference you gave them."));
    results.replaceChildren(spinner());
    const data = await load(token, "/api/appeals?reference=" + encodeURIComponent(reference), results);
    if (data === null) return;
    if (!data.items.length) return results.replaceChildren(h("p", { role: "status", class: cls("empty", "pk-empty") }, "No appeals found"));
    results.replaceChildren(
      table(W.history_table, [W.appeal_number, W.history_reference, W.claim_number, "Received"], data.items.map((a) => [a.appeal_number, a.reference, a.claim_number, a.received])),
    );
  }

  function openAppeal(c) {
    const titleId = uid("appeal-title");
    const messages = h("div", { class: cls("dialog-messages", "pk-messages") });
    const busy = h("div", { class: cls("dialog-busy", "pk-busy") });
    const reason = h("select", { name: "reason" }, h("option", { value: "" }, "Choose a reason"), CONFIG.reasons.map(([value, label]) => h("option", { value }, label)));
    // the review type, the denial, the member, the care and the provider (CONFIG.fields: name, required)
    const level = h("select", { name: "level" }, h("option", { value: "" }, "Choose a review type"), CONFIG.levels.map(([value, label]) => h("option", { value }, label)));
    const inputs = { level };
    for (const [name] of CONFIG.fields) {
      if (name === "level") continue;
      const type = name === "denial_date" || name.startsWith("service_") ? "date" : "text";
      inputs[name] = h("input", { name, type, inputmode: name === "disputed_amount" ? "decimal" : null });
    }
    const limit = h("div", { class: cls("filing-limit", "pk-limit") });
    const explanation = h("textarea", { name: "explanation", rows: 4 });
    const reference = h("input", { name: "reference", type: "text", maxlength: 40 });
    const letter = h("input", { name: "letter", type: "file", accept: "application/pdf,.pdf" });
    const attachments = h("input", { name: "attachments", type: "file", multiple: true });
    const attached = h("ul", { "aria-label": "Attached files", class: cls("attached", "pk-attached") });
    let letterOk = false;
    let step = 1;

    // BluePeak's filing limit, checked as soon as the review type and the date of denial are known
    function withinLimit() {
      limit.replaceChildren();
      const chosen = CONFIG.levels.find(([value]) => value === level.value);
      const denied = Date.parse(inputs.denial_date.value); // YYYY-MM-DD, read as UTC
      if (!chosen || Number.isNaN(denied)) return true;
      const days = chosen[2];
      const today = Date.parse(new Date().toISOString().slice(0, 10));
      if ((today - denied) / 86400000 > days) {
        limit.append(h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, CONFIG.late.replace("{days}", days)));
        return false;
      }
      const by = new Date(denied + days * 86400000).toLocaleDateString("en-US", { month: "short", day: "2-digit", year: "numeric", timeZone: "UTC" });
      limit.append(h("p", { class: cls("note", "pk-note") }, `File by ${by}`));
      return true;
    }
    for (const event of ["input", "change"]) {
      level.addEventListener(event, withinLimit);
      inputs.denial_date.addEventListener(event, withinLimit);
    }

    letter.addEventListener("change", async () => {
      messages.replaceChildren();
      attached.replaceChildren();
      letterOk = false;
      const file = letter.files[0];
      if (!file) return;
      const head = await file.slice(0, 5).text();
      if (head !== "%PDF-") {
        return messages.replaceChildren(h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, "The appeal letter must be a PDF file"));
      }
      letterOk = true;
      attached.append(h("li", {}, `${file.name} attached`));
    });

    const close = () => overlay.remove();
    const submit = h("button", { type: "submit", class: cls("btn", "pk-btn pk-btn--primary") }, RENAMED ? W.continue : W.submit_appeal);
    const cancel = h("button", { type: "button", class: cls("btn btn-secondary", "pk-btn pk-btn--ghost"), onclick: close }, W.cancel);
    const refField = field("reference", W.reference, reference);
    const fields = [
      field("reason", W.reason, reason),
      field("explanation", W.explanation, explanation),
      RENAMED ? null : refField,
      field("letter", W.letter, letter),
      attached,
      field("attachments", W.attachments, attachments),
    ];
    if (V2) fields.unshift(fields.splice(1, 1)[0]); // explanation first
    fields.unshift(...CONFIG.fields.map(([name]) => field(name, W[name], inputs[name])), limit);
    const body = h("div", { class: cls("dialog-body", "pk-dialog__body") }, fields);

    function problems() {
      const out = [];
      for (const [name, required] of CONFIG.fields) {
        if (step === 1 && required && !inputs[name].value.trim()) out.push(`${W[name]} is required`);
      }
      if (step === 1 && !withinLimit()) out.push("This appeal cannot be sent after the filing limit");
      if (step === 1 && !reason.value) out.push("Choose a reason for the appeal");
      if (step === 1 && !explanation.value.trim()) out.push("Enter an explanation");
      if (step === 1 && !letterOk) out.push("Attach the appeal letter as a PDF file");
      if ((!RENAMED || step === 2) && !reference.value.trim()) out.push("Enter your reference");
      return out;
    }

    async function send() {
      const form = new FormData();
      form.set("claim", c.id);
      form.set("reason", reason.value);
      form.set("explanation", explanation.value);
      form.set("reference", reference.value);
      for (const [name] of CONFIG.fields) form.set(name, inputs[name].value);
      form.set("letter", letter.files[0]);
      for (const file of attachments.files) form.append("attachments", file);
      submit.disabled = true;
      busy.replaceChildren(spinner("Sending"));
      const result = await api("POST", "/api/appeals", form);
      busy.replaceChildren();
      submit.disabled = false;
      if (result.kind === "ok") {
        close();
        return toast(`${W.appeal_submitted} ${W.appeal_number}: ${result.data.appeal_number}`);
      }
      if (result.kind === "problem" && result.status !== 401) {
        return messages.replaceChildren(h("p", { role: "alert", class: cls("error", "pk-alert pk-alert--error") }, result.message));
      }
      failed(result, messages);
    }

    const form = h(
      "form",
      {
        class: cls("dialog-form", "pk-dialog__form"),
        onsubmit: (e) => {
          e.preventDefault();
          const found = problems();
          if (found.length) return messages.replaceChildren(...found.map((text) => h("p", { role: "alert", class: cls("error", "pk-alert") }, text)));
          messages.replaceChildren();
          if (RENAMED && step === 1) {
            step = 2; // the renamed portal asks for the reference on a second step
            body.replaceChildren(refField);
            submit.textContent = W.submit_appeal;
            return reference.focus();
          }
          send();
        },
      },
      body,
      messages,
      busy,
      h("div", { class: cls("dialog-actions", "pk-dialog__actions") }, V2 ? [cancel, submit] : [submit, cancel]),
    );
    const dialog = h(
      "div",
      { role: "dialog", "aria-modal": "true", "aria-labelledby": titleId, class: cls("dialog", "pk-dialog") },
      h("h2", { id: titleId }, W.file_appeal),
      h("p", {}, `Claim ${c.claim_number}`),
      form,
    );
    const overlay = h("div", { class: cls("overlay", "pk-overlay") }, dialog);
    root.append(overlay);
    level.focus();
  }

  route();
})();
