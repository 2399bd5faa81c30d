// What the verification page (verify.js) and the portfolio page (portfolio.js) share, loaded
// before either: element lookup, text made visible, elements built with textContent only (never
// parsed as HTML), the message line, block times, definition-list terms and the request to the
// service.
"use strict";

const MAX_FILE_BYTES = 4 * 1024 * 1024;

function $(id) { return document.getElementById(id); }

// Control, bidirectional and invisible formatting characters, written as escapes ("\x1b",
// "\u202e"): text from a credential must not reorder or hide what the page shows (the same
// set as verify-credential's terminal output).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]/g;

function visible(text) {
  return String(text).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = visible(text);
  return node;
}

function showMessage(text) {
  const message = $("message");
  message.textContent = visible(text);
  message.hidden = false;
}

function clearOutput() {
  $("message").hidden = true;
  $("result").hidden = true;
}

// A block time (Unix seconds) in the reader's local time and in UTC; nothing for none.
function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const when = new Date(seconds * 1000);
  return `${when.toLocaleString()} (${when.toISOString().replace(".000Z", "Z")})`;
}

// A term and its value in a definition list, left out when there is no value.
function addTerm(list, term, value) {
  if (value === null || value === undefined || value === "") return;
  list.append(element("dt", "", term), element("dd", "", String(value)));
}

// POSTs ``body`` (JSON text, sent as it is) to ``url`` on this origin: the answer when the
// service answers with a report (``isReport(answer)``); otherwise null, with why on the message
// line (``what``: what could not be verified).
async function postForReport(url, body, isReport, what) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
  } catch (error) {
    showMessage(`The verification service could not be reached (${error.message}).`);
    return null;
  }
  let answer;
  try {
    answer = await response.json();
  } catch (error) {
    answer = null;
  }
  if (!response.ok || !answer || !isReport(answer)) {
    const why = answer && answer.detail ? answer.detail : `HTTP ${response.status}`;
    showMessage(`The service could not verify ${what}: ${why}`);
    return null;
  }
  return answer;
}
