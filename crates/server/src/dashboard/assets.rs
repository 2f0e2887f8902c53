//! The dashboard page and its embedded files: `index.html` with versioned
//! asset URLs, the assets with their types, ETags and cache policy, and the
//! Content-Security-Policy every dashboard answer carries.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{json_response, security_headers};

/// The Content-Security-Policy of every dashboard answer: only this origin's
/// own files, no inline script or style, no plugins, no framing.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// One embedded file under `/assets/`.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/icon.svg"),
    },
];

const INDEX_HTML: &str = include_str!("../../assets/index.html");

/// FNV-1a, 64 bits: a content hash for ETags and asset versions.
fn content_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `index.html` with every `{{name}}` replaced by that asset's content hash,
/// so the page links `/assets/app.js?v=<hash>` and a new binary's assets are
/// never taken from a stale cache.
fn index_html() -> &'static (String, String) {
    static INDEX: OnceLock<(String, String)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut html = INDEX_HTML.to_owned();
        for asset in ASSETS {
            html = html.replace(
                &format!("{{{{{}}}}}", asset.name),
                &content_hash(asset.body),
            );
        }
        let etag = format!("\"{}\"", content_hash(html.as_bytes()));
        (html, etag)
    })
}

/// A static body with its type, ETag and cache policy (304 when the browser
/// already has it).
fn static_response(
    req_headers: &HeaderMap,
    content_type: &'static str,
    etag: &str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut headers = HeaderMap::new();
    security_headers(&mut headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    let fresh = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (StatusCode::OK, headers, body).into_response()
}

pub(super) async fn index(headers: HeaderMap) -> Response {
    let (html, etag) = index_html();
    static_response(
        &headers,
        "text/html; charset=utf-8",
        etag,
        "no-cache",
        html.as_bytes(),
    )
}

pub(super) async fn asset(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": "No such asset" }));
    };
    let hash = content_hash(asset.body);
    // The page asks for `?v=<hash>`: that exact content may be kept for good.
    let versioned = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == format!("v={hash}")));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    static_response(
        &headers,
        asset.content_type,
        &format!("\"{hash}\""),
        cache,
        asset.body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_links_versioned_assets() {
        let (html, etag) = index_html();
        assert!(!html.contains("{{"), "{html}");
        for asset in ASSETS {
            let url = format!("/assets/{}?v={}", asset.name, content_hash(asset.body));
            assert!(html.contains(&url), "{url} not in the page");
        }
        assert!(etag.starts_with('"') && etag.len() == 18);
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "no inline script or style"
        );
    }
}
