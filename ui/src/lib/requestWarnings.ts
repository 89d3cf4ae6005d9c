/** Display-safety warnings for a request: Rust's own list plus what the UI finds in every displayed field. */
import type { RequestDetail } from "../bindings/RequestDetail";
import { warningsFor } from "./display";

export function requestWarnings(d: RequestDetail): string[] {
  const s = d.summary;
  const fields: Array<[string, string | null]> = [
    ["workload", s.workload],
    ["agent", s.agent],
    ["workload display", d.workloadDisplay],
    ["purpose code", s.purposeCode],
    ["purpose", s.purposeStatement],
    ["data class", s.dataClass],
    ["system", s.system],
    ["environment", s.environment],
    ["enforcement point", s.epName],
    ["credential", d.credentialKind],
    ["policy reason", d.policyReason],
  ];
  s.categories.forEach((c, i) => fields.push([`category ${i + 1}`, c]));
  d.onBehalfOf.forEach((p, i) => {
    fields.push([`on behalf of ${i + 1}`, p.sub]);
    fields.push([`on behalf of ${i + 1} (display)`, p.display]);
  });
  for (const a of d.actions) {
    const n = a.index + 1;
    fields.push([`step ${n} tool`, a.tool]);
    fields.push([`step ${n} operation`, a.operation]);
    fields.push([`step ${n} target`, a.target]);
    fields.push([`step ${n} arguments`, a.argsJson]);
    a.datatypes.forEach((t) => fields.push([`step ${n} datatype`, t]));
  }
  const out = [...d.warnings];
  for (const [label, value] of fields) {
    if (value) for (const w of warningsFor(label, value)) if (!out.includes(w)) out.push(w);
  }
  return out;
}
