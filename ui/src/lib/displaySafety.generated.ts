// Generated from crates/console/src/display.rs (Unicode properties via icu_properties); do not edit.
// Regenerate: UPDATE_BINDINGS=1 cargo test -p countersign-console-core --lib display

/** Why a code point is hidden (see `HiddenKind` in display.rs). */
export type HiddenKind =
  | "control"
  | "separator"
  | "bidi"
  | "variation-selector"
  | "tag"
  | "format"
  | "ignorable"
  | "blank"
  | "surrogate";

/** Code points a multi-line display keeps as layout (tab, line feed). */
export const LAYOUT: readonly number[] = [0x09, 0x0a];

/** Sorted, disjoint ranges [first, last, kind] of every code point to make visible. */
export const HIDDEN_RANGES: ReadonlyArray<readonly [number, number, HiddenKind]> = [
  [0x0000, 0x001f, "control"],
  [0x007f, 0x009f, "control"],
  [0x00ad, 0x00ad, "format"],
  [0x034f, 0x034f, "ignorable"],
  [0x0600, 0x0605, "format"],
  [0x061c, 0x061c, "bidi"],
  [0x06dd, 0x06dd, "format"],
  [0x070f, 0x070f, "format"],
  [0x0890, 0x0891, "format"],
  [0x08e2, 0x08e2, "format"],
  [0x115f, 0x1160, "ignorable"],
  [0x17b4, 0x17b5, "ignorable"],
  [0x180b, 0x180d, "variation-selector"],
  [0x180e, 0x180e, "format"],
  [0x180f, 0x180f, "variation-selector"],
  [0x2000, 0x200a, "blank"],
  [0x200b, 0x200d, "format"],
  [0x200e, 0x200f, "bidi"],
  [0x2028, 0x2029, "separator"],
  [0x202a, 0x202e, "bidi"],
  [0x205f, 0x205f, "blank"],
  [0x2060, 0x2064, "format"],
  [0x2065, 0x2065, "ignorable"],
  [0x2066, 0x2069, "bidi"],
  [0x206a, 0x206f, "format"],
  [0x2800, 0x2800, "blank"],
  [0x3164, 0x3164, "ignorable"],
  [0xd800, 0xdfff, "surrogate"],
  [0xfe00, 0xfe0f, "variation-selector"],
  [0xfeff, 0xfeff, "format"],
  [0xffa0, 0xffa0, "ignorable"],
  [0xfff0, 0xfff8, "ignorable"],
  [0xfff9, 0xfffb, "format"],
  [0x110bd, 0x110bd, "format"],
  [0x110cd, 0x110cd, "format"],
  [0x13430, 0x1343f, "format"],
  [0x1bca0, 0x1bca3, "format"],
  [0x1d159, 0x1d159, "blank"],
  [0x1d173, 0x1d17a, "format"],
  [0xe0000, 0xe007f, "tag"],
  [0xe0080, 0xe00ff, "ignorable"],
  [0xe0100, 0xe01ef, "variation-selector"],
  [0xe01f0, 0xe0fff, "ignorable"],
];
