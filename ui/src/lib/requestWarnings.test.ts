import { describe, expect, it } from "vitest";
import { detail, summary } from "../test/fixtures";
import { requestWarnings } from "./requestWarnings";

const RLO = "\u202E";

describe("requestWarnings", () => {
  it("reports a field Rust flagged once, in Rust's words", () => {
    const d = detail(summary({ purposeStatement: `Send the report${RLO}fdp.exe` }), {
      warnings: ["request.purpose.statement contains hidden or bidirectional control characters: U+202E"],
    });
    expect(requestWarnings(d)).toEqual([
      "request.purpose.statement contains hidden or bidirectional control characters: U+202E",
    ]);
  });

  it("matches Rust's paths inside a step's arguments", () => {
    const d = detail(summary(), {
      warnings: ["request.actions[0].args.file contains hidden or bidirectional control characters: U+202E"],
    });
    d.actions[0].argsJson = JSON.stringify({ file: `invoice${RLO}txt.exe` }, null, 2);
    expect(requestWarnings(d)).toHaveLength(1);
  });

  it("keeps a look-alike finding when Rust flagged only hidden characters, and ignores decoy paths", () => {
    const d = detail(summary({ environment: "prоd", purposeStatement: `Pay${RLO} now` }), {
      warnings: [
        "request.target.environment x contains hidden or bidirectional control characters: U+200B",
        "request.purpose.statement contains hidden or bidirectional control characters: U+202E",
      ],
    });
    const w = requestWarnings(d);
    expect(w.some((x) => x.startsWith("environment:") && x.includes("Cyrillic"))).toBe(true);
    expect(w.filter((x) => x.includes("U+202E"))).toHaveLength(1);
  });

  it("still flags what Rust did not, and text that is not from the request", () => {
    const d = detail(summary({ epName: `gate${RLO}way`, environment: "prоd" }));
    const w = requestWarnings(d);
    expect(w).toContain("enforcement point: contains U+202E RIGHT-TO-LEFT OVERRIDE");
    expect(w.some((x) => x.startsWith("environment:") && x.includes("Cyrillic"))).toBe(true);
  });
});
