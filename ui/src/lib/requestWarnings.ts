/**
 * Display-safety warnings for a request: Rust's typed findings (over every string of the signed claims) first, in
 * words, then what the UI finds in the fields it displays, unless Rust already reported the same kind of finding for
 * the same field: one finding is reported once, not once by each side.
 */
import type { RequestDetail } from "../bindings/RequestDetail";
import type { Warning } from "../bindings/Warning";
import { codePointLabel, findingsFor, type FieldFinding } from "./display";
import { offscreenWarnings, VISIBLE_COLUMNS } from "./offscreen";

/** A displayed field: its label, its text, and where it comes from in the claims (null: not from the request). */
type Field = [label: string, value: string | null, path: string | null];

/** A finding of Rust's in words (the words the CLI prints). */
export function warningText(w: Warning): string {
  switch (w.kind) {
    case "hidden":
      return `${w.path} contains hidden or bidirectional control characters: ${w.codePoints.map(codePointLabel).join(", ")}`;
    case "hiddenKey":
      return `${w.path}: a key contains invisible or bidirectional control characters`;
    case "mixedScript":
      return `${w.path} mixes ${w.scripts.join(" and ")} letters (look-alike characters)`;
  }
}

/** Whether Rust reported a finding of this kind for the field at `path` (for arguments: anywhere inside them). */
function rustReported(warnings: Warning[], path: string, kind: FieldFinding["kind"], inside: boolean): boolean {
  return warnings.some(
    (w) =>
      (w.path === path && w.kind === kind) ||
      // Inside arguments, a hidden key counts as hidden characters of the arguments.
      (inside &&
        kind === "hidden" &&
        (w.kind === "hidden" || w.kind === "hiddenKey") &&
        (w.path.startsWith(path + ".") || w.path.startsWith(path + "["))),
  );
}

/** `columns`: how many characters of an arguments line the window shows (see `columnsFor`). */
export function requestWarnings(d: RequestDetail, columns = VISIBLE_COLUMNS): string[] {
  const s = d.summary;
  const fields: Field[] = [
    ["workload", s.workload, "request.identity.workload"],
    ["agent", s.agent, "request.identity.display"],
    ["purpose code", s.purposeCode, "request.purpose.code"],
    ["purpose", s.purposeStatement, "request.purpose.statement"],
    ["system", s.system, "request.target.system"],
    ["environment", s.environment, "request.target.environment"],
    ["enforcement point", s.epName, null],
    ["credential", d.credentialKind, "request.identity.credential.kind"],
    ["policy reason", d.policyReason, "request.policy.reason"],
  ];
  s.categories.forEach((c, i) => fields.push([`category ${i + 1}`, c, `request.data.categories[${i}]`]));
  d.onBehalfOf.forEach((p, i) => {
    fields.push([`on behalf of ${i + 1}`, p.sub, `request.identity.on_behalf_of[${i}].sub`]);
    fields.push([`on behalf of ${i + 1} (display)`, p.display, `request.identity.on_behalf_of[${i}].display`]);
  });
  for (const a of d.actions) {
    const n = a.index + 1;
    const at = `request.actions[${a.index}]`;
    fields.push([`step ${n} tool`, a.tool, `${at}.tool`]);
    fields.push([`step ${n} operation`, a.operation, `${at}.operation`]);
    fields.push([`step ${n} target`, a.target, `${at}.target`]);
    fields.push([`step ${n} arguments`, a.argsJson, `${at}.args`]);
    a.datatypes.forEach((t, j) => fields.push([`step ${n} datatype`, t, `${at}.datatypes[${j}]`]));
  }
  const out = d.warnings.map(warningText);
  for (const [label, value, path] of fields) {
    if (!value) continue;
    const inside = path !== null && path.endsWith(".args");
    for (const f of findingsFor(label, value)) {
      // Rust does not look for look-alike letters inside arguments, nor decode smuggled text: those findings stand.
      const covered =
        f.kind !== "smuggled" &&
        path !== null &&
        !(inside && f.kind === "mixedScript") &&
        rustReported(d.warnings, path, f.kind, inside);
      if (!covered && !out.includes(f.text)) out.push(f.text);
    }
  }
  // Arguments pushed out of sight (padding, long lines, keys far down) — only the window knows its view.
  for (const a of d.actions) out.push(...offscreenWarnings(`step ${a.index + 1} arguments`, a.argsJson, columns));
  return out;
}
