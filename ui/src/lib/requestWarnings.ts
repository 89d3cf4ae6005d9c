/**
 * Display-safety warnings for a request: Rust's own list (over every string of the signed claims) first, then what
 * the UI finds in the fields it displays — only for fields Rust did not already flag, so one finding is reported
 * once, not once by each side.
 */
import type { RequestDetail } from "../bindings/RequestDetail";
import { warningsFor } from "./display";

/** A displayed field: its label, its text, and where it comes from in the claims (null: not from the request). */
type Field = [label: string, value: string | null, path: string | null];

export function requestWarnings(d: RequestDetail): string[] {
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
  // Rust names the path it flagged: `request.purpose.statement contains …`, `request.actions[0].args.file …`.
  const flaggedByRust = (path: string) =>
    d.warnings.some((w) => w.startsWith(path) && /^[ .[:]/.test(w.slice(path.length)));
  const out = [...d.warnings];
  for (const [label, value, path] of fields) {
    if (!value || (path !== null && flaggedByRust(path))) continue;
    for (const w of warningsFor(label, value)) if (!out.includes(w)) out.push(w);
  }
  return out;
}
