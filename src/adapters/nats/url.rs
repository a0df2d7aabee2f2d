//! The user and password a `nats.url` may carry: passed to the client as
//! options, and never shown (logs, errors) nor dialled with.

/// One server of a URL: its scheme with `://` (or nothing), its user info
/// (`user:password` or a token, up to the last `@`: a password may hold a
/// `/` or an `@` unencoded), and the rest (host and port).
fn parts(server: &str) -> (&str, Option<&str>, &str) {
    let server = server.trim();
    let (scheme, rest) = match server.find("://") {
        Some(i) => server.split_at(i + 3),
        None => ("", server),
    };
    match rest.rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at + 1..]),
        None => (scheme, None, rest),
    }
}

/// `url` (one server or several, comma-separated, with or without a
/// scheme) with the user and password of each replaced, for logs.
pub fn without_password(url: &str) -> String {
    let shown = |server: &str| match parts(server) {
        (scheme, Some(_), rest) => format!("{scheme}***@{rest}"),
        (scheme, None, rest) => format!("{scheme}{rest}"),
    };
    url.split(',').map(shown).collect::<Vec<_>>().join(",")
}

/// `url` with the user and password of each server left out.
pub fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|server| parts(server))
        .map(|(scheme, _, rest)| format!("{scheme}{rest}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The user and password written into `url` (the first server that has
/// them: a cluster's servers share them), or a token written alone.
pub fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    url.split(',').find_map(|server| {
        let info = parts(server).1.filter(|info| !info.is_empty())?;
        Some(match info.split_once(':') {
            Some((user, password)) => (percent_decoded(user), Some(percent_decoded(password))),
            None => (percent_decoded(info), None),
        })
    })
}

/// `options` logging in with the user and password (or token) written into
/// `url`, if any: the client takes credentials from its options only.
pub fn with_url_credentials(options: async_nats::ConnectOptions, url: &str) -> async_nats::ConnectOptions {
    match url_credentials(url) {
        Some((user, Some(password))) => options.user_and_password(user, password),
        Some((token, None)) => options.token(token),
        None => options,
    }
}

/// `text` with its `%XX` escapes decoded (a URL's user and password).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_passed_on_decoded() {
        let pair = |u: &str, p: &str| Some((u.to_string(), Some(p.to_string())));
        assert_eq!(url_credentials("nats://router:s%40cret@nats:4222"), pair("router", "s@cret"));
        assert_eq!(url_credentials("nats://h1:4222,nats://u:p@h2:4222"), pair("u", "p"));
        assert_eq!(url_credentials("nats://router:s3cr/etPW@nats:4222"), pair("router", "s3cr/etPW"));
        assert_eq!(url_credentials("nats://t0ken@nats:4222"), Some(("t0ken".to_string(), None)));
        assert_eq!(url_credentials("nats://nats:4222"), None);
    }

    #[test]
    fn logged_and_dialled_urls_carry_no_password() {
        assert_eq!(without_password("nats://user:secret@nats:4222"), "nats://***@nats:4222");
        assert_eq!(without_password("nats://nats:4222"), "nats://nats:4222");
        assert_eq!(without_password("u:p@h1:4222,nats://h2:4222"), "***@h1:4222,nats://h2:4222");
        assert_eq!(without_password("nats://h1,nats://u:p@h2"), "nats://h1,nats://***@h2");
        assert_eq!(without_password("nats://router:s3cr/etPW@nats:4222"), "nats://***@nats:4222");
        assert_eq!(without_credentials("nats://u:p@h1:4222, tls://t@h2"), "nats://h1:4222,tls://h2");
    }
}
