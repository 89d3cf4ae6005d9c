/** How an enforcement point's answer to a key rotation is worded on the key screen. */
import type { NamedEpRotation } from "../bindings/NamedEpRotation";

/** The answer in one word or two. */
export const RESULT_TEXT: Record<NamedEpRotation["result"], string> = {
  accepted: "Accepted",
  refused: "Refused",
  unreachable: "Unreachable",
  not_sent: "Not sent",
};

/** Why an enforcement point did not take the new key (its text is untrusted); null when it did. */
export function why(e: NamedEpRotation): string | null {
  switch (e.result) {
    case "accepted":
      return null;
    case "refused":
      return `HTTP ${e.status}: ${e.message}`;
    case "unreachable":
      return e.error;
    case "not_sent":
      return e.reason;
  }
}
