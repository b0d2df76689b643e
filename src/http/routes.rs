//! The endpoints: each checks its key, reads its parameters, and does its work on a blocking
//! thread through the library (the same calls and JSON fields as the CLI's `--json`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use super::keys::Access;
use super::reply::ApiError;
use super::{Shared, Work};
use lookbook::catalog::{ProductFilter, ReportedEvent};
use lookbook::recommend::shop::{FeedRequest, ShopperHistory};
use lookbook::recommend::shown::{FeedPage, rows};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Anyone (health, the description, the widget).
    Open,
    /// Anyone, at `--photo-rate` per address (an `<img>` cannot send a key).
    PerAddress,
    /// A key with this access, at `--rate` per key.
    Key(Access),
}

/// Every route, its name in the metrics and who may call it; `openapi.json` documents exactly
/// these paths. The gate is checked before the request's body is read.
pub(super) const ROUTES: &[(&str, &str, Gate)] = &[
    ("/v1/products/{id}/similar", "similar", Gate::Key(Access::Read)),
    ("/v1/products/{id}/together", "together", Gate::Key(Access::Read)),
    ("/v1/products/{id}/photo", "photo", Gate::PerAddress),
    ("/v1/users/{user}/feed", "feed", Gate::Key(Access::Read)),
    ("/v1/popular", "popular", Gate::Key(Access::Read)),
    ("/v1/similar", "similar_photo", Gate::Key(Access::Read)),
    ("/v1/events", "events", Gate::Key(Access::Write)),
    ("/healthz", "healthz", Gate::Open),
    ("/metrics", "metrics", Gate::Key(Access::Read)),
    ("/openapi.json", "openapi", Gate::Open),
    ("/widget.js", "widget", Gate::Open),
];

/// The routes, with the body limits each needs.
pub(super) fn router(state: Arc<Shared>) -> Router {
    let upload = state.opts.max_upload_kb.saturating_mul(1024);
    let events = state.opts.max_body_kb.saturating_mul(1024);
    Router::new()
        .route("/v1/products/{id}/similar", get(similar))
        .route("/v1/products/{id}/together", get(together))
        .route("/v1/products/{id}/photo", get(photo))
        .route("/v1/users/{user}/feed", get(feed))
        .route("/v1/popular", get(popular))
        .route("/v1/similar", post(similar_photo).layer(DefaultBodyLimit::max(upload)))
        .route("/v1/events", post(post_events).layer(DefaultBodyLimit::max(events)))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/widget.js", get(widget))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The most pixels an uploaded query photo may have (a 16 MP phone photo).
const MAX_UPLOAD_PIXELS: u64 = 16_000_000;

/// The query parameters of the ranking routes, checked.
struct Params {
    k: usize,
    filter: ProductFilter,
}

/// Parameters every ranking route takes besides `k`.
const FILTERS: &[&str] = &[
    "category",
    "gender",
    "colour",
    "color",
    "brand",
    "min_price",
    "max_price",
    "in_stock",
];

impl Params {
    /// Reads `k` (default 10, at most `--max-k`) and, when `filters`, the filters; an unknown,
    /// repeated or unreadable parameter is a 400 that names it.
    fn read(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
        max_k: usize,
        filters: bool,
    ) -> Result<Self, ApiError> {
        let Query(pairs) = q.map_err(|e| ApiError::bad(format!("unreadable query string: {}", e.body_text())))?;
        let mut p = Params {
            k: 10,
            filter: ProductFilter::default(),
        };
        let mut seen = std::collections::HashSet::new();
        for (name, value) in pairs {
            // `color` is `colour`: both at once is the same parameter twice.
            let canonical = if name == "color" {
                "colour".to_string()
            } else {
                name.clone()
            };
            if !seen.insert(canonical) {
                return Err(ApiError::bad(format!("parameter {:?} is given twice", clip(&name))));
            }
            let text = || Some(value.trim().to_string()).filter(|v| !v.is_empty());
            let price = || -> Result<Option<f64>, ApiError> {
                match value.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                    _ => Err(ApiError::bad(format!(
                        "{name} must be a price (a number from 0), got {:?}",
                        clip(&value)
                    ))),
                }
            };
            match name.as_str() {
                "k" => {
                    p.k = match value.trim().parse::<usize>() {
                        Ok(k) if (1..=max_k).contains(&k) => k,
                        _ => {
                            return Err(ApiError::bad(format!(
                                "k must be a whole number from 1 to {max_k}, got {:?}",
                                clip(&value)
                            )));
                        }
                    }
                }
                _ if !filters || !FILTERS.contains(&name.as_str()) => {
                    let known = if filters {
                        format!("k, {}", FILTERS.join(", "))
                    } else {
                        "k".into()
                    };
                    return Err(ApiError::bad(format!(
                        "unknown parameter {:?}; this route takes {known}",
                        clip(&name)
                    )));
                }
                "category" => p.filter.category = text(),
                "gender" => p.filter.gender = text(),
                "colour" | "color" => p.filter.colour = text(),
                "brand" => p.filter.brand = text(),
                "min_price" => p.filter.min_price = price()?,
                "max_price" => p.filter.max_price = price()?,
                "in_stock" => {
                    p.filter.in_stock = match value.trim() {
                        "" | "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => {
                            return Err(ApiError::bad(format!(
                                "in_stock must be true or false, got {:?}",
                                clip(&value)
                            )));
                        }
                    }
                }
                _ => unreachable_filter()?,
            }
        }
        Ok(p)
    }
}

