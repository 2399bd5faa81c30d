// The portfolio page: reads the chosen files (bundles, or one presentation), sends them to
// POST /v1/portfolios/verify on this origin and shows the report: a table of the credentials,
// a stacked bar of the ECTS counted by kind and institution, the requirement and the chain
// evidence. Nothing from the files or the report is ever parsed as HTML (only textContent),
// and the files' text is sent as it was read (the server parses it strictly). The bar's
// widths are set through the CSSOM (element.style), which the page's CSP allows; it forbids
// style attributes in markup. The helpers it shares with the verification page are in
// page.js, loaded before it.
"use strict";

const KINDS = ["formal-degree", "formal-non-degree", "non-formal"];
const KIND_WORDS = {
  "formal-degree": "formal, within a programme",
  "formal-non-degree": "formal, outside a programme",
  "non-formal": "non-formal",
};
const VERDICT_WORDS = {
  valid: "valid", not_valid: "not valid", not_checked: "not checked",
  offline_checks_passed: "offline checks passed",
};

// ECTS as people write them: at most two decimals, no trailing zeros.
function ects(value) {
  if (value === null || value === undefined) return "–";
  return String(Math.round(Number(value) * 100) / 100);
}

// The files, read here; each must be a JSON object (checked so that the message can name the
// file; the server checks them again, strictly).
async function readFiles(files) {
  const documents = [];
  for (const file of files) {
    if (file.size > MAX_FILE_BYTES) {
      throw new Error(`${file.name} is too large (${file.size} bytes) to be a credential.`);
    }
    const text = (await file.text()).replace(/^\ufeff/, "");
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new Error(`${file.name} is not JSON (${error.message}).`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(`${file.name} is not a JSON object.`);
    }
    documents.push({ name: file.name, text });
  }
  return documents;
}

// The request body: the documents' own text inside, the options as JSON.
function requestBody(documents, isPresentation) {
  const options = [];
  const recognisedBy = $("recognised-by").value.trim();
  if (recognisedBy) options.push(`"recognisedBy":${JSON.stringify(recognisedBy)}`);
  const required = $("require-ects").value.trim();
  if (required) {
    const number = Number(required);
    if (!Number.isFinite(number) || number <= 0) {
      throw new Error("Require ECTS: give a number of ECTS above 0.");
    }
    options.push(`"requireEcts":${JSON.stringify(number)}`);
    const kind = $("require-kind").value;
    if (kind) options.push(`"requireKind":${JSON.stringify(kind)}`);
  } else if ($("require-kind").value) {
    throw new Error("Choose how many ECTS of that kind are required, or any kind.");
  }
  const asOf = $("as-of").value;
  if (asOf) options.push(`"asOf":${JSON.stringify(new Date(asOf).toISOString())}`);
  const portfolio = isPresentation
    ? `"presentation":${documents[0].text}`
    : `"bundles":[${documents.map((d) => d.text).join(",")}]`;
  return `{${[portfolio, ...options].join(",")}}`;
}

function chosenFiles() {
  const presentation = Array.from($("presentation").files);
  const bundles = Array.from($("bundles").files);
  return { presentation, bundles };
}

function describeChoice() {
  const { presentation, bundles } = chosenFiles();
  const chosen = $("chosen");
  if (presentation.length) {
    chosen.textContent = visible(`Presentation: ${presentation[0].name}`);
  } else if (bundles.length) {
    chosen.textContent = visible(`${bundles.length} bundle(s): ` +
      bundles.map((f) => f.name).join(", "));
  } else {
    chosen.textContent = "No files chosen.";
  }
}

