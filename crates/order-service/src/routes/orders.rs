//! `POST /orders`, `GET /orders/{id}`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::order::OrderCommand;
use serde::Deserialize;
use service_kit::Problem;
use utoipa::IntoParams;

use super::openapi::{
    BodyErrors, CommandErrors, CommandHeaders, OrderAnswer, OrderId, ReadErrors, ReadHeaders,
};
use super::{
    AppState, Command, Target, json_body, order_command, order_response, parse_order_id, read,
};
use crate::view::{OrderView, PlaceOrderBody};

/// Places an order: 201 with `Location` and the view.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    request_body = PlaceOrderBody,
    params(CommandHeaders),
    responses(
        (status = 201, description = "Placed", body = OrderView, headers(
            ("ETag" = String, description = "The order's version, for `If-Match`"),
            ("Location" = String, description = "The order's URL"),
            ("Consistency-Token" = String, description = "Send it with a later read to see this write"),
        ), links(
                ("read" = (operation_id = "get_order", parameters(("id" = "$response.body#/id")))),
                ("history" = (operation_id = "order_history", parameters(("id" = "$response.body#/id")))),
                ("add_item" = (operation_id = "add_item", parameters(("id" = "$response.body#/id")))),
                ("remove_item" = (operation_id = "remove_item", parameters(("id" = "$response.body#/id"), ("sku" = "$response.body#/items/0/sku")))),
                ("confirm" = (operation_id = "confirm", parameters(("id" = "$response.body#/id")))),
                ("stock_reserved" = (operation_id = "stock_reserved", parameters(("id" = "$response.body#/id")))),
                ("ship" = (operation_id = "ship", parameters(("id" = "$response.body#/id")))),
                ("deliver" = (operation_id = "deliver", parameters(("id" = "$response.body#/id")))),
                ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")))),
        )),
        CommandErrors,
        BodyErrors,
    )
)]
pub async fn place(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let (parsed, raw) = json_body::<PlaceOrderBody>(&headers, body)?;
    let (customer_id, email, items) = parsed.parse()?;
    let route = format!("POST {}", uri.path());
    let command = Command {
        route: &route,
        body: &raw,
        target: Target::New,
        build: Box::new(move |order_id| OrderCommand::Place {
            order_id,
            customer_id,
            email,
            items,
        }),
    };
    Ok(order_command(&state, &headers, command).await)
}

/// `GET /orders/{id}` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Wait (at most 10 s) until the order has at least this version.
    min_version: Option<u64>,
}

/// The order's current view; with `?min_version=N`, once it has version N.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    params(OrderId, ReadParams, ReadHeaders),
    responses(OrderAnswer, ReadErrors,)
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_order_id(&id)?;
    let Query(params) =
        params.map_err(|r| Problem::new(StatusCode::BAD_REQUEST).detail(r.body_text()))?;
    let snapshot = read::current(&state, &state.orders, id, params.min_version, &headers).await?;
    Ok(order_response(&snapshot, false))
}
