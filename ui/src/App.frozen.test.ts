/**
 * main.ts freezes Object, Array and Function prototypes before mounting. This file (its own worker, so the
 * freeze does not leak into other tests) runs the real entry point under that freeze and drives the app.
 */
import { fireEvent, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import { detail, summary } from "./test/fixtures";

describe("the app with frozen prototypes", () => {
  it("mounts from main.ts, lists, opens and decides", async () => {
    const s = summary({ id: "f1", tier: "high", agent: "<img src=x onerror=alert(1)>" });
    const sent: unknown[] = [];
    const readies: unknown[] = [];
    mockIPC((cmd, payload) => {
      switch (cmd) {
        case "list_requests":
          return { rows: [s], offset: 0, total: 1, pending: 1, nextExpiry: s.exp };
        case "get_request":
          return detail(s);
        case "decide":
          sent.push(payload);
          return { id: "f1", state: "approved", delivered: true, message: "" };
        case "ui_ready":
          readies.push(payload);
          return null;
        case "get_settings":
          return { notify_threshold: "high", notifications_paused: false };
        case "key_info":
          return {
            kid: "k1",
            fingerprint: "SHA256:abcdefghijklmnop",
            created_at: 0,
            jwk: { kty: "OKP", crv: "Ed25519", x: "k1" },
          };
        case "list_eps":
          return [];
        case "history_page":
          return { rows: [], total: 0 };
        case "history_stats":
          return { perDay: [], byClass: [], decisionSecondsP50: null, decisionSecondsP90: null, decisions: 0 };
        default:
          return null;
      }
    });
    const app = document.createElement("div");
    app.id = "app";
    document.body.appendChild(app);

    await import("./main");

    expect(Object.isFrozen(Object.prototype)).toBe(true);
    expect(Object.isFrozen(Array.prototype)).toBe(true);
    expect(Object.isFrozen(Function.prototype)).toBe(true);

    await waitFor(() => expect(screen.getAllByTestId("inbox-row")).toHaveLength(1));
    expect(screen.getByTestId("pending-count").textContent).toBe("1");
    expect(document.querySelector("img")).toBeNull();
    // The window (hidden at launch) is shown once the first inbox is drawn, and only then.
    await waitFor(() =>
      expect(readies).toEqual([{ rows: 1, renderMs: expect.any(Number), ipcMs: expect.any(Number) }]),
    );

    await fireEvent.click(screen.getByTestId("inbox-row"));
    await waitFor(() => screen.getByTestId("approve-button"));
    await fireEvent.click(screen.getByTestId("approve-button"));
    await fireEvent.input(screen.getByTestId("reason-input"), { target: { value: "fine" } });
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await fireEvent.click(screen.getByTestId("confirm-button"));
    await waitFor(() => screen.getByTestId("decision-result"));
    expect(sent).toHaveLength(1);

    for (const nav of ["nav-history", "nav-eps", "nav-key", "nav-inbox"]) {
      await fireEvent.click(screen.getByTestId(nav));
    }
    await fireEvent.click(screen.getByTestId("nav-key"));
    await waitFor(() => expect(screen.getByTestId("key-fingerprint").textContent).toContain("abcd efgh"));
  });
});
