//! What goes back besides results: errors as `{"error": "..."}` with their status (never a
//! stack trace or a password), and a product's photo file checked to lie in the catalogue's
//! photo folder.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::net::SocketAddr;

use lookbook::catalog::{Catalog, Product};

/// The address a request came from (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// An answer other than success.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: String) -> Self {
        ApiError {
            status,
            message,
            retry_after: None,
        }
    }

    /// 400: the request is wrong; the message says how.
    pub fn bad(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: the server cannot answer now (no engine yet, stopping, the store failed).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message.into())
    }

    /// 503 with a `Retry-After`: busy.
    pub fn busy(message: &str) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::unavailable(message)
        }
    }

    /// 429 with a `Retry-After` of the seconds until a request is allowed again.
    pub fn too_many(wait_s: f64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "too many requests for this key; slow down (see Retry-After)".into(),
            retry_after: Some(wait_s.ceil().max(1.0) as u64),
        }
    }

    /// A library error as the client should see it: what it names not there is 404, a wrong
    /// request 400, anything else (the store, the network) 503. `scrub` removes the catalogue's
    /// address from the text (a PostgreSQL URL may carry a password).
    pub fn from_library(e: lookbook::Error, scrub: impl Fn(&str) -> String) -> Self {
        use lookbook::Error as E;
        let message = scrub(&e.to_string());
        match e {
            E::NotFound(_) => Self::not_found(message),
            E::Invalid(_) | E::Image { .. } => Self::bad(message),
            E::NoEmbeddings { .. } => Self::unavailable(message),
            _ => Self::unavailable(format!("the catalogue could not answer: {message}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = lookbook::text::sanitize(&self.message).into_owned();
        let mut r = (self.status, Json(json!({ "error": text }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Photos served are at most this large.
const MAX_PHOTO_BYTES: u64 = 20 << 20;

/// The bytes and media type of a product's photo, when the catalogue has it in its photo folder;
/// a path that leads outside the folder (`../`, a link) is no photo.
pub fn photo_file(cat: &Catalog, product: &Product) -> Option<(Vec<u8>, &'static str)> {
    let root = cat.image_root().ok()?.canonicalize().ok()?;
    let path = cat.image_path(product).ok()?.canonicalize().ok()?;
    if !path.starts_with(&root) {
        return None;
    }
    let bytes = lookbook::files::read_capped(&path, MAX_PHOTO_BYTES, "photo").ok()?;
    let mime = match image::guess_format(&bytes).ok()? {
        image::ImageFormat::Jpeg => "image/jpeg",
        image::ImageFormat::Png => "image/png",
        image::ImageFormat::WebP => "image/webp",
        image::ImageFormat::Gif => "image/gif",
        image::ImageFormat::Bmp => "image/bmp",
        _ => return None,
    };
    Some((bytes, mime))
}
