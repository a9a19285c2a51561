//! `GET /openapi.json`, and the pieces of the document the handlers share:
//! their headers and the error answers of each kind of route.
//!
//! Each handler carries its own `#[utoipa::path]`, and the router is built
//! from those same handlers, so a route cannot exist without its entry.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use service_kit::Problem;
use utoipa::{IntoParams, IntoResponses, OpenApi};
use uuid::Uuid;

use crate::view::{OrderView, StockView};

/// The document's root; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders API",
        description = "Commands on orders and stock, appended to Kafka as events, \
                       answered once the projector has folded them (read-your-writes). \
                       Errors are RFC 9457 problem details."
    ),
    tags(
        (name = "orders", description = "Place orders and take them through their lifecycle."),
        (name = "inventory", description = "Stock per SKU: create, restock, reserve for orders."),
        (name = "operations", description = "Health, readiness, metrics and this document.")
    )
)]
pub struct ApiDoc;

/// The rendered document, shared by every request for it.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);

/// The order id in the path.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[expect(
    dead_code,
    reason = "describes the path for the document; handlers parse it themselves"
)]
pub struct OrderId(Uuid);

/// The SKU in the path.
#[derive(IntoParams)]
#[into_params(names("sku"), parameter_in = Path)]
#[expect(
    dead_code,
    reason = "describes the path for the document; handlers parse it themselves"
)]
pub struct SkuPath(
    /// `[A-Za-z0-9._-]{1,64}`.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    String,
);

/// The headers every command accepts.
#[derive(IntoParams)]
#[into_params(names("If-Match", "Idempotency-Key"), parameter_in = Header)]
#[expect(
    dead_code,
    reason = "describes headers for the document; handlers read them themselves"
)]
pub struct CommandHeaders(
    /// `"<version>"` (an `ETag` this API gave): run only if the entity is
    /// still at this version (else 412).
    #[param(pattern = r#"^(W/)?"[0-9]{1,19}"$"#, nullable = false)]
    Option<String>,
    /// 1 to 255 visible ASCII characters: a retry with the same key and body
    /// returns the first answer and appends nothing; the same key with
    /// another request is a 422.
    #[param(
        pattern = r"^[\x21-\x7E]{1,255}$",
        min_length = 1,
        max_length = 255,
        nullable = false
    )]
    Option<String>,
);

/// The header of reads that should see a write.
#[derive(IntoParams)]
#[into_params(names("Consistency-Token"), parameter_in = Header)]
#[expect(
    dead_code,
    reason = "describes headers for the document; handlers read them themselves"
)]
pub struct ReadHeaders(
    /// The `Consistency-Token` a write of this entity type answered with:
    /// the read waits (up to 10 s for one entity, 5 s for lists) until it
    /// sees that write. 400 when it is not this entity type's or names a
    /// write the log does not have; 504 when not caught up in time.
    #[param(pattern = r"^ct1\.[A-Za-z0-9_-]+$", nullable = false)]
    Option<String>,
);

/// Success with the order: its view, and its version as `ETag`.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers for the document; handlers build the view"
)]
pub enum OrderAnswer {
    /// The order after the command (or, for a read, now).
    #[response(status = 200, headers(
        ("ETag" = String, description = "The order's version, for `If-Match`"),
        ("Consistency-Token" = String, description = "On a write: send it with a later read to see this write"),
    ))]
    Ok(OrderView),
}

/// Success with the stock: its view, and its version as `ETag`.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers for the document; handlers build the view"
)]
pub enum StockAnswer {
    /// The stock after the command (or, for a read, now).
    #[response(status = 200, headers(
        ("ETag" = String, description = "The stock's version, for `If-Match`"),
        ("Consistency-Token" = String, description = "On a write: send it with a later read to see this write"),
    ))]
    Ok(StockView),
}

/// What any command can answer besides success.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers for the document; handlers build `Problem`s"
)]
pub enum CommandErrors {
    /// Malformed JSON, `If-Match` or `Idempotency-Key`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No such order or stock.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Illegal in the entity's state (an order's status, stock that is not
    /// available), still contended after retries, or the `Idempotency-Key`
    /// is in use by a request still running.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `If-Match` names a version that is no longer current.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    /// A field breaks its rule (the problem names it), the body has unknown
    /// or missing fields, or the `Idempotency-Key` was used with another body.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// Kafka or the projector is unavailable; nothing was appended. Retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
    /// Appended, but the verdict did not come in time: the command may still
    /// take effect. Retry with the same `Idempotency-Key` to learn its fate.
    #[response(status = 504, content_type = "application/problem+json")]
    VerdictTimeout(Problem),
}

/// What a command with a body can answer besides [`CommandErrors`].
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers for the document; handlers build `Problem`s"
)]
pub enum BodyErrors {
    /// The body is over 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

/// What a read can answer besides success.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "describes answers for the document; handlers build `Problem`s"
)]
pub enum ReadErrors {
    /// An unknown or malformed query parameter, a `min_version` beyond any
    /// version, or a `Consistency-Token` that cannot be honoured.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No such order or stock.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// `min_version` will not come: the entity is final below it (a
    /// delivered or cancelled order), or it is more than 100,000 versions ahead.
    #[response(status = 409, content_type = "application/problem+json")]
    Final(Problem),
    /// The projector is unavailable. Retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
    /// The awaited version or write did not arrive in time.
    #[response(status = 504, content_type = "application/problem+json")]
    TimedOut(Problem),
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn document(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}
