/**
 * Display safety for attacker-controlled text.
 *
 * Every string in a step-up request comes from an agent. Before it reaches the screen, invisible and
 * bidirectional control characters are replaced by a visible marker (`⟦U+202E⟧`) so that what the approver
 * reads is what the agent sent, and identifiers mixing scripts (a Cyrillic `а` inside a Latin tool name) are
 * flagged. This module is pure: no DOM, so it is unit-tested in isolation. Components render the
 * `segments` it returns through text interpolation only.
 */

/** Code points that change how text looks or reads without being visible themselves. */
const NAMED: ReadonlyMap<number, string> = new Map([
  [0x00ad, "SOFT HYPHEN"],
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
  [0xfeff, "ZERO WIDTH NO-BREAK SPACE"],
]);

/** True for a code point that must never reach the screen raw. Tab, LF and CR are ordinary layout. */
export function isHidden(cp: number): boolean {
  if (NAMED.has(cp)) return true;
  if (cp < 0x20) return cp !== 0x09 && cp !== 0x0a && cp !== 0x0d;
  if (cp >= 0x7f && cp <= 0x9f) return true; // DEL and C1 controls
  if (cp >= 0xfff9 && cp <= 0xfffb) return true; // interlinear annotation controls
  if (cp >= 0xe0000 && cp <= 0xe007f) return true; // tag characters (invisible "ASCII smuggling")
  return false;
}

export function codePointLabel(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}

export function codePointName(cp: number): string {
  return NAMED.get(cp) ?? (cp >= 0xe0000 ? "TAG CHARACTER" : "CONTROL CHARACTER");
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

/**
 * Human-readable warnings for one displayed field, e.g.
 * `tool: contains U+202E RIGHT-TO-LEFT OVERRIDE` or `tool: “pаypal” mixes Latin and Cyrillic letters`.
 * The token is passed through `visible` so the warning itself is safe to show.
 */
export function warningsFor(label: string, text: string): string[] {
  const out: string[] = [];
  for (const cp of hiddenCodePoints(text)) {
    out.push(`${label}: contains ${codePointLabel(cp)} ${codePointName(cp)}`);
  }
  for (const m of mixedScripts(text)) {
    out.push(`${label}: “${visible(m.token)}” mixes ${m.scripts.join(" and ")} letters`);
  }
  return out;
}

/** True if a string would need a marker or a mixed-script flag. */
export function isSuspicious(text: string): boolean {
  return hiddenCodePoints(text).length > 0 || mixedScripts(text).length > 0;
}
