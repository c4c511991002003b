//! The request target (RFC 9112 §3.2): which of its four forms it is, whether the method may
//! use that form, and whether every byte is one RFC 3986 allows.

use http::Method;

use crate::http::error::RequestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: what clients send to an origin server.
    Origin,
    /// `http://host/path`: what clients send to a proxy; its host replaces Host.
    Absolute,
    /// `*`: OPTIONS of the server as a whole.
    Asterisk,
}

/// Bytes allowed in a request target: RFC 3986's unreserved, sub-delims, `:/?@[]%`, plus `|`
/// and `^`, which browsers send unencoded in paths (WHATWG URL's path percent-encode set
/// leaves them alone). Refused: CTLs, space, DEL, non-ASCII, `"<>\`{}` and `#` (a fragment is
/// never sent).
static TARGET_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let allowed: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:/?@[]%|^";
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    table
};

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The target's form, or why the request is refused.
pub fn check_target(method: &Method, target: &[u8]) -> Result<TargetForm, RequestError> {
    if let Some(&bad) = target.iter().find(|&&b| !TARGET_BYTES[b as usize]) {
        return Err(RequestError::malformed(format!(
            "byte {bad:#04x} in the request target (RFC 3986 §2)"
        )));
    }
    if method == Method::CONNECT {
        // RFC 9112 §3.2.3: CONNECT takes host:port, and nothing behind a WSGI app can tunnel.
        let is_authority = !target.is_empty()
            && target.contains(&b':')
            && !target.iter().any(|&b| matches!(b, b'/' | b'?' | b'@'));
        return Err(match is_authority {
            true => RequestError::Tunnel,
            false => {
                RequestError::malformed("CONNECT needs an authority-form target (RFC 9112 §3.2.3)")
            }
        });
    }
    match target.first() {
        Some(b'/') => Ok(TargetForm::Origin),
        Some(b'*') if target.len() == 1 => match *method == Method::OPTIONS {
            true => Ok(TargetForm::Asterisk),
            false => Err(RequestError::malformed(
                "'*' is a target for OPTIONS only (RFC 9112 §3.2.4)",
            )),
        },
        _ if starts_with_ignore_case(target, b"http://")
            || starts_with_ignore_case(target, b"https://") =>
        {
            Ok(TargetForm::Absolute)
        }
        _ => Err(RequestError::malformed(
            "request target is not origin-form, absolute-form or '*' (RFC 9112 §3.2)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(method: Method, target: &str) -> Result<TargetForm, RequestError> {
        check_target(&method, target.as_bytes())
    }

    #[test]
    fn each_form_is_recognised_for_the_methods_that_may_use_it() {
        assert_eq!(form(Method::GET, "/a?b=c|d^"), Ok(TargetForm::Origin));
        assert_eq!(
            form(Method::GET, "HTTP://example.com/x"),
            Ok(TargetForm::Absolute)
        );
        assert_eq!(form(Method::OPTIONS, "*"), Ok(TargetForm::Asterisk));
        assert!(form(Method::GET, "*").is_err());
        assert!(form(Method::GET, "example.com:443").is_err());
        assert!(form(Method::GET, "ftp://example.com/").is_err());
    }

    #[test]
    fn connect_is_not_implemented_with_an_authority_and_malformed_otherwise() {
        assert_eq!(
            form(Method::CONNECT, "example.com:443"),
            Err(RequestError::Tunnel)
        );
        assert!(matches!(
            form(Method::CONNECT, "/x"),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn bytes_outside_rfc_3986_are_refused() {
        for bad in [
            "/a b", "/a\"", "/<x>", "/a\\b", "/`", "/{", "/}", "/#f", "/\x7f", "/\x01",
        ] {
            assert!(form(Method::GET, bad).is_err(), "{bad:?}");
        }
        assert!(check_target(&Method::GET, b"/caf\xc3\xa9").is_err());
        assert!(form(Method::GET, "/%C3%A9[1]~").is_ok());
    }
}
