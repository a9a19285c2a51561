//! `POST /orders/{id}/items`, `DELETE /orders/{id}/items/{sku}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::order::{OrderCommand, Sku};

use super::openapi::{BodyErrors, CommandErrors, CommandHeaders, OrderAnswer, OrderId};
use super::{AppState, Command, json_body, order_command, parse_order_id};
use crate::view::{ItemBody, invalid};

/// Adds a line (or raises a SKU's quantity) while the order is `placed`.
#[utoipa::path(
    post,
    path = "/orders/{id}/items",
    tag = "orders",
    request_body = ItemBody,
    params(OrderId, CommandHeaders),
    responses(OrderAnswer, CommandErrors, BodyErrors)
)]
pub async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed =
        parse_order_id(&id).and_then(|id| Ok((id, json_body::<ItemBody>(&headers, body)?)));
    let (order_id, (item, raw)) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return problem.into_response(),
    };
    let item = match item.parse() {
        Ok(item) => item,
        Err(problem) => return problem.into_response(),
    };
    let route = format!("POST {}", uri.path());
    let command = Command {
        route: &route,
        body: &raw,
        aggregate_id: Some(order_id),
        build: Box::new(move |_| OrderCommand::AddItem { item }),
    };
    order_command(&state, &headers, command).await
}

/// Removes a line while the order is `placed` (never the last one).
#[utoipa::path(
    delete,
    path = "/orders/{id}/items/{sku}",
    tag = "orders",
    params(OrderId, ("sku" = String, Path, description = "The line's SKU"), CommandHeaders),
    responses(OrderAnswer, CommandErrors)
)]
pub async fn remove(
    State(state): State<AppState>,
    Path((id, sku)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let parsed = parse_order_id(&id).and_then(|id| Ok((id, Sku::parse(sku).map_err(invalid)?)));
    let (order_id, sku) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return problem.into_response(),
    };
    let route = format!("DELETE {}", uri.path());
    let command = Command {
        route: &route,
        body: &[],
        aggregate_id: Some(order_id),
        build: Box::new(move |_| OrderCommand::RemoveItem { sku }),
    };
    order_command(&state, &headers, command).await
}
