//! Shapes of names and URLs shared by several sections.

/// A Kubernetes DNS label (namespace names): lower-case letters, digits and `-`, at most 63.
pub(super) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A Kubernetes DNS subdomain (ConfigMap, Secret and Lease names).
pub(super) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A lower-case host name without scheme, port or path.
pub(super) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && s == s.to_ascii_lowercase()
}

/// A name used in metric labels and contexts (cluster, forge): 1-63 letters, digits, `-`,
/// `_` or `.`.
pub(super) fn check_label_name(name: &str) -> Result<(), InvalidLabelName> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(InvalidLabelName(name.to_string()))
    }
}

/// A cluster or forge name that [`check_label_name`] refuses.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` must be 1-63 characters of letters, digits, `-`, `_` or `.`")]
pub(super) struct InvalidLabelName(String);

/// Where a URL may use plain `http://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlainHttp {
    /// Only to loopback addresses: the URL receives credentials.
    LoopbackOnly,
    /// To any host: nothing secret is sent.
    Anywhere,
}

/// A URL the exporter will not send requests to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum UrlError {
    #[error("`{0}` is not a URL")]
    NotAUrl(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}` must not have a query string")]
    Query(String),
    #[error("`{0}` must use https (plain http is only allowed to loopback addresses)")]
    PlainHttp(String),
    #[error("`{0}` must start with https://")]
    Scheme(String),
}

/// Checks `url` is an absolute http(s) URL with a host, and plain http only where allowed.
pub(super) fn check_http_url(url: &str, plain_http: PlainHttp) -> Result<(), UrlError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| UrlError::NotAUrl(url.to_string()))?;
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(UrlError::NoHost(url.to_string()));
    }
    if uri.query().is_some() {
        return Err(UrlError::Query(url.to_string()));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if plain_http == PlainHttp::Anywhere || is_loopback(host) => Ok(()),
        Some("http") => Err(UrlError::PlainHttp(url.to_string())),
        _ => Err(UrlError::Scheme(url.to_string())),
    }
}

/// Whether `host` is `localhost` or a loopback address, parsed as one: a name that merely
/// starts like one (`127.0.0.1.attacker.example`) is not.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
