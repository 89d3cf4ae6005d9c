//! Hosts: URLs (WHATWG), mail addresses and bare `host[:port][/path]` strings, normalised to
//! lower-case punycode.

use super::HostForm;

/// Schemes whose URLs the WHATWG parser reads with a host even without `//` (`https:evil.example`).
const SPECIAL_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp", "file"];

/// File extensions that make a bare `name.ext` a file name rather than a host, unless it has a port or path.
const FILE_EXTENSIONS: &[&str] = &[
    "csv", "json", "txt", "pdf", "xlsx", "xls", "doc", "docx", "md", "log", "zip", "gz", "tgz", "tar", "sql",
    "yaml", "yml", "xml", "html", "htm", "png", "jpg", "jpeg", "gif", "svg", "py", "rs", "js", "ts", "go",
    "sh", "parquet", "avro", "toml", "ini", "conf", "cfg", "bak", "dump", "pem", "key", "crt", "rb", "java",
    "ps1",
];

/// Every host a string names, with how it was written.
pub fn hosts_in(s: &str) -> Vec<(String, HostForm)> {
    let mut out = Vec::new();
    // The whole string as one URL, as a client handed this string would read it (the WHATWG parser
    // itself drops leading and trailing spaces and controls, and tabs and newlines inside).
    if let Some(h) = url_host(s.trim()) {
        out.push((h, HostForm::Url));
    }
    let separators = |c: char| c.is_whitespace() || c.is_control() || "\"'`<>()[]{},;|^".contains(c);
    for raw in s.split(separators) {
        let token = raw.trim_matches(|c: char| ".!?:*".contains(c) || !c.is_ascii() && !c.is_alphanumeric());
        if token.is_empty() {
            continue;
        }
        token_hosts(token, &mut out);
    }
    out
}

fn token_hosts(token: &str, out: &mut Vec<(String, HostForm)>) {
    let lower = token.to_ascii_lowercase();
    let mut url_found = false;
    // Every place a scheme could start: `scheme:` followed by `//` or a special scheme.
    for (i, _) in lower.match_indices(':') {
        let start = lower[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || "+.-".contains(*c))
            .last()
            .map(|(j, _)| j);
        let Some(start) = start else { continue };
        let Some(first) = lower[start..].chars().next() else { continue };
        if !first.is_ascii_alphabetic() {
            continue;
        }
        let scheme = &lower[start..i];
        let rest = &lower[i + 1..];
        if scheme == "mailto" {
            let address = rest.split(['?', '#']).next().unwrap_or_default();
            for a in address.split(',') {
                mail_host(a, out);
            }
            url_found = true;
        } else if SPECIAL_SCHEMES.contains(&scheme) || rest.starts_with("//") || rest.starts_with("\\\\") {
            if let Some(h) = url_host(&token[start..]) {
                out.push((h, HostForm::Url));
                url_found = true;
            }
        }
    }
    if let Some(rest) = token.strip_prefix("//").or_else(|| token.strip_prefix("\\\\")) {
        if let Some(h) = url_host(&format!("http://{rest}")) {
            out.push((h, HostForm::Url));
            url_found = true;
        }
    }
    if url_found {
        return;
    }
    if token.contains('@') {
        // A mail address; and, read as a scheme-less URL, whatever its authority says.
        mail_host(token, out);
        if let Some(h) = bare_host(token, true) {
            out.push((h, HostForm::Bare));
        }
        return;
    }
    if let Some(h) = bare_host(token, false) {
        out.push((h, HostForm::Bare));
    }
}

/// The host of a mail address: after the last `@`, before any `?`, `#`, `/` or `>`.
fn mail_host(address: &str, out: &mut Vec<(String, HostForm)>) {
    let Some((local, domain)) = address.rsplit_once('@') else { return };
    if local.is_empty() && domain.is_empty() {
        return;
    }
    let domain = domain.split(['?', '#', '/', '>']).next().unwrap_or_default();
    if let Some(h) = parse_host(domain) {
        out.push((h, HostForm::Mail));
    }
}

/// A bare `host[:port][/path]` (or, with `with_userinfo`, anything a scheme-less URL would be).
fn bare_host(token: &str, with_userinfo: bool) -> Option<String> {
    let authority_end = token.find(['/', '?', '#', '\\']).unwrap_or(token.len());
    let authority = &token[..authority_end];
    let host_part = if with_userinfo { authority.rsplit('@').next()? } else { authority };
    let has_tail = authority_end < token.len() || host_part.contains(':');
    let name = host_part.split(':').next()?.trim_end_matches('.');
    if name.starts_with('[') {
        return url_host(&format!("http://{token}"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let all_numeric = labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()));
    let last = labels[labels.len() - 1].to_lowercase();
    let ipv4 = all_numeric && labels.len() == 4;
    let tld_ok = last.chars().all(char::is_alphanumeric)
        && last.chars().any(char::is_alphabetic)
        && last.chars().count() >= 2;
    if !(ipv4 || tld_ok) {
        return None;
    }
    if !ipv4 && !has_tail && FILE_EXTENSIONS.contains(&last.as_str()) {
        return None;
    }
    url_host(&format!("http://{token}")).or_else(|| parse_host(name))
}

/// The host of an absolute URL, normalised.
fn url_host(s: &str) -> Option<String> {
    let u = url::Url::parse(s).ok()?;
    let h = match u.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    let h = h.trim_end_matches('.').to_lowercase();
    (!h.is_empty()).then_some(h)
}

/// A host name alone, normalised as the URL parser would (punycode, lower case, no trailing dot).
pub fn parse_host(h: &str) -> Option<String> {
    if h.is_empty() || h.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    url_host(&format!("http://{h}/"))
}
