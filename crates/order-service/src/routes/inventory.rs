//! The inventory: `PUT /inventory/{sku}` (create), restock, reservations,
//! `GET /inventory/{sku}`, and from the read model `GET /inventory` and
//! `GET /inventory/{sku}/events`.
//!
//! A SKU's stock lives on the log under an id derived from the SKU
//! ([`stock_id`]), so the path's SKU is all a client needs.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::inventory::{InventoryAggregate, InventoryCommand, Sku, stock_id};
use read_model::inventory::{self as model, MAX_PAGE};
use serde::{Deserialize, Serialize};
use service_kit::Problem;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::openapi::{
    BodyErrors, CommandErrors, CommandHeaders, ReadErrors, ReadHeaders, SkuPath, StockAnswer,
};
use super::{AppState, Command, Target, json_body, read, run_command};
use crate::view::{CreateStockBody, ReserveBody, StockSnapshot, StockView, UnitsBody, invalid};

/// The SKU in a path: 404 when it cannot name any stock.
fn parse_sku(text: &str) -> Result<Sku, Problem> {
    Sku::parse(text).map_err(|error| {
        Problem::new(StatusCode::NOT_FOUND)
            .detail(format!("no stock of `{text}`: the sku {}", error.rule))
    })
}

/// The stock view with `ETag` (201 with `Location` when created), or 404.
fn stock_response(snapshot: &StockSnapshot, created: bool) -> Response {
    let Some(view) = StockView::of(snapshot) else {
        return Problem::new(StatusCode::NOT_FOUND)
            .detail("no such stock")
            .into_response();
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = snapshot
        .state
        .as_ref()
        .map(|stock| format!("/inventory/{}", stock.sku));
    let mut response = (status, Json(&view)).into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", snapshot.version)) {
        headers.insert(header::ETAG, etag);
    }
    if created && let Some(Ok(location)) = location.map(|l| HeaderValue::from_str(&l)) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// Runs a command on a SKU's stock and answers with the stock.
async fn stock_command(
    state: &AppState,
    uri: &axum::http::Uri,
    method: &str,
    headers: &HeaderMap,
    body: &[u8],
    target: Target,
    command: InventoryCommand,
) -> Response {
    let route = format!("{method} {}", uri.path());
    let command = Command {
        route: &route,
        body,
        target,
        build: Box::new(move |_| command),
    };
    run_command(state, &state.inventory, headers, command, stock_response).await
}

/// Starts keeping stock of a SKU, none on hand: 201. A SKU with stock
/// already is a 409 (send an `Idempotency-Key` to retry safely).
#[utoipa::path(
    put,
    path = "/inventory/{sku}",
    tag = "inventory",
    request_body = CreateStockBody,
    params(SkuPath, CommandHeaders),
    responses(
        (status = 201, description = "Created", body = StockView, headers(
            ("ETag" = String, description = "The stock's version, for `If-Match`"),
            ("Location" = String, description = "The stock's URL"),
            ("Consistency-Token" = String, description = "Send it with a later read to see this write"),
        ), links(
                ("read" = (operation_id = "get_stock", parameters(("sku" = "$response.body#/sku")))),
                ("history" = (operation_id = "stock_history", parameters(("sku" = "$response.body#/sku")))),
                ("restock" = (operation_id = "restock", parameters(("sku" = "$response.body#/sku")))),
                ("reserve" = (operation_id = "reserve", parameters(("sku" = "$response.body#/sku")))),
        )),
        CommandErrors,
        BodyErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let sku = Sku::parse(sku).map_err(invalid)?;
    let (parsed, raw) = json_body::<CreateStockBody>(&headers, body)?;
    let low_stock_threshold = parsed.parse()?;
    let id = stock_id(&sku);
    let command = InventoryCommand::Create {
        sku,
        low_stock_threshold,
    };
    Ok(stock_command(
        &state,
        &uri,
        "PUT",
        &headers,
        &raw,
        Target::Create(id),
        command,
    )
    .await)
}

/// Units arrived.
#[utoipa::path(
    post,
    path = "/inventory/{sku}/restock",
    tag = "inventory",
    request_body = UnitsBody,
    params(SkuPath, CommandHeaders),
    responses(StockAnswer, CommandErrors, BodyErrors)
)]
pub async fn restock(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = stock_id(&parse_sku(&sku)?);
    let (parsed, raw) = json_body::<UnitsBody>(&headers, body)?;
    let command = InventoryCommand::Restock {
        units: parsed.parse()?,
    };
    Ok(stock_command(
        &state,
        &uri,
        "POST",
        &headers,
        &raw,
        Target::Existing(id),
        command,
    )
    .await)
}

