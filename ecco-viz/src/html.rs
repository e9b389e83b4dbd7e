//! The self-contained HTML page: our inline CSS and JS, the views as embedded JSON, and a
//! Content-Security-Policy that forbids every fetch and any script or style but ours.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::views::Report;

/// The page's stylesheet, inlined.
pub const CSS: &str = include_str!("../assets/report.css");
/// The page's script, inlined: it reads `#ecco-data` and renders every view present.
pub const JS: &str = include_str!("../assets/report.js");

/// The views' JSON made safe inside `<script type="application/json">`: `<`, `>` and `&` become
/// `\u003c`, `\u003e`, `\u0026` (and U+2028/U+2029 their escapes), so no token text can close the
/// element or start markup; `JSON.parse` reads the same values back.
///
/// # Errors
/// [`crate::Error::Json`] when serialisation fails.
pub fn embedded_json(report: &Report) -> Result<String> {
    let json = serde_json::to_string(report)?;
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `'sha256-…'` of an inline script or style, as CSP wants it.
fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The Content-Security-Policy of every page: nothing may be fetched (`default-src 'none'`);
/// only our script and stylesheet run, pinned by hash; images only from `data:`.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(JS),
        csp_hash(CSS)
    )
}

/// The whole page for `report`: one file, nothing fetched when it opens.
///
/// # Errors
/// [`crate::Error::Json`] when serialisation fails.
pub fn render_html(report: &Report) -> Result<String> {
    let json = embedded_json(report)?;
    let title = escape_html(&report.title);
    let mut page = String::with_capacity(json.len() + JS.len() + CSS.len() + 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(&format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n", content_security_policy()));
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str(&format!("<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"));
    page.push_str(&format!("<h1>{title}</h1>\n<nav id=\"ecco-nav\"></nav>\n<main id=\"ecco-root\"></main>\n"));
    page.push_str("<noscript><p>This report draws its views with JavaScript; the data is in the page source as JSON.</p></noscript>\n");
    page.push_str("<script type=\"application/json\" id=\"ecco-data\">");
    page.push_str(&json);
    page.push_str("</script>\n");
    page.push_str(&format!("<script>{JS}</script>\n</body>\n</html>\n"));
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{TokenEntry, TokensView};

    fn hostile() -> Report {
        let text = "</script><script>alert(1)</script> \"q\" & 'a' \u{2028}";
        Report {
            title: "<b>t</b>".into(),
            tokens: TokensView {
                n_input: 1,
                convention: None,
                tokens: vec![TokenEntry { id: 1, raw: text.into(), text: text.into(), word_start: true, generated: false }],
            },
            ..Report::default()
        }
    }

    #[test]
    fn token_text_cannot_leave_the_data_block() -> Result<()> {
        let page = render_html(&hostile())?;
        // Exactly the two script elements we write, and the data still parses back.
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(!page.contains("<b>"));
        let json = embedded_json(&hostile())?;
        let back: Report = serde_json::from_str(&json)?;
        assert_eq!(back, hostile());
        Ok(())
    }

    #[test]
    fn the_policy_pins_our_script_and_forbids_fetches() {
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none';"));
        assert!(!csp.contains("unsafe"));
        assert!(csp.contains(&csp_hash(JS)) && csp.contains(&csp_hash(CSS)));
    }
}
