//! Display safety for untrusted text (Unicode TR36): every string in a request is shown as text,
//! with control, bidirectional and invisible characters made visible and flagged.

/// Whether `c` is a bidirectional control, a zero-width/invisible character, or a control character.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' | '\u{034F}'
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
        || (c.is_control() && c != '\n')
}

/// `text` with every hidden character replaced by a visible `<U+XXXX>`, and whether any was found.
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

/// [`visible`] for a one-line display (a terminal table row, a log line): newlines are marked too,
/// so text from a request can never start a line of its own.
pub fn visible_line(text: &str) -> String {
    visible(text).0.replace('\n', "<U+000A>")
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
        assert_eq!(visible_line("a\nb\u{202E}c"), "a<U+000A>b<U+202E>c");
        assert_eq!(visible("a\nb").0, "a\nb", "multi-line displays keep their lines");
    }

    #[test]
    fn mixed_scripts_are_flagged() {
        assert_eq!(mixed_script("\u{0440}ayments.transfer"), Some(vec!["Cyrillic", "Latin"]));
        assert_eq!(mixed_script("payments.transfer"), None);
        assert_eq!(mixed_script("Дмитрий Ivanov"), None, "separate words in different scripts are fine");
        assert_eq!(mixed_script("Ólafur"), None);
    }

    #[test]
    fn bidi_and_zero_width_are_made_visible() {
        let (s, flagged) = visible("pay\u{202E}lapyap\u{200B}x");
        assert!(flagged);
        assert_eq!(s, "pay<U+202E>lapyap<U+200B>x");
        assert_eq!(visible("plain text"), ("plain text".to_string(), false));
    }
}
