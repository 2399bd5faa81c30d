// The verification page: reads the dropped files, sends one bundle to POST /v1/verify and
// shows the report. Nothing from the files or the report is ever parsed as HTML (only
// textContent), and the files' text is sent as it was read: the server parses it strictly
// (duplicate keys, number ranges), which JSON.parse here would not. The helpers it shares
// with the portfolio page are in page.js, loaded before it.
"use strict";

const BUNDLE_FORMAT = "microcred-anchor-bundle";
const RECEIPT_FORMAT = "microcred-anchor-receipt";

const LABELS = {
  receipt_well_formed: "Receipt is well formed",
  digest_matches: "Credential unchanged (fingerprint matches)",
  merkle_inclusion: "Credential is in the anchored batch",
  trusted_deployment: "Anchored on a trusted chain and contract",
  anchored_on_chain: "Batch is anchored on the chain, in the stated block",
  confirmations: "Enough confirmations",
  issuer_trusted_at_anchoring: "Issuer was accredited when it anchored",
  issuer_did_matches: "Credential names the issuer that anchored it",
  signature_valid: "Issuer's signature is valid",
  signing_key_registered: "Signing key is registered to the issuer",
  signing_key_trusted_at_anchoring: "Signing key was trusted when the credential was anchored",
  scope_allows_kind: "Issuer is accredited for this kind of credential",
  not_revoked: "Not revoked",
  not_suspended: "Not suspended",
  status_entries_match: "Its status entries point at its anchored status",
  status_list_matches_chain: "Published status list agrees with the chain",
  validity_period: "Within its validity period",
};
const MARKS = { passed: "✓", failed: "✗", not_checked: "?", not_applicable: "–" };
const STATUS_WORDS = {
  passed: "passed", failed: "failed", not_checked: "not checked",
  not_applicable: "does not apply",
};

// What a document is: a bundle, a receipt, or (anything else that is a JSON object) a
// credential. Throws with a message a person can act on.
function classify(name, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${name} is not JSON (${error.message}).`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${name} is not a JSON object.`);
  }
  if (value.format === BUNDLE_FORMAT) return "bundle";
  if (value.format === RECEIPT_FORMAT) return "receipt";
  return "credential";
}

// The bundle text to send, from one or two documents.
function bundleText(documents) {
  const kinds = { bundle: [], receipt: [], credential: [] };
  for (const doc of documents) kinds[classify(doc.name, doc.text)].push(doc);
  if (kinds.bundle.length === 1 && documents.length === 1) return kinds.bundle[0].text;
  if (kinds.receipt.length === 1 && kinds.credential.length === 1 && documents.length === 2) {
    return `{"format":"${BUNDLE_FORMAT}","version":2,` +
      `"credential":${kinds.credential[0].text},"receipt":${kinds.receipt[0].text}}`;
  }
  if (kinds.credential.length === 1 && documents.length === 1) {
    throw new Error("That looks like a credential on its own: drop its receipt with it.");
  }
  if (kinds.receipt.length === 1 && documents.length === 1) {
    throw new Error("That is a receipt on its own: drop the credential with it.");
  }
  throw new Error("Drop one bundle, or one credential together with its receipt " +
    `(got ${documents.length} files: ${kinds.bundle.length} bundle(s), ` +
    `${kinds.receipt.length} receipt(s), ${kinds.credential.length} other).`);
}

function evidenceOf(check, name) {
  return check && check.evidence ? check.evidence[name] : undefined;
}