impl Params {
    /// The key a cached answer is kept under: the route, the product and every parameter.
    fn key(&self, route: &str, id: &str) -> String {
        format!(
            "{route}\u{0}{id}\u{0}{}\u{0}{}",
            self.k,
            serde_json::to_string(&self.filter).unwrap_or_default()
        )
    }
}

/// A name in [`FILTERS`] that the match above does not read: a programming error, answered
/// as a 400 rather than a panic.
fn unreachable_filter() -> Result<(), ApiError> {
    Err(ApiError::bad("this filter is not supported yet".to_string()))
}

fn clip(s: &str) -> String {
    lookbook::text::clip(s, 60).to_string()
}

fn path_arg(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::bad(format!("unreadable path: {}", e.body_text())))
}

/// `GET /v1/products/{id}/similar`: look-alikes.
async fn similar(
    State(s): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_arg(id)?;
    let p = Params::read(q, s.opts.max_k, true)?;
    s.work_cached(p.key("similar", &id), move |w: &Work| {
        let engine = w.engine()?;
        let product = w.product(&id)?;
        let recs = w.ok(engine.similar(product.id, &p.filter, p.k))?;
        Ok(json!({ "query": product, "filter": p.filter, "results": rows(&engine, &recs) }))
    })
    .await
}

/// `GET /v1/products/{id}/together`: what shoppers bought with it.
async fn together(
    State(s): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_arg(id)?;
    let p = Params::read(q, s.opts.max_k, false)?;
    s.work_cached(p.key("together", &id), move |w: &Work| {
        let engine = w.engine()?;
        let product = w.product(&id)?;
        let trained = engine
            .shop()
            .ok_or_else(|| ApiError::unavailable("the feed model is not loaded"))?;
        let recs = trained.feed(&engine).bought_together(product.id, p.k);
        Ok(json!({ "query": product, "results": rows(&engine, &recs) }))
    })
    .await
}

