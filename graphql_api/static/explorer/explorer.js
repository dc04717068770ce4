// The ledger explorer: reads the ledger through the app's GraphQL API and statement export routes
// with the bearer token the auditor signed in with (kept in this tab's sessionStorage only).
// Every value from the server goes into the page as text (textContent), never as HTML.
"use strict";

const QUERIES = JSON.parse(document.getElementById("queries").textContent);
const ZONE = document.querySelector('meta[name="business-time-zone"]').content;
const TOKEN_KEY = "ledger-explorer-token";
const $ = (id) => document.getElementById(id);

class Refused extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

// Dates and times -------------------------------------------------------------------------------

const wallClock = new Intl.DateTimeFormat("en-CA", {
  timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23",
});

function zoneParts(ms) {
  const parts = Object.fromEntries(wallClock.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return parts;
}

// "2026-10-03 00:30:00": an instant as wall-clock time in the business time zone.
function businessTime(iso) {
  const p = zoneParts(Date.parse(iso));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// A typed business date "YYYY-MM-DD", checked; the field's label names it in the message.
function parseDay(text, label) {
  const value = text.trim();
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const [y, m, d] = match ? match.slice(1).map(Number) : [0, 0, 0];
  const utc = new Date(Date.UTC(y, m - 1, d));
  if (!match || utc.getUTCFullYear() !== y || utc.getUTCMonth() !== m - 1 || utc.getUTCDate() !== d
      || y < 1970 || y > 9998) {
    throw new Refused(`${label} must be a date YYYY-MM-DD between 1970 and 9998, got "${value}"`, "BAD_DATE");
  }
  return { y, m, d };
}

function offsetMs(ms) {
  const p = zoneParts(ms);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

// The instant a business day starts (00:00 in the business time zone), as ISO 8601 UTC.
function dayStartMs({ y, m, d }) {
  const guess = Date.UTC(y, m - 1, d);
  let ms = guess - offsetMs(guess);
  ms = guess - offsetMs(ms);
  return ms;
}
const dayStart = (day) => new Date(dayStartMs(day)).toISOString();
const nextDay = ({ y, m, d }) => {
  const t = new Date(Date.UTC(y, m - 1, d + 1));
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
};
// The last instant of a business day, to the microsecond (a balance "as of" includes that instant).
const dayClose = (day) => new Date(dayStartMs(nextDay(day)) - 1000).toISOString().replace(/\.\d{3}Z$/, ".999999Z");

// The server ------------------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function graphql(name, variables = {}, bearer = token()) {
  let response;
  try {
    response = await fetch("graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ query: QUERIES[name], operationName: name, variables }),
    });
  } catch (exc) {
    throw new Refused(`the server could not be reached (${exc.message})`, "NETWORK");
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: reported by status below */ }
  const error = body && body.errors && body.errors[0];
  if (response.status === 401) {
    throw new Refused("the token was refused: it is unknown, expired or revoked", "UNAUTHENTICATED");
  }
  if (error) {
    const code = (error.extensions && error.extensions.code) || `HTTP ${response.status}`;
    throw new Refused(error.message, code);
  }
  if (!response.ok || !body || !body.data) throw new Refused(`the server answered HTTP ${response.status}`, "HTTP");
  return body.data;
}

function showError(exc) {
  const box = $("error");
  box.textContent = exc instanceof Refused ? `${exc.message} (${exc.code})` : `Unexpected: ${exc.message}`;
  box.hidden = false;
  if (exc instanceof Refused && exc.code === "UNAUTHENTICATED") signOut(false);
}
function clearError() { $("error").hidden = true; $("error").textContent = ""; }

// Run an action of the page: clear the last error, show a new one.
function act(fn) {
  return async (event) => {
    if (event) event.preventDefault();
    clearError();
    document.body.classList.add("busy");
    try { await fn(); } catch (exc) { showError(exc); } finally { document.body.classList.remove("busy"); }
  };
}

// Tables ---------------------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
}
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(typeof c === "string" || c == null ? cell(c) : c);
  return tr;
}
const money = (text) => cell(text, "amount");

// Views ----------------------------------------------------------------------------------------

function showView(name) {
  for (const id of ["sign-in", "account", "trial-balance", "journal"]) $(id).hidden = id !== name;
  $("views").hidden = name === "sign-in";
  for (const button of document.querySelectorAll("#views [data-view]")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === name));
  }
}

