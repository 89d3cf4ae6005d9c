/**
 * Arguments that sit beyond view. A step's arguments are shown as pretty-printed JSON in a `<pre>` that neither wraps
 * nor grows past a fixed height, so an agent can push text out of sight: a command padded with spaces so its tail
 * starts past the right edge (`ls -l` + 200 spaces + `; curl …|sh`), one very long line, or the key that matters
 * placed far down a long object. These findings say so in words, with what is out of sight, so the approver scrolls
 * before deciding. Pure: no DOM; the limits are the `<pre>`'s size in characters and lines (see RequestDetail).
 */

/** Characters of a line the arguments block shows before it must be scrolled sideways, when its width is unknown. */
export const VISIBLE_COLUMNS = 96;
/** Width of one character of the arguments block (12px monospace is about 0.6em; a wider guess warns earlier). */
const CHAR_PX = 7.3;
/** What the list of steps adds around an arguments block: step padding and borders, the block's own padding. */
const CHROME_PX = 44;

/** Characters per line of an arguments block in a list of steps `widthPx` wide (0: not laid out, the default). */
export function columnsFor(widthPx: number): number {
  return widthPx > 0 ? Math.max(20, Math.floor((widthPx - CHROME_PX) / CHAR_PX)) : VISIBLE_COLUMNS;
}
/** Lines the arguments block shows before it must be scrolled down. */
export const VISIBLE_LINES = 18;
/** Keys below the view named in the warning, at most (the warning wraps; it must not become a wall itself). */
export const MAX_KEYS_NAMED = 30;
/** A run of this many blank characters inside a value is padding, not spacing. */
export const PADDING_RUN = 8;

/**
 * Blank characters that pad: whitespace other than line breaks (the hidden ones are flagged on their own too). The
 * core's `display::padding` (what `countersign show` flags) uses the same rule.
 */
const BLANK_RUN = /[^\S\n\r\u2028\u2029]+/gu;

function walk(v: unknown, path: string, visit: (path: string, s: string) => void): void {
  if (typeof v === "string") visit(path, v);
  else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`, visit));
  else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, path ? `${path}.${k}` : k, visit);
  }
}

/** Keys of the lines (1-based line numbers) after `from` in pretty-printed JSON, in order. */
function keysBelow(json: string, from: number): string[] {
  const keys: string[] = [];
  json.split("\n").forEach((line, i) => {
    if (i < from) return;
    const m = /^\s*("(?:[^"\\]|\\.)*")\s*:/.exec(line);
    if (m) keys.push(JSON.parse(m[1]) as string);
  });
  return keys;
}

/**
 * Warnings for one step's arguments (`argsJson`, pretty-printed JSON) shown `columns` characters wide, each starting
 * with `label`. Text from the
 * request is quoted only through the caller's safe rendering (keys are returned as they are; SafeText shows them).
 */
export function offscreenWarnings(label: string, argsJson: string, columns = VISIBLE_COLUMNS): string[] {
  const out: string[] = [];
  let args: unknown;
  try {
    args = JSON.parse(argsJson);
  } catch {
    args = null;
  }
  walk(args, "", (path, s) => {
    const at = path ? ` ${path}` : "";
    for (const m of s.matchAll(BLANK_RUN)) {
      const n = [...m[0]].length;
      const start = m.index ?? 0;
      const end = start + m[0].length;
      if (end === s.length && start > 0 && n >= 2) {
        out.push(`${label}:${at} ends with ${n} blank characters`);
      } else if (start === 0 && n >= 2 && end < s.length) {
        out.push(`${label}:${at} starts with ${n} blank characters: text is pushed to the right`);
      } else if (n >= PADDING_RUN) {
        out.push(`${label}:${at} argument padded with ${n} spaces: text continues beyond view`);
      }
    }
  });
  const lines = argsJson.split("\n");
  const long = lines.filter((l) => [...l].length > columns).length;
  if (long > 0) {
    const widest = Math.max(...lines.map((l) => [...l].length));
    out.push(
      `${label}: ${long} ${long === 1 ? "line is" : "lines are"} wider than the view (up to ${widest} characters): text continues to the right`,
    );
  }
  if (lines.length > VISIBLE_LINES) {
    const more = lines.length - VISIBLE_LINES;
    const keys = keysBelow(argsJson, VISIBLE_LINES);
    const shownKeys = keys.slice(0, MAX_KEYS_NAMED).map((k) => `“${k}”`).join(", ");
    const rest = keys.length > MAX_KEYS_NAMED ? ` and ${keys.length - MAX_KEYS_NAMED} more` : "";
    const named = keys.length > 0 ? `, with keys ${shownKeys}${rest}` : "";
    out.push(`${label}: ${more} more lines below${named}: scroll the arguments to read them`);
  }
  return out;
}
