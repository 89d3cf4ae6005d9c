/**
 * Display-safety warnings for a request: Rust's own list (over every string of the signed claims) first, then what
 * the UI finds in the fields it displays, unless Rust already reported the same kind of finding for the same field:
 * one finding is reported once, not once by each side.
 */
import type { RequestDetail } from "../bindings/RequestDetail";
import { warningsFor } from "./display";
import { offscreenWarnings, VISIBLE_COLUMNS } from "./offscreen";

/** A displayed field: its label, its text, and where it comes from in the claims (null: not from the request). */
type Field = [label: string, value: string | null, path: string | null];

/** `columns`: how many characters of an arguments line the window shows (see `columnsFor`). */
export function requestWarnings(d: RequestDetail, columns = VISIBLE_COLUMNS): string[] {
  const s = d.summary;
  const fields: Field[] = [
    ["workload", s.workload, "request.identity.workload"],
    ["agent", s.agent, "request.identity.display"],
    ["workload display", d.workloadDisplay, "request.identity.display"],
    ["purpose code", s.purposeCode, "request.purpose.code"],
    ["purpose", s.purposeStatement, "request.purpose.statement"],
    ["data class", s.dataClass, "request.data.class"],
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
  // Rust names the exact path and the kind of finding: `request.purpose.statement contains hidden …`,
  // `request.actions[0].args.file contains …`, `request.identity.display mixes Latin and Cyrillic …`. A UI finding is
  // dropped only when Rust reported the same kind for the same field (for arguments: for any path inside them).
  const rustSays = (path: string, kind: " contains " | " mixes ", inside: boolean) =>
    d.warnings.some(
      (w) =>
        w.startsWith(path + kind) ||
        (inside && (w.startsWith(path + ".") || w.startsWith(path + "[")) && w.includes(kind)),
    );
  const out = [...d.warnings];
  for (const [label, value, path] of fields) {
    if (!value) continue;
    const inside = path !== null && path.endsWith(".args");
    for (const w of warningsFor(label, value)) {
      const kind = w.startsWith(`${label}: contains `) ? " contains " : w.includes(" mixes ") ? " mixes " : null;
      // Rust does not look for look-alike letters inside arguments, nor decode smuggled text: those findings stand.
      const covered = kind !== null && path !== null && !(inside && kind === " mixes ") && rustSays(path, kind, inside);
      if (!covered && !out.includes(w)) out.push(w);
    }
  }
  // Arguments pushed out of sight (padding, long lines, keys far down) — only the window knows its view.
  for (const a of d.actions) out.push(...offscreenWarnings(`step ${a.index + 1} arguments`, a.argsJson, columns));
  return out;
}
