import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import type { KeyInfo } from "../bindings/KeyInfo";
import type { RotationReport } from "../bindings/RotationReport";
import KeySettings from "./KeySettings.svelte";

const OLD: KeyInfo = {
  kid: "old-kid",
  fingerprint: "SHA256:oldoldoldold",
  created_at: 0,
  jwk: { kty: "OKP", crv: "Ed25519", x: "old" },
};
const NEW: KeyInfo = {
  kid: "new-kid",
  fingerprint: "SHA256:newnewnewnew",
  created_at: 1,
  jwk: { kty: "OKP", crv: "Ed25519", x: "new" },
};

function serve(report: RotationReport): string[] {
  const calls: string[] = [];
  mockIPC((cmd) => {
    calls.push(cmd);
    switch (cmd) {
      case "key_info":
        return OLD;
      case "get_settings":
        return { notify_threshold: "medium", notifications_paused: false };
      case "rotate_key":
        return report;
      default:
        return null;
    }
  });
  return calls;
}

async function rotate(report: RotationReport): Promise<HTMLElement> {
  const calls = serve(report);
  const { container } = render(KeySettings);
  await fireEvent.click(await screen.findByTestId("rotate-button"));
  await fireEvent.click(screen.getByTestId("rotate-confirm"));
  await waitFor(() => expect(screen.getByTestId("rotation-report")).toBeTruthy());
  expect(calls).toContain("rotate_key");
  return container;
}

describe("KeySettings rotation", () => {
  it("lists each enforcement point's answer and which need the new key enrolled by hand, and why", async () => {
    const hostile = "<img src=x onerror=alert(1)>";
    const container = await rotate({
      key: NEW,
      oldKid: "old-kid",
      eps: [
        { ep: "ep-a", name: "Payments", url: "https://a", result: "accepted", needsEnrolment: false },
        {
          ep: "ep-b",
          name: `<b>Evil</b>`,
          url: "https://b",
          result: "refused",
          needsEnrolment: true,
          status: 401,
          message: hostile,
        },
        {
          ep: "ep-c",
          name: "Down",
          url: "https://c",
          result: "unreachable",
          needsEnrolment: true,
          error: "connection refused",
        },
      ],
    });
    expect(screen.getByTestId("key-fingerprint").textContent).toContain("newn");
    expect(screen.getByTestId("rotation-summary").textContent).toContain("2 of 3 enforcement points did not accept");
    const items = screen.getAllByTestId("rotation-ep");
    expect(items.map((e) => [e.dataset.ep, e.dataset.result])).toEqual([
      ["ep-a", "accepted"],
      ["ep-b", "refused"],
      ["ep-c", "unreachable"],
    ]);
    expect(items[0].textContent).toContain("accepted the new key");
    expect(items[0].querySelector("[data-testid=rotation-needs-enrolment]")).toBeNull();
    for (const i of [1, 2]) expect(items[i].textContent).toContain("needs manual re-enrolment");
    const reasons = screen.getAllByTestId("rotation-reason").map((e) => e.textContent ?? "");
    expect(reasons[0]).toContain(`Refused: HTTP 401: ${hostile}`);
    expect(reasons[1]).toContain("Unreachable: connection refused");
    // The enforcement points' names and messages are text, never markup.
    expect(items[1].textContent).toContain("<b>Evil</b>");
    expect(container.querySelector("img")).toBeNull();
    expect(container.querySelector(".rotation b")).toBeNull();
  });

  it("says so when every enforcement point accepted", async () => {
    await rotate({
      key: NEW,
      oldKid: "old-kid",
      eps: [{ ep: "ep-a", name: "Payments", url: "https://a", result: "accepted", needsEnrolment: false }],
    });
    expect(screen.getByTestId("rotation-summary").textContent).toContain("Every enforcement point (1) accepted");
    expect(screen.queryAllByTestId("rotation-needs-enrolment")).toHaveLength(0);
  });
});

describe("KeySettings key and settings", () => {
  it("shows the public JWK as indented JSON text, as `countersign key export` prints it", async () => {
    serve({ key: NEW, oldKid: null, eps: [] });
    render(KeySettings);
    await fireEvent.click(await screen.findByTestId("export-jwk-button"));
    expect(screen.getByTestId("public-jwk").textContent).toBe(
      '{\n  "kty": "OKP",\n  "crv": "Ed25519",\n  "x": "old"\n}',
    );
  });

  it("saves the notification settings in the core's shape", async () => {
    const saved: unknown[] = [];
    mockIPC((cmd, args) => {
      switch (cmd) {
        case "key_info":
          return OLD;
        case "get_settings":
          return { notify_threshold: "medium", notifications_paused: false };
        case "set_settings":
          saved.push((args as { settings: unknown }).settings);
          return (args as { settings: unknown }).settings;
        default:
          return null;
      }
    });
    render(KeySettings);
    await fireEvent.click(await screen.findByTestId("pause-notifications"));
    await waitFor(() => expect(saved).toEqual([{ notify_threshold: "medium", notifications_paused: true }]));
  });
});
