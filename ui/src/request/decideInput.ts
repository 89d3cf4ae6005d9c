/** What the decide panel checks of the approver's input before asking Rust to sign (Rust checks it all again). */

/** Parses an optional positive whole number; `null`: left empty; `undefined`: the text is not one. */
export function optionalCount(text: string): number | null | undefined {
  const t = text.trim();
  if (t === "") return null;
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

/** Whether a key press lands in a text field (then it is typing, not a shortcut). */
export function isTyping(t: EventTarget | null): boolean {
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}
