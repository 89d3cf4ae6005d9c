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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_zero_width_are_made_visible() {
        let (s, flagged) = visible("pay\u{202E}lapyap\u{200B}x");
        assert!(flagged);
        assert_eq!(s, "pay<U+202E>lapyap<U+200B>x");
        assert_eq!(visible("plain text"), ("plain text".to_string(), false));
    }
}