/// Holds units for an order: 409 when fewer are available, or the order
/// holds a reservation of this SKU already.
#[utoipa::path(
    post,
    path = "/inventory/{sku}/reservations",
    tag = "inventory",
    request_body = ReserveBody,
    params(SkuPath, CommandHeaders),
    responses(
        (status = 200, description = "The stock with the reservation", body = StockView, headers(
            ("ETag" = String, description = "The stock's version, for `If-Match`"),
            ("Consistency-Token" = String, description = "Send it with a later read to see this write"),
        ), links(
                ("release" = (operation_id = "release", parameters(("sku" = "$response.body#/sku"), ("order_id" = "$request.body#/order_id")))),
                ("commit" = (operation_id = "commit", parameters(("sku" = "$response.body#/sku"), ("order_id" = "$request.body#/order_id")))),
        )),
        CommandErrors,
        BodyErrors
    )
)]
pub async fn reserve(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = stock_id(&parse_sku(&sku)?);
    let (parsed, raw) = json_body::<ReserveBody>(&headers, body)?;
    let (order_id, units) = parsed.parse()?;
    let command = InventoryCommand::Reserve { order_id, units };
    Ok(stock_command(
        &state,
        &uri,
        "POST",
        &headers,
        &raw,
        Target::Existing(id),
        command,
    )
    .await)
}

/// The path of one order's reservation.
#[derive(IntoParams)]
#[into_params(names("sku", "order_id"), parameter_in = Path)]
#[expect(
    dead_code,
    reason = "describes the path for the document; handlers parse it themselves"
)]
pub struct ReservationPath(String, Uuid);

fn parse_reservation(sku: &str, order_id: &str) -> Result<(Uuid, Uuid), Problem> {
    let id = stock_id(&parse_sku(sku)?);
    let order_id = Uuid::parse_str(order_id).map_err(|_| {
        Problem::new(StatusCode::NOT_FOUND).detail(format!(
            "no reservation for `{order_id}`: order ids are UUIDs"
        ))
    })?;
    Ok((id, order_id))
}

/// Gives an order's reservation back.
#[utoipa::path(
    delete,
    path = "/inventory/{sku}/reservations/{order_id}",
    tag = "inventory",
    params(ReservationPath, CommandHeaders),
    responses(StockAnswer, CommandErrors)
)]
pub async fn release(
    State(state): State<AppState>,
    Path((sku, order_id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (id, order_id) = parse_reservation(&sku, &order_id)?;
    let command = InventoryCommand::Release { order_id };
    Ok(stock_command(
        &state,
        &uri,
        "DELETE",
        &headers,
        &[],
        Target::Existing(id),
        command,
    )
    .await)
}

/// The order's reserved units leave with it.
#[utoipa::path(
    post,
    path = "/inventory/{sku}/reservations/{order_id}/commit",
    tag = "inventory",
    params(ReservationPath, CommandHeaders),
    responses(StockAnswer, CommandErrors)
)]
pub async fn commit(
    State(state): State<AppState>,
    Path((sku, order_id)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (id, order_id) = parse_reservation(&sku, &order_id)?;
    let command = InventoryCommand::Commit { order_id };
    Ok(stock_command(
        &state,
        &uri,
        "POST",
        &headers,
        &[],
        Target::Existing(id),
        command,
    )
    .await)
}

/// `GET /inventory/{sku}` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Wait (at most 10 s) until the stock has at least this version.
    min_version: Option<u64>,
}

