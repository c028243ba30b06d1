// The card reveal page's script, compiled for the browser (npm run build:web). It makes the AES-256 session
// key with WebCrypto, spends the reveal session once, verifies the signature before decrypting (through the
// shared client module), and shows the fields. Card data is written with textContent only and never leaves
// the frame: the parent receives events (ready, revealed, copied, expired, error{code}) and only at the
// session's target origin.
import {
  createSessionKey,
  importSigningKey,
  importWrapKey,
  openRevealedData,
  type PublishedKey,
  type RevealedData,
  SecureDataError,
} from "../../src/client/secure-data.js";

type Field = "pan" | "cvv" | "expiry" | "pin";

interface SessionState {
  id: string;
  fields: Field[];
  expiresAt: string;
  keys: PublishedKey[];
}

interface SecureDataAnswer {
  fields: Field[];
  iv: string;
  encryptedPayload: string;
  signatureOfPayloadAndIv: string;
  wrapKeyId: string;
  signingKeyId: string;
}

/** What the page reports; the parent keys its handling on `code`. */
type ErrorCode =
  | "expired"
  | "already_used"
  | "card_blocked"
  | "card_closed"
  | "secret_blocked"
  | "card_not_found"
  | "invalid_session"
  | "network_error"
  | "rate_limited"
  | "signature_invalid"
  | "copy_failed"
  | "unavailable";

const messages: Record<ErrorCode, [string, string]> = {
  expired: ["This link has expired", "For your security it only worked for a few minutes. Request it again."],
  already_used: [
    "These details were already shown",
    "Each link shows your card details only once. Request them again to see them.",
  ],
  card_blocked: ["This card is blocked", "Its details can't be shown while the card is blocked."],
  card_closed: ["This card is closed", "The details of a closed card can no longer be shown."],
  secret_blocked: [
    "These details are locked",
    "Too many wrong entries locked your CVV or PIN. Contact your card provider to unlock it.",
  ],
  card_not_found: ["Card not found", "This card no longer exists."],
  invalid_session: ["This link isn't valid", "Request your card details again."],
  network_error: [
    "We couldn't reach the server",
    "Check your connection, then request your card details again.",
  ],
  rate_limited: ["Too many attempts", "Wait a moment, then request your card details again."],
  signature_invalid: [
    "The details could not be verified",
    "They were not shown. Request your card details again.",
  ],
  copy_failed: ["Copy didn't work", "Select the number and copy it by hand."],
  unavailable: ["Something went wrong on our side", "Please try again in a moment."],
};

/** API problem codes → the page's codes. */
const problemCodes: Record<string, ErrorCode> = {
  reveal_session_expired: "expired",
  reveal_session_used: "already_used",
  reveal_session_invalid: "invalid_session",
  card_blocked: "card_blocked",
  card_closed: "card_closed",
  cvv_blocked: "secret_blocked",
  pin_blocked: "secret_blocked",
  card_not_found: "card_not_found",
  rate_limited: "rate_limited",
};

const labels: Record<Field, string> = {
  pan: "Card number",
  expiry: "Expiry",
  cvv: "CVV",
  pin: "PIN",
};

class RevealError extends Error {
  constructor(readonly code: ErrorCode) {
    super(code);
  }
}

const targetOrigin =
  document.querySelector<HTMLMetaElement>('meta[name="cardvault-target-origin"]')?.content ?? "";
const params = new URLSearchParams(location.search);
// The token arrives in the fragment (never sent to a server); drop it from the address at once.
const token = location.hash.slice(1);
history.replaceState(null, "", `${location.pathname}${location.search}`);

let finished = false;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

function post(type: string, data: Record<string, unknown> = {}): void {
  // Only the embedding origin the session names may hear from the page; no origin, no message.
  if (targetOrigin === "" || window.parent === window) return;
  window.parent.postMessage({ source: "cardvault-reveal", type, ...data }, targetOrigin);
}

function byId(id: string): HTMLElement {
  return document.getElementById(id)!;
}

function fail(code: ErrorCode): void {
  if (finished) return;
  finished = true;
  if (expiryTimer !== undefined) clearTimeout(expiryTimer);
  const [title, detail] = messages[code];
  byId("status").hidden = true;
  byId("fields").hidden = true;
  byId("problem-title").textContent = title;
  byId("problem-detail").textContent = detail;
  byId("problem").hidden = false;
  document.body.dataset.state = "error";
  document.body.dataset.error = code;
  if (code === "expired") post("expired");
  post("error", { code });
}

