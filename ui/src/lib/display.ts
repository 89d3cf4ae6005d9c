/**
 * Display safety for attacker-controlled text.
 *
 * Every string in a step-up request comes from an agent. Before it reaches the screen, invisible and
 * bidirectional control characters are replaced by a visible marker (`⟦U+202E⟧`) so that what the approver
 * reads is what the agent sent, and identifiers mixing scripts (a Cyrillic `а` inside a Latin tool name) are
 * flagged. This module is pure: no DOM, so it is unit-tested in isolation. Components render the
 * `segments` it returns through text interpolation only.
 *
 * What counts as hidden is not decided here: `displaySafety.generated.ts` is the core's table (built in Rust from
 * Unicode properties, crates/console/src/display.rs), so the window, the CLI and the core's warnings agree.
 */

import { HIDDEN_RANGES, LAYOUT, type HiddenKind } from "./displaySafety.generated";
import type { WarningKind } from "../bindings/WarningKind";

/** Names for the hidden code points an approver is most likely to meet (labels only: the table decides). */
const NAMED: ReadonlyMap<number, string> = new Map([
  [0x0007, "BELL"],
  [0x0008, "BACKSPACE"],
  [0x000d, "CARRIAGE RETURN"],
  [0x001b, "ESCAPE"],
  [0x009b, "CONTROL SEQUENCE INTRODUCER"],
  [0x00ad, "SOFT HYPHEN"],
  [0x034f, "COMBINING GRAPHEME JOINER"],
  [0x115f, "HANGUL CHOSEONG FILLER"],
  [0x1160, "HANGUL JUNGSEONG FILLER"],
  [0x061c, "ARABIC LETTER MARK"],
  [0x180e, "MONGOLIAN VOWEL SEPARATOR"],
  [0x200b, "ZERO WIDTH SPACE"],
  [0x200c, "ZERO WIDTH NON-JOINER"],
  [0x200d, "ZERO WIDTH JOINER"],
  [0x200e, "LEFT-TO-RIGHT MARK"],
  [0x200f, "RIGHT-TO-LEFT MARK"],
  [0x2028, "LINE SEPARATOR"],
  [0x2029, "PARAGRAPH SEPARATOR"],
  [0x202a, "LEFT-TO-RIGHT EMBEDDING"],
  [0x202b, "RIGHT-TO-LEFT EMBEDDING"],
  [0x202c, "POP DIRECTIONAL FORMATTING"],
  [0x202d, "LEFT-TO-RIGHT OVERRIDE"],
  [0x202e, "RIGHT-TO-LEFT OVERRIDE"],
  [0x2060, "WORD JOINER"],
  [0x2061, "FUNCTION APPLICATION"],
  [0x2062, "INVISIBLE TIMES"],
  [0x2063, "INVISIBLE SEPARATOR"],
  [0x2064, "INVISIBLE PLUS"],
  [0x2066, "LEFT-TO-RIGHT ISOLATE"],
  [0x2067, "RIGHT-TO-LEFT ISOLATE"],
  [0x2068, "FIRST STRONG ISOLATE"],
  [0x2069, "POP DIRECTIONAL ISOLATE"],
  [0x2800, "BRAILLE PATTERN BLANK"],
  [0x3164, "HANGUL FILLER"],
  [0xfeff, "ZERO WIDTH NO-BREAK SPACE"],
  [0xffa0, "HALFWIDTH HANGUL FILLER"],
]);

/** What each kind of the generated table is called when a code point has no name of its own. */
const KIND_NAMES: Readonly<Record<HiddenKind, string>> = {
  control: "CONTROL CHARACTER",
  separator: "LINE OR PARAGRAPH SEPARATOR",
  bidi: "BIDIRECTIONAL CONTROL",
  "variation-selector": "VARIATION SELECTOR",
  tag: "TAG CHARACTER",
  format: "INVISIBLE FORMAT CHARACTER",
  ignorable: "DEFAULT IGNORABLE CHARACTER",
  blank: "BLANK CHARACTER",
  surrogate: "LONE SURROGATE",
};

/** The table's kind for a code point (binary search over the generated ranges), or null for ordinary text. */
export function hiddenKind(cp: number): HiddenKind | null {
  let lo = 0;
  let hi = HIDDEN_RANGES.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [first, last, kind] = HIDDEN_RANGES[mid];
    if (cp < first) hi = mid - 1;
    else if (cp > last) lo = mid + 1;
    else return kind;
  }
  return null;
}

/** True for a code point that must never reach the screen raw. Tab and line feed are ordinary layout. */
export function isHidden(cp: number): boolean {
  return !LAYOUT.includes(cp) && hiddenKind(cp) !== null;
}

export function codePointLabel(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}

export function codePointName(cp: number): string {
  const kind = hiddenKind(cp);
  return NAMED.get(cp) ?? (kind ? KIND_NAMES[kind] : "CHARACTER");
}

/**
 * Text smuggled in invisible characters, decoded so it can be read (the same rule as the core's `smuggled`): tag
 * characters U+E0020–E007E stand for ASCII; runs of two or more variation selectors stand for bytes (U+FE00–FE0F
 * for 0–15, U+E0100–E01EF for 16–255), read as UTF-8. Each result is passed through `visible`.
 */