function render(report) {
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  const failed = report.checks.filter((c) => c.status === "failed");
  const unchecked = report.checks.filter((c) => c.status === "not_checked");
  const verdict = $("verdict");
  verdict.replaceChildren();
  const when = report.asOf ? ` as of ${formatTime(report.asOf)}` : "";
  if (report.valid) {
    verdict.className = "verdict valid";
    verdict.append(element("strong", "", "✓ Valid credential"),
      element("span", "", `Every check passed against the blockchain${when}.`));
  } else if (failed.length) {
    verdict.className = "verdict invalid";
    const why = `Failed: ${failed.map((c) => LABELS[c.name] || c.name).join("; ")}.`;
    verdict.append(element("strong", "", `✗ Not valid${when}`), element("span", "", why));
  } else {
    // Nothing failed, but the blockchain could not be read: no verdict on the credential.
    verdict.className = "verdict invalid";
    verdict.append(element("strong", "", `? Not checked${when}`), element("span", "",
      `The blockchain could not be read, so ${unchecked.length} checks were not made. ` +
      "Try again later."));
  }

  const summary = $("summary");
  summary.replaceChildren();
  addTerm(summary, "Issuer", report.issuerName);
  addTerm(summary, "Issuer DID", report.issuerDid);
  addTerm(summary, "Registry record", report.issuerMetadataUri);
  if (report.anchoredAt) addTerm(summary, "Anchored at", formatTime(report.anchoredAt));
  addTerm(summary, "Block", evidenceOf(byName.anchored_on_chain, "block"));
  addTerm(summary, "Chain", evidenceOf(byName.trusted_deployment, "chainId"));
  addTerm(summary, "Contract", evidenceOf(byName.trusted_deployment, "contract"));
  if (report.signature) {
    addTerm(summary, "Signed with", report.signature.cryptosuite);
    addTerm(summary, "Signing key", report.signature.verificationMethod);
  } else if (report.unsignedAllowed) {
    addTerm(summary, "Signature", "none (unsigned credentials allowed)");
  }

  const list = $("checks");
  list.replaceChildren();
  for (const check of report.checks) {
    const item = element("li", `check ${check.status}`);
    item.dataset.check = check.name;
    item.dataset.status = check.status;
    const mark = element("span", "mark", MARKS[check.status] || "?");
    mark.setAttribute("aria-label", STATUS_WORDS[check.status] || check.status);
    const text = element("div", "text");
    text.append(element("span", "label", LABELS[check.name] || check.name),
      element("span", "detail", check.detail));
    item.append(mark, text);
    list.append(item);
  }
  $("result").hidden = false;
  $("verdict").scrollIntoView({ block: "start" });
}

async function verifyText(text) {
  clearOutput();
  const asOf = $("as-of").value;
  const url = asOf
    ? `v1/verify?asOf=${encodeURIComponent(new Date(asOf).toISOString())}`
    : "v1/verify";
  const answer = await postForReport(url, text, (report) => Array.isArray(report.checks),
    "this");
  if (answer) render(answer);
}

async function verifyFiles(fileList) {
  clearOutput();
  const files = Array.from(fileList);
  if (files.length === 0) return;
  const tooBig = files.find((f) => f.size > MAX_FILE_BYTES);
  if (tooBig) {
    showMessage(`${tooBig.name} is too large (${tooBig.size} bytes) to be a credential.`);
    return;
  }
  let text;
  try {
    const documents = await Promise.all(
      files.map(async (f) => ({ name: f.name, text: await f.text() })));
    text = bundleText(documents);
  } catch (error) {
    showMessage(error.message);
    return;
  }
  await verifyText(text);
}

function setUp() {
  const zone = $("drop-zone");
  const input = $("files");
  input.addEventListener("change", () => {
    verifyFiles(input.files).finally(() => { input.value = ""; });
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    verifyFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("verify-pasted").addEventListener("click", () => {
    const text = $("pasted").value.trim();
    if (!text) { showMessage("Paste a bundle first."); return; }
    try {
      if (classify("The pasted text", text) !== "bundle") {
        showMessage("Paste a whole bundle (a credential and its receipt in one document).");
        return;
      }
    } catch (error) {
      showMessage(error.message);
      return;
    }
    verifyText(text);
  });
  $("again").addEventListener("click", () => {
    clearOutput();
    $("pasted").value = "";
    window.scrollTo(0, 0);
  });
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", setUp);