/// `GET /v1/users/{user}/feed`: a shopper's feed; one the catalogue does not know gets what
/// sells now.
async fn feed(
    State(s): State<Arc<Shared>>,
    user: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = path_arg(user)?;
    let user = lookbook::catalog::check_user_name(&user)
        .map_err(|e| ApiError::bad(e.to_string()))?
        .to_string();
    let p = Params::read(q, s.opts.max_k, true)?;
    let body = s
        .work_raw(move |w: &Work| {
            let engine = w.engine()?;
            let (uid, history) = w.read(|cat| {
                let uid = cat.user_id(&user)?;
                Ok((uid, ShopperHistory::load(cat, uid)?))
            })?;
            let trained = engine
                .shop()
                .ok_or_else(|| ApiError::unavailable("the feed model is not loaded"))?;
            let recs = w.ok(trained.feed(&engine).recommend(
                &history,
                &FeedRequest {
                    k: p.k,
                    filter: p.filter.clone(),
                },
                &trained.blend,
            ))?;
            let page = FeedPage::new(
                &user,
                uid.is_some(),
                &history,
                trained,
                &trained.blend,
                &p.filter,
                rows(&engine, &recs),
            );
            // Written straight to bytes: through a `Value` the f32 scores would print as f64.
            serde_json::to_vec(&page).map_err(|e| ApiError::unavailable(format!("cannot write the answer: {e}")))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /v1/popular`: what sells now (the cold-start feed).
async fn popular(
    State(s): State<Arc<Shared>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::read(q, s.opts.max_k, true)?;
    s.work_cached(p.key("popular", ""), move |w: &Work| {
        let engine = w.engine()?;
        let trained = engine
            .shop()
            .ok_or_else(|| ApiError::unavailable("the feed model is not loaded"))?;
        let nobody = ShopperHistory::default();
        let recs = w.ok(trained.feed(&engine).recommend(
            &nobody,
            &FeedRequest {
                k: p.k,
                filter: p.filter.clone(),
            },
            &trained.blend,
        ))?;
        Ok(json!({ "filter": p.filter, "results": rows(&engine, &recs) }))
    })
    .await
}

/// `POST /v1/similar`: look-alikes of an uploaded photo (one forward pass; a few at a time).
async fn similar_photo(
    State(s): State<Arc<Shared>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = Params::read(q, s.opts.max_k, true)?;
    let body = body.map_err(|e| body_error(&e, s.opts.max_upload_kb))?;
    if body.is_empty() {
        return Err(ApiError::bad("send the photo's bytes as the request body".to_string()));
    }
    // A query photo is a phone's at most: a larger one (small compressed, huge decoded) is
    // refused from its header before any pixel is decoded.
    if let Ok((w, h)) = image::ImageReader::new(std::io::Cursor::new(&body[..]))
        .with_guessed_format()
        .map_err(std::io::Error::other)
        .and_then(|r| r.into_dimensions().map_err(std::io::Error::other))
        && u64::from(w) * u64::from(h) > MAX_UPLOAD_PIXELS
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the photo is {w}x{h}, over {} megapixels; send a smaller one",
                MAX_UPLOAD_PIXELS / 1_000_000
            ),
        ));
    }
    // The network is the expensive part: a few uploads run at once, the rest wait a little,
    // then hear that the server is busy.
    let permit = tokio::time::timeout(Duration::from_secs(10), Arc::clone(&s.photo_slots).acquire_owned())
        .await
        .map_err(|_| ApiError::busy("busy embedding other photos; try again shortly"))?
        .map_err(|_| ApiError::unavailable("the server is stopping"))?;
    s.work(move |w: &Work| {
        let _permit = permit;
        let engine = w.engine()?;
        let v = w.photo_vector(&body)?;
        let recs = w.ok(engine.similar_to_vector(&v, &p.filter, p.k))?;
        Ok(json!({ "query": { "image": "upload", "bytes": body.len() }, "filter": p.filter, "results": rows(&engine, &recs) }))
    })
    .await
}

/// One reported event as JSON sends it, read leniently so each bad one is reported alone.
fn event_of(v: &Value) -> Result<ReportedEvent, String> {
    let Value::Object(o) = v else {
        return Err("an event is an object: {\"user\", \"product\", \"kind\", \"time\"?}".into());
    };
    for k in o.keys() {
        if !["user", "product", "kind", "time"].contains(&k.as_str()) {
            return Err(format!(
                "unknown field {:?}; an event has user, product, kind and time",
                clip(k)
            ));
        }
    }
    let text = |k: &str| -> Result<String, String> {
        match o.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) if k != "kind" => Ok(n.to_string()),
            Some(_) => Err(format!("{k} must be a string")),
            None => Err(format!("{k} is missing")),
        }
    };
    let at = match o.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .and_then(|t| lookbook::dates::parse_time(&t.to_string()))
                .ok_or_else(|| format!("time {n} is not a time (seconds or milliseconds since 1970)"))?,
        ),
        Some(Value::String(t)) => Some(lookbook::dates::parse_time(t).ok_or_else(|| {
            format!(
                "time {:?} is not a time (2026-12-06T10:00:00, or seconds since 1970)",
                clip(t)
            )
        })?),
        Some(_) => return Err("time must be a number or a string".into()),
    };
    Ok(ReportedEvent {
        user: text("user")?,
        product: text("product")?,
        kind: text("kind")?,
        at,
    })
}

/// `POST /v1/events`: events in, in one transaction; each refused one is named with why.
async fn post_events(State(s): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_error(&e, s.opts.max_body_kb))?;
    let list: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(a)) => a,
        Ok(_) => return Err(ApiError::bad("the body is a JSON array of events".to_string())),
        Err(e) => return Err(ApiError::bad(format!("the body is not JSON: {e}"))),
    };
    if list.len() > s.opts.max_events {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one request; send at most {} (--max-events)",
                list.len(),
                s.opts.max_events
            ),
        ));
    }
    let mut rejected: Vec<Value> = Vec::new();
    let mut good: Vec<(usize, ReportedEvent)> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match event_of(v) {
            Ok(e) => good.push((i, e)),
            Err(why) => rejected.push(json!({ "index": i, "error": why })),
        }
    }
    s.work(move |w: &Work| {
        let events: Vec<ReportedEvent> = good.iter().map(|(_, e)| e.clone()).collect();
        let recorded = w.write(|cat| cat.record_events(&events))?;
        for (j, why) in recorded.rejected {
            if let Some((i, _)) = good.get(j) {
                rejected.push(json!({ "index": i, "error": why }));
            }
        }
        rejected.sort_by_key(|r| r["index"].as_u64());
        w.shared.count_events(recorded.accepted, rejected.len());
        Ok(json!({ "accepted": recorded.accepted, "rejected": rejected }))
    })
    .await
}

/// `GET /v1/products/{id}/photo`: the catalogue's copy of the photo. No key (an `<img>` cannot
/// send one, and the shop shows these photos anyway); limited per address instead.
async fn photo(State(s): State<Arc<Shared>>, id: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let id = path_arg(id)?;
    let (bytes, mime) = s
        .work_raw(move |w: &Work| {
            let product = w.product(&id)?;
            w.read(|cat| Ok(super::reply::photo_file(cat, &product)))?
                .ok_or_else(|| ApiError::not_found(format!("product {} has no photo here", product.id)))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /healthz`: 200 when the engine can rank, 503 with why when it cannot.
async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    match s.live.get() {
        lookbook::live::Loaded::Ready(e) => {
            Json(json!({ "status": "ok", "products": e.products().len() })).into_response()
        }
        lookbook::live::Loaded::Missing(why) => ApiError::unavailable(s.scrub(&why)).into_response(),
    }
}

/// `GET /metrics`: Prometheus text (a read key).
async fn metrics(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let (products, ready) = match s.live.get() {
        lookbook::live::Loaded::Ready(e) => (e.products().len(), true),
        lookbook::live::Loaded::Missing(_) => (0, false),
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(products, ready),
    )
        .into_response())
}

/// `GET /openapi.json`: the description of every route.
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// `GET /widget.js`: the script a shop adds to its product pages (docs/http.md).
async fn widget() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("widget.js"),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; GET /openapi.json lists them".to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method; GET /openapi.json lists them".to_string(),
    )
}

/// A body that could not be read: too large (413, naming the limit) or cut off (400).
fn body_error(e: &BytesRejection, limit_kb: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over this route's limit of {limit_kb} KiB"),
        )
    } else {
        ApiError::bad(format!("the body could not be read: {}", e.body_text()))
    }
}

use axum::Json;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_exactly_the_routes() {
        let spec: Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        let documented: std::collections::BTreeSet<&str> =
            spec["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        let routed: std::collections::BTreeSet<&str> = ROUTES.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_filter_name_is_read() {
        for f in FILTERS {
            let q = Ok(Query(vec![(f.to_string(), "1".to_string())]));
            let p = Params::read(q, 10, true).unwrap_or_else(|e| panic!("{f}: {e:?}"));
            assert!(!p.filter.is_empty(), "{f} set nothing");
        }
    }
}
