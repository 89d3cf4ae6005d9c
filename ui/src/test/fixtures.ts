import type { RequestDetail } from "../bindings/RequestDetail";
import type { RequestSummary } from "../bindings/RequestSummary";
import { nowSeconds } from "../lib/urgency";

export function summary(over: Partial<RequestSummary> = {}): RequestSummary {
  const now = nowSeconds();
  return {
    ep: "ep-1",
    epName: "payments-gw",
    id: "req-1",
    state: "pending",
    tier: "medium",
    workload: "spiffe://corp/agents/billing",
    agent: "billing-agent",
    onBehalfOf: ["alice@corp"],
    purposeCode: "refund",
    purposeStatement: "Refund order 42",
    dataClass: "confidential",
    categories: ["pci"],
    system: "stripe",
    environment: "prod",
    iat: now - 10,
    exp: now + 600,
    approvalsRequired: 1,
    bindingRequired: false,
    warningCount: 0,
    flood: false,
    ...over,
  };
}

export function detail(s: RequestSummary, over: Partial<RequestDetail> = {}): RequestDetail {
  return {
    summary: s,
    onBehalfOf: [{ sub: "alice@corp", display: "Alice" }],
    credentialKind: null,
    actions: [
      {
        index: 0,
        tool: "stripe.refund",
        operation: "create",
        target: "order/42",
        reversible: false,
        datatypes: ["pci"],
        argsJson: JSON.stringify({ amount: "12.00" }, null, 2),
      },
    ],
    policyId: "payments.refund",
    policyReason: "refund above limit",
    warnings: [],
    decision: null,
    reasonRequiredToApprove: false,
    digest: "sha256:abc",
    jwt: "eyJ.x.y",
    claimsJson: "{}",
    ...over,
  };
}