/** Host styling: each value must be something CSS itself accepts for that property, else it is ignored. */
function applyStyle(): void {
  const root = document.documentElement.style;
  const colours: Record<string, string> = {
    color: "--cv-color",
    background: "--cv-background",
    accent: "--cv-accent",
    muted: "--cv-muted",
    error: "--cv-error",
  };
  for (const [param, variable] of Object.entries(colours)) {
    const value = params.get(param);
    if (value && value.length <= 64 && CSS.supports("color", value)) root.setProperty(variable, value);
  }
  const font = params.get("font");
  // Names of fonts the device has; no web font is ever fetched (the CSP allows no font source).
  if (font && /^[\w\s,'"-]{1,120}$/.test(font) && CSS.supports("font-family", font)) {
    root.setProperty("--cv-font", font);
  }
  const size = Number(params.get("fontSize"));
  if (Number.isInteger(size) && size >= 10 && size <= 32) root.setProperty("--cv-font-size", `${size}px`);
  const radius = Number(params.get("radius"));
  if (params.has("radius") && Number.isInteger(radius) && radius >= 0 && radius <= 32) {
    root.setProperty("--cv-radius", `${radius}px`);
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      headers: { ...init.headers, authorization: `RevealSession ${token}` },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new RevealError("network_error");
  }
  if (response.ok) return (await response.json()) as T;
  let code: string | undefined;
  try {
    code = ((await response.json()) as { code?: string }).code;
  } catch {
    // Not a problem document (a proxy's error page): fall through to the generic code.
  }
  throw new RevealError(
    problemCodes[code ?? ""] ?? (response.status >= 500 ? "unavailable" : "invalid_session"),
  );
}

function formatPan(pan: string): string {
  return pan.replace(/(\d{4})(?=\d)/g, "$1 ");
}

function formatExpiry(expiryDate: string): string {
  const [year, month] = expiryDate.split("-");
  return `${month}/${year?.slice(2)}`;
}

function displayOf(field: Field, data: RevealedData): { shown: string; copied: string } | undefined {
  switch (field) {
    case "pan":
      return data.PAN === undefined ? undefined : { shown: formatPan(data.PAN), copied: data.PAN };
    case "cvv":
      return data.CVV === undefined ? undefined : { shown: data.CVV, copied: data.CVV };
    case "expiry":
      return data.expiryDate === undefined
        ? undefined
        : { shown: formatExpiry(data.expiryDate), copied: formatExpiry(data.expiryDate) };
    case "pin":
      return data.PIN === undefined ? undefined : { shown: data.PIN, copied: data.PIN };
  }
}

function render(fields: Field[], data: RevealedData): void {
  const list = byId("fields");
  for (const field of fields) {
    const value = displayOf(field, data);
    const term = document.createElement("dt");
    term.textContent = labels[field];
    const detail = document.createElement("dd");
    detail.className = field;
    detail.dataset.field = field;
    list.append(term, detail);
    if (!value) {
      detail.classList.add("unavailable");
      detail.textContent = "Not available for this card";
      list.append(document.createElement("span"));
      continue;
    }
    detail.textContent = value.shown;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.dataset.copy = field;
    button.textContent = "Copy";
    button.setAttribute("aria-label", `Copy ${labels[field]}`);
    button.addEventListener("click", () => {
      navigator.clipboard.writeText(value.copied).then(
        () => {
          button.textContent = "Copied";
          setTimeout(() => {
            button.textContent = "Copy";
          }, 1500);
          post("copied", { field });
        },
        () => post("error", { code: "copy_failed" satisfies ErrorCode }),
      );
    });
    list.append(button);
  }
  byId("status").hidden = true;
  list.hidden = false;
  document.body.dataset.state = "revealed";
}

async function reveal(): Promise<void> {
  if (!/^rvs_[A-Za-z0-9_-]{43}$/.test(token)) throw new RevealError("invalid_session");
  const session = await call<SessionState>("/reveal/api/session");
  expiryTimer = setTimeout(() => fail("expired"), Math.max(0, Date.parse(session.expiresAt) - Date.now()));
  post("ready", { fields: session.fields, expiresAt: session.expiresAt });

  const wrap = session.keys.find((k) => k.use === "wrap" && (k as { active?: boolean }).active);
  if (!wrap) throw new RevealError("unavailable");
  const { key, sessionKey } = await createSessionKey(await importWrapKey(wrap.jwk));
  const answer = await call<SecureDataAnswer>("/reveal/api/secure-data", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key, keyId: wrap.kid }),
  });
  if (finished) return;
  const signer = session.keys.find((k) => k.use === "sign" && k.kid === answer.signingKeyId);
  if (!signer) throw new RevealError("signature_invalid");
  const data = await openRevealedData(answer, sessionKey, await importSigningKey(signer.jwk));
  clearTimeout(expiryTimer);
  finished = true;
  render(answer.fields, data);
  post("revealed", { fields: answer.fields });
}

applyStyle();
reveal().catch((error: unknown) => {
  if (error instanceof RevealError) fail(error.code);
  else if (error instanceof SecureDataError) fail("signature_invalid");
  else fail("unavailable");
});