export function smuggled(text: string): string[] {
  const tag = (cp: number): number | null => (cp >= 0xe0020 && cp <= 0xe007e ? cp - 0xe0000 : null);
  const selector = (cp: number): number | null =>
    cp >= 0xfe00 && cp <= 0xfe0f ? cp - 0xfe00 : cp >= 0xe0100 && cp <= 0xe01ef ? cp - 0xe0100 + 16 : null;
  const found: string[] = [];
  for (const decode of [tag, selector]) {
    let run: number[] = [];
    for (const ch of [...text, "\0"]) {
      const b = decode(ch.codePointAt(0) as number);
      if (b !== null) {
        run.push(b);
        continue;
      }
      if (run.length >= 2) {
        const decoded = new TextDecoder().decode(new Uint8Array(run));
        found.push(visible(decoded).replace(/\n/g, marker(0x0a)).replace(/\t/g, marker(0x09)));
      }
      run = [];
    }
  }
  return found;
}

/** The visible stand-in for a hidden code point. */
export function marker(cp: number): string {
  return `⟦${codePointLabel(cp)}⟧`;
}

/** A run of ordinary text, or one hidden code point shown as its marker (`hidden` holds the code point). */
export type Segment = { text: string; hidden: number | null };

/** Splits text into ordinary runs and markers; joining the `text` fields never yields a hidden code point. */
export function segments(text: string): Segment[] {
  const out: Segment[] = [];
  let run = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (isHidden(cp)) {
      if (run) out.push({ text: run, hidden: null });
      run = "";
      out.push({ text: marker(cp), hidden: cp });
    } else {
      run += ch;
    }
  }
  if (run) out.push({ text: run, hidden: null });
  return out;
}

/** The text with each hidden code point replaced by its marker. */
export function visible(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    out += isHidden(cp) ? marker(cp) : ch;
  }
  return out;
}

/** Distinct hidden code points in the text, in order of first appearance. */
export function hiddenCodePoints(text: string): number[] {
  const seen: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (isHidden(cp) && !seen.includes(cp)) seen.push(cp);
  }
  return seen;
}

/** Scripts that matter for look-alike identifiers; any other letter counts as "Other". */
const SCRIPTS: ReadonlyArray<[string, RegExp]> = [
  ["Latin", /\p{Script=Latin}/u],
  ["Cyrillic", /\p{Script=Cyrillic}/u],
  ["Greek", /\p{Script=Greek}/u],
  ["Armenian", /\p{Script=Armenian}/u],
  ["Cherokee", /\p{Script=Cherokee}/u],
  ["Hebrew", /\p{Script=Hebrew}/u],
  ["Arabic", /\p{Script=Arabic}/u],
  // Japanese and Chinese text mixes these legitimately; they count as one group.
  ["CJK", /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u],
];

function scriptOf(letter: string): string {
  for (const [name, re] of SCRIPTS) if (re.test(letter)) return name;
  return "Other";
}

/** One identifier-like token (letters, digits, `_`, `-`, `.`) whose letters come from more than one script. */
export type MixedScript = { token: string; scripts: string[] };

/**
 * Tokens mixing scripts. Hidden code points are ignored for tokenising so that `pay\u200Bpal` is still one
 * token. Pure non-Latin words (a Cyrillic sentence) are not flagged; only a mixture inside one token is.
 */
export function mixedScripts(text: string): MixedScript[] {
  const out: MixedScript[] = [];
  const cleaned = Array.from(text)
    .filter((ch) => !isHidden(ch.codePointAt(0) as number))
    .join("");
  for (const token of cleaned.match(/[\p{L}\p{M}\p{N}_.-]+/gu) ?? []) {
    const scripts: string[] = [];
    for (const ch of token) {
      // Letters shared by scripts (the Japanese long-vowel mark, combining marks) belong to none.
      if (!/\p{L}/u.test(ch) || /[\p{Script=Common}\p{Script=Inherited}]/u.test(ch)) continue;
      const s = scriptOf(ch);
      if (!scripts.includes(s)) scripts.push(s);
    }
    if (scripts.length > 1 && !out.some((m) => m.token === token)) out.push({ token, scripts });
  }
  return out;
}

/** What the window finds in one displayed field: the kind (as Rust names its own findings) and the words. */
export type FieldFinding = { kind: Exclude<WarningKind, "hiddenKey"> | "smuggled"; text: string };

/**
 * Human-readable findings for one displayed field, e.g.
 * `tool: contains U+202E RIGHT-TO-LEFT OVERRIDE` or `tool: “pаypal” mixes Latin and Cyrillic letters`.
 * The token is passed through `visible` so the warning itself is safe to show.
 */
export function findingsFor(label: string, text: string): FieldFinding[] {
  const out: FieldFinding[] = [];
  for (const cp of hiddenCodePoints(text)) {
    out.push({ kind: "hidden", text: `${label}: contains ${codePointLabel(cp)} ${codePointName(cp)}` });
  }
  for (const m of mixedScripts(text)) {
    out.push({ kind: "mixedScript", text: `${label}: “${visible(m.token)}” mixes ${m.scripts.join(" and ")} letters` });
  }
  for (const hiddenText of smuggled(text)) {
    out.push({ kind: "smuggled", text: `${label}: hides text in invisible characters: “${hiddenText}”` });
  }
  return out;
}

/** The words of `findingsFor`. */
export function warningsFor(label: string, text: string): string[] {
  return findingsFor(label, text).map((f) => f.text);
}
