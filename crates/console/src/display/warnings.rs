//! Display-safety warnings about a request's text, derived once from the signed claims: what the
//! CLI prints, what the inbox counts and what the desktop shows (it words them from the kind).

use serde::Serialize;
use serde_json::Value;

use super::{is_hidden, mixed_script, visible};

/// What is wrong with a piece of a request's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub enum WarningKind {
    /// A string holds hidden or bidirectional control characters (its `code_points`).
    Hidden,
    /// An object key holds invisible or bidirectional control characters.
    HiddenKey,
    /// A name an approver reads mixes Latin with look-alike letters of another script (`scripts`).
    MixedScript,
}

/// One display-safety finding in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// Where in the request: `request.purpose.statement`, `request.actions[0].args.file`, …
    pub path: String,
    /// What was found.
    pub kind: WarningKind,
    /// [`WarningKind::Hidden`]: the hidden code points, each once, in order of appearance.
    pub code_points: Vec<u32>,
    /// [`WarningKind::MixedScript`]: the scripts mixed, in alphabetical order.
    pub scripts: Vec<String>,
}

impl Warning {
    /// The warning in words (the CLI's `WARNING` line; the desktop words it the same way).
    pub fn message(&self) -> String {
        match self.kind {
            WarningKind::Hidden => {
                let codes: Vec<String> = self.code_points.iter().map(|c| format!("U+{c:04X}")).collect();
                format!(
                    "{} contains hidden or bidirectional control characters: {}",
                    self.path,
                    codes.join(", ")
                )
            }
            WarningKind::HiddenKey => {
                format!("{}: a key contains invisible or bidirectional control characters", self.path)
            }
            WarningKind::MixedScript => {
                format!("{} mixes {} letters (look-alike characters)", self.path, self.scripts.join(" and "))
            }
        }
    }
}

/// Every display-safety finding in the claims: hidden characters in any string or key, and
/// look-alike letters in the names an approver reads to recognise what acts and on what.
pub fn warnings(claims: &Value) -> Vec<Warning> {
    let warning = |path: String, kind| Warning { path, kind, code_points: Vec::new(), scripts: Vec::new() };
    fn walk(v: &Value, path: &str, out: &mut Vec<Warning>) {
        match v {
            Value::String(s) if visible(s).1 => {
                let mut code_points: Vec<u32> = Vec::new();
                for c in s.chars().filter(|c| is_hidden(*c)) {
                    if !code_points.contains(&(c as u32)) {
                        code_points.push(c as u32);
                    }
                }
                out.push(Warning {
                    path: path.to_string(),
                    kind: WarningKind::Hidden,
                    code_points,
                    scripts: vec![],
                });
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                if visible(k).1 {
                    out.push(Warning {
                        path: path.to_string(),
                        kind: WarningKind::HiddenKey,
                        code_points: vec![],
                        scripts: vec![],
                    });
                }
                walk(x, &format!("{path}.{k}"), out)
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(claims, "request", &mut out);
    let mut names: Vec<(String, &Value)> = vec![
        ("identity.workload".into(), &claims["identity"]["workload"]),
        ("identity.display".into(), &claims["identity"]["display"]),
        ("target.system".into(), &claims["target"]["system"]),
        ("purpose.code".into(), &claims["purpose"]["code"]),
    ];
    for (i, a) in claims["actions"].as_array().into_iter().flatten().enumerate() {
        names.push((format!("actions[{i}].tool"), &a["tool"]));
        names.push((format!("actions[{i}].operation"), &a["operation"]));
        names.push((format!("actions[{i}].target"), &a["target"]));
    }
    for (path, v) in names {
        if let Some(scripts) = v.as_str().and_then(mixed_script) {
            out.push(Warning {
                scripts: scripts.into_iter().map(str::to_owned).collect(),
                ..warning(format!("request.{path}"), WarningKind::MixedScript)
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn findings_are_typed_and_worded_as_before() {
        let c = json!({
            "identity": {"display": "Pay\u{202E}bot\u{202E}\u{200B}"},
            "actions": [{"tool": "p\u{0430}y", "args": {"k\u{200B}": 1}}],
        });
        let w = warnings(&c);
        let messages: Vec<String> = w.iter().map(Warning::message).collect();
        assert_eq!(
            messages,
            [
                "request.actions[0].args: a key contains invisible or bidirectional control characters",
                "request.identity.display contains hidden or bidirectional control characters: U+202E, U+200B",
                "request.actions[0].tool mixes Cyrillic and Latin letters (look-alike characters)",
            ]
        );
        assert_eq!(w[1].code_points, [0x202E, 0x200B]);
        assert_eq!(w[2].kind, WarningKind::MixedScript);
    }
}
