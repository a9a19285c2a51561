//! The lifecycle: confirm, ship, deliver, cancel.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::order::OrderCommand;
use service_kit::Problem;

use super::openapi::{BodyErrors, CommandErrors, CommandHeaders, OrderAnswer, OrderId};
use super::{AppState, Command, Target, json_body, order_command, parse_order_id};
use crate::view::{CancelBody, ShipBody};

async fn transition(
    state: &AppState,
    id: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    command: OrderCommand,
) -> Result<Response, Problem> {
    let order_id = parse_order_id(id)?;
    let route = format!("POST {}", uri.path());
    let command = Command {
        route: &route,
        body,
        target: Target::Existing(order_id),
        build: Box::new(move |_| command),
    };
    Ok(order_command(state, headers, command).await)
}

/// `placed` → `confirmed`.
#[utoipa::path(
    post,
    path = "/orders/{id}/confirm",
    tag = "orders",
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors)
)]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    transition(&state, &id, &uri, &headers, &[], OrderCommand::Confirm).await
}

/// Records that every line's units are reserved in the inventory: the
/// fulfilment workflow's step once it has reserved them (a repeat changes
/// nothing).
#[utoipa::path(
    post,
    path = "/orders/{id}/stock-reserved",
    tag = "orders",
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors)
)]
pub async fn stock_reserved(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    transition(
        &state,
        &id,
        &uri,
        &headers,
        &[],
        OrderCommand::RecordStockReserved,
    )
    .await
}

/// `shipped` → `delivered`.
#[utoipa::path(
    post,
    path = "/orders/{id}/deliver",
    tag = "orders",
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors)
)]
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    transition(&state, &id, &uri, &headers, &[], OrderCommand::Deliver).await
}

/// `confirmed` → `shipped`, with carrier and tracking number.
#[utoipa::path(
    post,
    path = "/orders/{id}/ship",
    tag = "orders",
    request_body = ShipBody,
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors, BodyErrors)
)]
pub async fn ship(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let (body, raw) = json_body::<ShipBody>(&headers, body)?;
    let (carrier, tracking_number) = body.parse()?;
    let command = OrderCommand::Ship {
        carrier,
        tracking_number,
    };
    transition(&state, &id, &uri, &headers, &raw, command).await
}

/// `placed` or `confirmed` → `cancelled`, with a reason.
#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    tag = "orders",
    request_body = CancelBody,
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors, BodyErrors)
)]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let (body, raw) = json_body::<CancelBody>(&headers, body)?;
    let reason = body.parse()?;
    transition(
        &state,
        &id,
        &uri,
        &headers,
        &raw,
        OrderCommand::Cancel { reason },
    )
    .await
}