async function signIn() {
  const candidate = $("token").value.trim();
  if (!candidate) throw new Refused("paste a bearer token to sign in", "NO_TOKEN");
  try {
    await graphql("ExplorerSignIn", {}, candidate);
  } catch (exc) {
    if (exc.code === "FORBIDDEN") {
      throw new Refused(`this token may not read the journal and trial balance: the explorer needs an auditor's `
                        + `token (${exc.message})`, exc.code);
    }
    throw exc;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("token").value = "";
  await enter();
}

async function enter() {
  showView("account");
  const list = $("account-codes");
  list.replaceChildren();
  let after = null;
  for (let page = 0; page < 20; page += 1) {   // up to 10,000 accounts offered; any code can be typed
    const data = await graphql("ExplorerAccounts", { after });
    for (const { node } of data.accounts.edges) {
      const option = document.createElement("option");
      option.value = node.code;
      option.textContent = `${node.name} (${node.currency})`;
      list.append(option);
    }
    if (!data.accounts.pageInfo.hasNextPage) break;
    after = data.accounts.pageInfo.endCursor;
  }
}

function signOut(clear = true) {
  sessionStorage.removeItem(TOKEN_KEY);
  // Nothing read with the token stays in the page after it.
  $("account-result").hidden = true;
  for (const id of ["balances", "statement", "trial-balance-lines", "journal-lines"]) $(id).tBodies[0].replaceChildren();
  for (const id of ["account-codes", "account-title", "account-facts", "statement-cut"]) $(id).replaceChildren();
  $("statement-summary").tBodies[0].replaceChildren();
  if (clear) clearError();
  showView("sign-in");
}

// Account: balances and the statement, page by page ---------------------------------------------

const statement = { code: null, from: null, to: null, knownAt: null, cursors: [null], page: 0, hasNext: false };

async function showAccount() {
  $("account-result").hidden = true;   // no figures of an earlier account beside a new question's error
  const code = $("account-code").value.trim();
  if (!code) throw new Refused("choose an account", "NO_ACCOUNT");
  const asOfText = $("as-of").value.trim();
  const asOf = asOfText ? dayClose(parseDay(asOfText, "Balance as of")) : null;
  const from = dayStart(parseDay($("from").value, "Statement from"));
  const to = dayStart(parseDay($("to").value, "Statement to"));
  const data = await graphql("ExplorerAccount", { code, asOf });
  const account = data.account;
  if (!account) throw new Refused(`no account with code ${code}`, "ACCOUNT_NOT_FOUND");
  $("account-title").textContent = `${account.code} — ${account.name}`;
  const facts = $("account-facts");
  facts.replaceChildren();
  for (const [term, value] of [["Type", account.type], ["Currency", account.currency],
    ["Normal side", account.normalSide], ["Holder", account.holderId || "—"], ["Status", account.status]]) {
    const dt = document.createElement("dt"); dt.textContent = term;
    const dd = document.createElement("dd"); dd.textContent = value;
    facts.append(dt, dd);
  }
  const balances = $("balances").tBodies[0];
  balances.replaceChildren(row(["Now", money(account.now.posted.formatted), money(account.now.pending.formatted),
    money(account.now.available.formatted)]));
  if (asOf) {
    balances.append(row([`As of the end of ${asOfText} (${ZONE})`, money(account.asOf.posted.formatted),
      cell("—"), cell("—")]));
  }
  Object.assign(statement, { code, from, to, knownAt: null, cursors: [null], page: 0, hasNext: false });
  await loadStatementPage(0);
  $("account-result").hidden = false;
}

async function loadStatementPage(page) {
  const s = statement;
  const data = await graphql("ExplorerStatement", { code: s.code, from: s.from, to: s.to,
    after: s.cursors[page], knownAt: s.knownAt });
  const st = data.statement;
  s.knownAt = st.knownAt;   // later pages and the files are cut where the first page was
  s.page = page;
  s.hasNext = st.entries.pageInfo.hasNextPage;
  s.cursors[page + 1] = st.entries.pageInfo.endCursor;
  $("statement-cut").textContent = `${businessTime(s.from)} to ${businessTime(s.to)} (${ZONE}, end exclusive), `
    + `as known at ${businessTime(st.knownAt)}`;
  $("statement-summary").tBodies[0].replaceChildren(row([money(st.opening.formatted),
    money(st.totalDebits.formatted), money(st.totalCredits.formatted), money(st.closing.formatted)]));
  const body = $("statement").tBodies[0];
  body.replaceChildren();
  for (const { node } of st.entries.edges) {
    const e = node.entry;
    body.append(row([businessTime(e.effectiveAt), e.transaction.id, e.transaction.kind, e.transaction.description,
      money(e.side === "DEBIT" ? e.amount.formatted : ""), money(e.side === "CREDIT" ? e.amount.formatted : ""),
      money(node.runningBalance.formatted)]));
  }
  if (!st.entries.edges.length) body.append(row([cell("No entries in this period.", "empty")]));
  $("statement-page").textContent = `Page ${page + 1}`;
  $("statement-previous").disabled = page === 0;
  $("statement-next").disabled = !s.hasNext;
}

async function download(format) {
  const s = statement;
  const query = new URLSearchParams({ from: s.from, to: s.to, knownAt: s.knownAt });
  const response = await fetch(`statements/${encodeURIComponent(s.code)}.${format}?${query}`,
    { headers: { Authorization: `Bearer ${token()}` } });
  if (!response.ok) {
    let message = `the ${format.toUpperCase()} could not be made (HTTP ${response.status})`;
    try {
      const body = await response.json();
      const error = body.error || (body.errors && body.errors[0]);
      if (error) message = error.message;
    } catch { /* the status says it */ }
    throw new Refused(message, response.status === 401 ? "UNAUTHENTICATED" : `HTTP ${response.status}`);
  }
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || `statement.${format}`;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

// Trial balance ---------------------------------------------------------------------------------

async function showTrialBalance() {
  $("trial-balance-lines").hidden = true;
  $("trial-balance-status").textContent = "";
  const asOfText = $("trial-balance-as-of").value.trim();
  const asOf = asOfText ? dayClose(parseDay(asOfText, "Trial balance as of")) : null;
  const tb = (await graphql("ExplorerTrialBalance", { asOf })).trialBalance;
  $("trial-balance-status").textContent = `${asOf ? `As of the end of ${asOfText} (${ZONE})` : "Now"}: `
    + (tb.balanced ? "balanced, debits equal credits in every currency." : "NOT balanced.");
  const body = $("trial-balance-lines").tBodies[0];
  body.replaceChildren();
  for (const line of tb.lines) {
    body.append(row([line.accountCode, line.account.name,
      money(line.debit.amount !== "0" ? line.debit.formatted : ""),
      money(line.credit.amount !== "0" ? line.credit.formatted : "")]));
  }
  $("trial-balance-lines").hidden = false;
  const foot = $("trial-balance-lines").tFoot;
  foot.replaceChildren();
  for (const total of tb.totals) {
    foot.append(row([`Total ${total.currency}`, total.balanced ? "balanced" : "NOT balanced",
      money(total.debits.formatted), money(total.credits.formatted)]));
  }
}

// Journal ---------------------------------------------------------------------------------------

const journal = { cursors: [null], page: 0 };

async function loadJournalPage(page) {
  const data = (await graphql("ExplorerJournal", { after: journal.cursors[page] })).journal;
  journal.page = page;
  journal.cursors[page + 1] = data.pageInfo.endCursor;
  const body = $("journal-lines").tBodies[0];
  body.replaceChildren();
  for (const { node } of data.edges) {
    const entries = document.createElement("td");
    for (const e of node.entries) {
      const line = document.createElement("div");
      line.textContent = `${e.side === "DEBIT" ? "Dr" : "Cr"} ${e.account.code} (${e.account.name}) ${e.amount.formatted}`;
      entries.append(line);
    }
    body.append(row([node.id, businessTime(node.effectiveAt), businessTime(node.recordedAt), node.kind,
      node.description, entries]));
  }
  if (!data.edges.length) body.append(row([cell("No more transactions.", "empty")]));
  $("journal-page").textContent = `Page ${page + 1}`;
  $("journal-first").disabled = page === 0;
  $("journal-next").disabled = !data.pageInfo.hasNextPage;
}

// Wiring ---------------------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", act(signIn));
$("sign-out").addEventListener("click", () => signOut());
$("account-form").addEventListener("submit", act(showAccount));
$("statement-next").addEventListener("click", act(() => loadStatementPage(statement.page + 1)));
$("statement-previous").addEventListener("click", act(() => loadStatementPage(statement.page - 1)));
$("download-csv").addEventListener("click", act(() => download("csv")));
$("download-pdf").addEventListener("click", act(() => download("pdf")));
$("trial-balance-form").addEventListener("submit", act(showTrialBalance));
$("journal-first").addEventListener("click", act(() => loadJournalPage(0)));
$("journal-next").addEventListener("click", act(() => loadJournalPage(journal.page + 1)));
for (const button of document.querySelectorAll("#views [data-view]")) {
  button.addEventListener("click", act(async () => {
    showView(button.dataset.view);
    if (button.dataset.view === "trial-balance") await showTrialBalance();
    if (button.dataset.view === "journal") await loadJournalPage(0);
  }));
}

(function start() {
  // Fetch the CJK font before any name is drawn, rather than when the first one is.
  document.fonts.load('1em "Ledger Kai"', "张").catch(() => {});
  const today = zoneParts(Date.now());
  $("from").value = `${today.year}-${today.month}-01`;
  const tomorrow = nextDay({ y: +today.year, m: +today.month, d: +today.day });
  $("to").value = `${tomorrow.y}-${String(tomorrow.m).padStart(2, "0")}-${String(tomorrow.d).padStart(2, "0")}`;
  if (token()) act(enter)(); else showView("sign-in");
}());
