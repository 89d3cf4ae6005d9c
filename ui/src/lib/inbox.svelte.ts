/**
 * The pending requests as last fetched from Rust. Refetched on `requests-changed`; a refetch that overlaps
 * another is coalesced so a burst of events (a flood of step-ups) costs at most one extra round trip.
 */
import type { IpcError } from "../bindings/IpcError";
import type { RequestSummary } from "../bindings/RequestSummary";
import { listRequests } from "./api";
import { byUrgency } from "./urgency";

class Inbox {
  /** Sorted most urgent first. */
  requests = $state.raw<RequestSummary[]>([]);
  loaded = $state(false);
  error = $state<IpcError | null>(null);
  #inFlight: Promise<void> | null = null;
  #again = false;

  refresh(): Promise<void> {
    if (this.#inFlight) {
      this.#again = true;
      return this.#inFlight;
    }
    this.#inFlight = (async () => {
      do {
        this.#again = false;
        try {
          const list = await listRequests();
          this.requests = [...list].sort(byUrgency);
          this.error = null;
        } catch (e) {
          this.error = e as IpcError;
        }
        this.loaded = true;
      } while (this.#again);
      this.#inFlight = null;
    })();
    return this.#inFlight;
  }
}

export const inbox = new Inbox();
