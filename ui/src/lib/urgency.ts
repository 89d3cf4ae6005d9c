/** Ordering and time arithmetic for pending requests. All times are Unix seconds, as in the JWT claims. */
import type { RequestSummary } from "../bindings/RequestSummary";
import type { Tier } from "../bindings/Tier";

export const TIERS: ReadonlyArray<Tier> = ["low", "medium", "high", "critical"];

/** Needs the two-step confirmation before an approval is signed. */
export function needsSecondConfirm(t: Tier): boolean {
  return t === "high" || t === "critical";
}

/** Still decidable or still waiting for delivery, and not past its expiry. */
export function isLive(r: RequestSummary, nowS: number): boolean {
  return r.exp > nowS;
}

/** `m:ss` below an hour, `h:mm:ss` above; never negative. */
export function countdown(secondsLeft: number): string {
  const s = Math.max(0, Math.floor(secondsLeft));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function formatTime(unixS: number): string {
  return dateTime.format(new Date(unixS * 1000));
}

/** A compact local timestamp for tables: `2026-11-26 07:48:05`. */
export function formatStamp(unixS: number): string {
  const d = new Date(unixS * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `SHA256:abcd…` or bare → groups of four characters so two people can read it to each other. */
export function groupFingerprint(fp: string): string {
  // Already grouped by the core ("AbCd Ef-h …"; a space never occurs in base64url): as given.
  if (fp.includes(" ")) return fp;
  const m = /^([A-Za-z0-9-]+:)(.*)$/.exec(fp);
  const prefix = m && !/^[0-9a-fA-F]{2}:/.test(fp) ? m[1] : "";
  const body = prefix ? fp.slice(prefix.length) : fp;
  if (/^([0-9a-fA-F]{2}:)+[0-9a-fA-F]{2}$/.test(body)) return prefix + body;
  const groups = body.match(/.{1,4}/g) ?? [];
  return (prefix ? prefix + " " : "") + groups.join(" ");
}
