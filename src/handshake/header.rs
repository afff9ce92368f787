//! Header grammar for the opening handshake (RFC 6455 §4.1, §4.2.1, §9.1,
//! §11.3; RFC 7230 §3.2.6 tokens and comma lists), next to its parsers.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// The GUID that §1.3 appends to the key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2 step 5.4):
/// base64(SHA-1(key ‖ GUID)).
///
/// ```
/// use rfc6455::handshake::accept_key;
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[must_use]
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID);
    BASE64.encode(sha1.finalize())
}

/// Whether `key` is the base64 encoding of exactly 16 bytes (§4.2.1 item 5).
pub(crate) fn is_valid_key(key: &str) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut decoded), Ok(16))
}

/// Encodes 16 random bytes as a `Sec-WebSocket-Key` (§4.1 item 7).
pub(crate) fn encode_key(nonce: [u8; 16]) -> String {
    BASE64.encode(nonce)
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `s` is a non-empty RFC 7230 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `value` may be sent as a header value: visible ASCII, spaces
/// and tabs, no CR or LF (no header injection).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// The elements of a comma-separated header list, trimmed, empty ones
/// skipped (RFC 7230 §7: `#rule`).
pub(crate) fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Whether a comma list contains `token`, compared case-insensitively.
pub(crate) fn list_contains(value: &str, token: &str) -> bool {
    comma_list(value).any(|t| t.eq_ignore_ascii_case(token))
}

/// One extension offered or accepted in `Sec-WebSocket-Extensions` (§9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'a str,
    /// Its parameters in order: name and value, if one was given (quotes removed).
    pub params: Vec<(&'a str, Option<Cow<'a, str>>)>,
}

impl Extension<'_> {
    /// The value of parameter `name` if present: `Some(None)` for a parameter
    /// without a value.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

/// Splits `s` at top-level occurrences of `sep`, leaving quoted strings whole.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(s.get(start..i).unwrap_or_default());
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts
}

/// A parameter value: a token, or a quoted string whose content (after
/// unescaping) is returned.
fn param_value(raw: &str) -> Option<Cow<'_, str>> {
    let Some(inner) = raw.strip_prefix('"') else {
        return is_token(raw).then_some(Cow::Borrowed(raw));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(Cow::Owned(out))
}

/// Parses one `Sec-WebSocket-Extensions` value (§9.1 grammar). `None` if it
/// does not follow the grammar.
pub(crate) fn parse_extensions(value: &str) -> Option<Vec<Extension<'_>>> {
    let mut extensions = Vec::new();
    for item in split_unquoted(value, b',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut parts = split_unquoted(item, b';').into_iter().map(str::trim);
        let name = parts.next().filter(|n| is_token(n))?;
        let mut params = Vec::new();
        for param in parts {
            let (pname, pvalue) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(param_value(v.trim())?)),
                None => (param, None),
            };
            if !is_token(pname) {
                return None;
            }
            params.push((pname, pvalue));
        }
        extensions.push(Extension { name, params });
    }
    Some(extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §1.3 and §4.2.2: the example key and its accept value.
    #[test]
    fn rfc_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    // §4.2.1 item 5: "a base64-encoded value that, when decoded, is 16 bytes in length".
    #[test]
    fn key_validity() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_valid_key(&encode_key([0xff; 16])));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ=")); // 15 bytes' worth
        assert!(!is_valid_key("AAAAAAAAAAAAAAAAAAAAAAAA")); // 18 bytes
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZ!=="));
        assert!(!is_valid_key(""));
    }

    // RFC 7230 §7: lists with empty elements and optional whitespace.
    #[test]
    fn comma_lists() {
        assert!(list_contains("keep-alive, Upgrade", "upgrade"));
        assert!(list_contains(" ,upgrade,", "UPGRADE"));
        assert!(!list_contains("upgraded", "upgrade"));
        assert_eq!(comma_list("a, ,b ,,c").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    // §9.1: extension-list grammar, including quoted parameter values.
    #[test]
    fn extension_grammar() {
        let list = parse_extensions(
            "permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\" ;x=\"a\\\"b,c\", foo",
        )
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].name, "permessage-deflate");
        assert_eq!(list[0].param("client_max_window_bits"), Some(None));
        assert_eq!(list[1].param("server_max_window_bits"), Some(Some("10")));
        assert_eq!(list[1].param("x"), Some(Some("a\"b,c")));
        assert_eq!(
            list[2],
            Extension {
                name: "foo",
                params: vec![]
            }
        );
        assert_eq!(parse_extensions("bad name"), None);
        assert_eq!(parse_extensions("x; =1"), None);
        assert_eq!(parse_extensions("x; a=b c"), None);
        assert_eq!(parse_extensions("x; a=\"unterminated"), None);
        assert_eq!(parse_extensions(""), Some(vec![]));
    }

    #[test]
    fn header_values_refuse_line_breaks() {
        assert!(is_header_value("a=b; Path=/"));
        assert!(!is_header_value("a\r\nX-Injected: 1"));
        assert!(!is_header_value("a\nb"));
    }
}