/// A SKU's stock now; with `?min_version=N`, once it has version N.
#[utoipa::path(
    get,
    path = "/inventory/{sku}",
    operation_id = "get_stock",
    tag = "inventory",
    params(SkuPath, ReadParams, ReadHeaders),
    responses(StockAnswer, ReadErrors)
)]
pub async fn get(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = stock_id(&parse_sku(&sku)?);
    let Query(params) =
        params.map_err(|r| Problem::new(StatusCode::BAD_REQUEST).detail(r.body_text()))?;
    let snapshot = read::current::<InventoryAggregate>(
        &state,
        &state.inventory,
        id,
        params.min_version,
        &headers,
    )
    .await?;
    Ok(stock_response(&snapshot, false))
}

/// `GET /inventory` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// SKUs per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^s[A-Za-z0-9._-]{1,64}$", nullable = false)]
    cursor: Option<String>,
}

/// A page of stock.
#[derive(Serialize, ToSchema)]
pub struct StockPage {
    /// In SKU order.
    stock: Vec<StockView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A SKU's accepted events.
#[derive(Serialize, ToSchema)]
pub struct StockHistory {
    /// The events as appended (the wire envelopes), oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
}

/// Lists the stock of every SKU from the read model, in SKU order.
#[utoipa::path(
    get,
    path = "/inventory",
    operation_id = "list_stock",
    tag = "inventory",
    params(ListParams, ReadHeaders),
    responses(
        (status = 200, description = "A page of stock", body = StockPage),
        (status = 400, description = "An unknown parameter, a bad limit or cursor, or a `Consistency-Token` that cannot be honoured", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is unavailable; retry", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The read model did not catch up with the `Consistency-Token` in time; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<StockPage>, Problem> {
    let bad = |detail: String| Problem::new(StatusCode::BAD_REQUEST).detail(detail);
    let Query(params) = params.map_err(|r| bad(r.body_text()))?;
    let limit = read::page_limit(params.limit, MAX_PAGE)?;
    // The cursor is `s` and the page's last SKU: opaque to clients.
    let after = match params.cursor.as_deref() {
        None => None,
        Some(text) => Some(
            text.strip_prefix('s')
                .and_then(|sku| Sku::parse(sku).ok())
                .ok_or_else(|| bad("invalid cursor".into()))?,
        ),
    };
    read::consistent(&state, &state.inventory, &state.inventory_model, &headers).await?;
    let page = model::list_stock(&state.inventory_model, after.as_ref(), limit)
        .await
        .map_err(read::model_unavailable)?;
    Ok(Json(StockPage {
        stock: page.stock.iter().filter_map(StockView::of).collect(),
        next_cursor: page.next_after.map(|sku| format!("s{sku}")),
    }))
}

/// A SKU's accepted events, oldest first, from the read model.
#[utoipa::path(
    get,
    path = "/inventory/{sku}/events",
    operation_id = "stock_history",
    tag = "inventory",
    params(SkuPath, ReadHeaders),
    responses(
        (status = 200, description = "The stock's history", body = StockHistory),
        (status = 400, description = "A `Consistency-Token` that cannot be honoured", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stock (or not yet in the read model)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is unavailable; retry", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The read model did not catch up with the `Consistency-Token` in time; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Path(sku): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StockHistory>, Problem> {
    let parsed = parse_sku(&sku)?;
    read::consistent(&state, &state.inventory, &state.inventory_model, &headers).await?;
    match model::stock_events(&state.inventory_model, stock_id(&parsed)).await {
        Ok(Some(events)) => Ok(Json(StockHistory { events })),
        Ok(None) => Err(Problem::new(StatusCode::NOT_FOUND).detail(format!("no stock of {sku}"))),
        Err(error) => Err(read::model_unavailable(error)),
    }
}