async function verifyPortfolio() {
  clearOutput();
  const { presentation, bundles } = chosenFiles();
  if (!presentation.length && !bundles.length) {
    showMessage("Choose the learner's bundles, or one presentation, first.");
    return;
  }
  const isPresentation = presentation.length > 0;
  let body;
  let names = [];
  try {
    const documents = await readFiles(isPresentation ? presentation : bundles);
    names = documents.map((d) => d.name);
    body = requestBody(documents, isPresentation);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  const answer = await postForReport("../v1/portfolios/verify", body,
    (report) => Array.isArray(report.entries), "this portfolio");
  if (answer) render(answer, isPresentation ? null : names);
}

// The name shown for an entry: the file's own name for bundles sent as "bundles[i]".
function entryName(entry, index, names) {
  const match = /^bundles\[(\d+)\]$/.exec(entry.source || "");
  if (names && match && names[Number(match[1])] !== undefined) return names[Number(match[1])];
  return entry.source || `credential ${index}`;
}

function issuerName(entry) {
  const report = entry.report || {};
  const issuer = entry.issuer || {};
  return issuer.name || report.issuerName || issuer.did || report.issuerDid || "–";
}

function verdictOf(entry) {
  if (entry.verdict) return entry.verdict;
  if (entry.report && entry.report.valid) return "valid";
  return "not_valid";
}

function recognisedText(entry, recognisedBy) {
  if (!recognisedBy) return "not asked";
  const recognition = entry.recognition;
  if (!recognition) return "–";
  if (!recognition.recognised) return "no";
  // A recognition counts only if the key that recorded it was trusted then, as a key of the
  // recogniser (the report's recorderTrust and counts); the registry's answer alone would show
  // a stolen key's record, or a record by another entity's key, as "yes".
  const trust = recognition.recorderTrust;
  if (recognition.record && !(trust && trust.trusted)) {
    return "no (recorded by an untrusted key)";
  }
  if (recognition.record && trust.entityId !== recognition.record.recogniserId) {
    return "no (recorded by a key of another entity)";
  }
  if (recognition.counts !== true) return "no";
  return recognition.path ? `yes (${recognition.path})` : "yes";
}

function countedText(entry) {
  if (entry.counted) return "counted";
  if (entry.duplicateOf !== null && entry.duplicateOf !== undefined) {
    return entry.reason || `duplicate of #${entry.duplicateOf}`;
  }
  return entry.reason || "not counted";
}

function cell(row, label, text, className) {
  const td = element("td", className, text);
  td.dataset.label = label; // shown as the cell's caption when the table becomes cards
  row.append(td);
  return td;
}

function renderTable(report, names) {
  const body = $("entries").querySelector("tbody");
  body.replaceChildren();
  report.entries.forEach((entry, index) => {
    const credits = entry.credits || {};
    const verdict = verdictOf(entry);
    const row = element("tr", entry.counted ? "counted" : "not-counted");
    row.dataset.verdict = verdict;
    row.dataset.counted = String(Boolean(entry.counted));
    cell(row, "Credential", `#${index} ${entryName(entry, index, names)}`, "name");
    cell(row, "Issuer", issuerName(entry), "issuer");
    cell(row, "Verdict", VERDICT_WORDS[verdict] || verdict, `outcome ${verdict}`);
    cell(row, "Kind", credits.kind ? credits.kind : (credits.kindProblem || "–"),
      credits.kind ? "kind" : "kind problem");
    cell(row, "ECTS", credits.ects !== null && credits.ects !== undefined
      ? ects(credits.ects) : (credits.ectsProblem || "–"),
    credits.ects !== null && credits.ects !== undefined ? "ects" : "ects problem");
    cell(row, "Recognised", recognisedText(entry, report.recognisedBy), "recognised");
    cell(row, "Counted", countedText(entry), "why");
    body.append(row);
  });
}

// One segment per (kind, institution) with ECTS counted, in kind order; widths are shares of
// the total counted, set through the CSSOM.
function renderBar(totals) {
  const bar = $("bar");
  const legend = $("legend");
  bar.replaceChildren();
  legend.replaceChildren();
  const total = Number(totals.ects || 0);
  const institutions = Array.isArray(totals.byInstitution) ? totals.byInstitution : [];
  bar.setAttribute("aria-label", `${ects(total)} ECTS counted`);
  if (!(total > 0)) {
    bar.append(element("span", "empty", "No ECTS counted."));
    return;
  }
  institutions.forEach((institution, number) => {
    for (const kind of KINDS) {
      const amount = Number((institution.byKind || {})[kind] || 0);
      if (!(amount > 0)) continue;
      const name = institution.issuerName || institution.issuerDid || `entity ${institution.entityId}`;
      const segment = element("span", `segment kind-${kind} shade-${number % 4}`);
      segment.style.width = `${(amount / total) * 100}%`;
      segment.dataset.kind = kind;
      segment.dataset.ects = String(amount);
      segment.dataset.issuer = institution.issuerDid || "";
      segment.title = visible(`${name}: ${ects(amount)} ECTS, ${KIND_WORDS[kind]}`);
      segment.append(element("span", "segment-label", ects(amount)));
      bar.append(segment);
      const item = element("li", "");
      item.append(element("span", `swatch kind-${kind} shade-${number % 4}`),
        element("span", "", `${name} · ${KIND_WORDS[kind]}: ${ects(amount)} ECTS`));
      legend.append(item);
    }
  });
}

function render(report, names) {
  const totals = report.totals || {};
  const entries = report.entries;
  const valid = entries.filter((e) => verdictOf(e) === "valid").length;
  const verdict = $("verdict");
  verdict.replaceChildren();
  const allValid = valid === entries.length;
  verdict.className = `verdict ${allValid ? "valid" : "invalid"}`;
  verdict.append(
    element("strong", "", `${ects(totals.ects || 0)} ECTS counted`),
    element("span", "", `${valid} of ${entries.length} credentials valid; ` +
      `${totals.counted !== undefined ? totals.counted : entries.filter((e) => e.counted).length}` +
      " counted."));

  const requirement = $("requirement");
  const wanted = report.requirement;
  if (wanted) {
    requirement.className = `requirement ${wanted.met ? "met" : "unmet"}`;
    requirement.textContent = visible(`${wanted.met ? "✓" : "✗"} Requirement: ${wanted.detail}`);
    requirement.hidden = false;
  } else {
    requirement.hidden = true;
  }

  renderBar(totals);
  const sums = $("totals");
  sums.replaceChildren();
  const byKind = totals.byKind || {};
  for (const kind of KINDS) addTerm(sums, KIND_WORDS[kind], `${ects(byKind[kind] || 0)} ECTS`);
  addTerm(sums, "Total", `${ects(totals.ects || 0)} ECTS`);

  renderTable(report, names);

  const evidence = $("evidence");
  evidence.replaceChildren();
  const chain = report.chain || {};
  addTerm(evidence, "Block", chain.blockNumber);
  addTerm(evidence, "Block hash", chain.blockHash);
  addTerm(evidence, "Block time", formatTime(chain.blockTime));
  addTerm(evidence, "Chain", chain.chainId);
  addTerm(evidence, "Registry", chain.registry);
  addTerm(evidence, "Anchor contract", chain.anchor);
  if (report.recognisedBy) {
    const { did, entityId } = report.recognisedBy;
    addTerm(evidence, "Recognised by", `${did} (entity ${entityId})`);
  }
  addTerm(evidence, "As of", formatTime(report.asOf));

  $("result").hidden = false;
  $("verdict").scrollIntoView({ block: "start" });
}

function setUp() {
  // One source at a time: choosing bundles clears the presentation, and the other way round.
  $("bundles").addEventListener("change", () => {
    if ($("bundles").files.length) $("presentation").value = "";
    describeChoice();
  });
  $("presentation").addEventListener("change", () => {
    if ($("presentation").files.length) $("bundles").value = "";
    describeChoice();
  });
  $("verify").addEventListener("click", () => { verifyPortfolio(); });
  $("print").addEventListener("click", () => window.print());
  $("again").addEventListener("click", () => {
    clearOutput();
    $("bundles").value = "";
    $("presentation").value = "";
    describeChoice();
    window.scrollTo(0, 0);
  });
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", setUp);
