//! `POST /orders/{id}/items`, `DELETE /orders/{id}/items/{sku}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::order::{OrderCommand, Sku};
use service_kit::Problem;

use super::openapi::{BodyErrors, CommandErrors, CommandHeaders, OrderAnswer, OrderId, SkuPath};
use super::{AppState, Command, Target, json_body, order_command, parse_order_id};
use crate::view::{ItemBody, invalid};

/// Adds a line (or raises a SKU's quantity) while the order is `placed`.
#[utoipa::path(
    post,
    path = "/orders/{id}/items",
    operation_id = "add_item",
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
) -> Result<Response, Problem> {
    let order_id = parse_order_id(&id)?;
    let (item, raw) = json_body::<ItemBody>(&headers, body)?;
    let item = item.parse()?;
    let route = format!("POST {}", uri.path());
    let command = Command {
        route: &route,
        body: &raw,
        target: Target::Existing(order_id),
        build: Box::new(move |_| OrderCommand::AddItem { item }),
    };
    Ok(order_command(&state, &headers, command).await)
}

/// Removes a line while the order is `placed` (never the last one).
#[utoipa::path(
    delete,
    path = "/orders/{id}/items/{sku}",
    operation_id = "remove_item",
    tag = "orders",
    params(OrderId, SkuPath, CommandHeaders),
    responses(OrderAnswer, CommandErrors)
)]
pub async fn remove(
    State(state): State<AppState>,
    Path((id, sku)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let order_id = parse_order_id(&id)?;
    let sku = Sku::parse(sku).map_err(invalid)?;
    let route = format!("DELETE {}", uri.path());
    let command = Command {
        route: &route,
        body: &[],
        target: Target::Existing(order_id),
        build: Box::new(move |_| OrderCommand::RemoveItem { sku }),
    };
    Ok(order_command(&state, &headers, command).await)
}
