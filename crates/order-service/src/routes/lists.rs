//! The reads served from the PostgreSQL read model: `GET /orders` (filtered,
//! paged) and `GET /orders/{id}/events` (an order's history).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use domain::order::Status;
use read_model::queries::{self, Cursor, ListOrders, MAX_PAGE};
use serde::{Deserialize, Serialize};
use service_kit::Problem;
use utoipa::{IntoParams, ToSchema};

use super::openapi::{OrderId, ReadHeaders};
use super::{AppState, parse_order_id, read};
use crate::view::OrderView;

/// `GET /orders` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's orders.
    customer_id: Option<String>,
    /// Only orders in this status (`placed`, `confirmed`, `shipped`, `delivered`, `cancelled`).
    #[param(schema_with = crate::view::status_schema, nullable = false)]
    status: Option<String>,
    /// Orders per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^c[0-9a-f]{32}$", nullable = false)]
    cursor: Option<String>,
}

/// A page of orders.
#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    /// Oldest first (by id).
    orders: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// An order's accepted events.
#[derive(Serialize, ToSchema)]
pub struct OrderHistory {
    /// The events as appended (the wire envelopes), oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<serde_json::Value>,
}

/// Lists orders from the read model, filtered and paged by an opaque cursor.
#[utoipa::path(
    get,
    path = "/orders",
    operation_id = "list_orders",
    tag = "orders",
    params(ListParams, ReadHeaders),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "An unknown parameter, a bad status, limit or cursor, or a `Consistency-Token` that cannot be honoured", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is unavailable; retry", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The read model did not catch up with the `Consistency-Token` in time; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<OrderPage>, Problem> {
    let bad = |detail: String| Problem::new(StatusCode::BAD_REQUEST).detail(detail);
    let Query(params) = params.map_err(|r| bad(r.body_text()))?;
    let status = match params.status.as_deref() {
        None => None,
        Some(name) => Some(
            Status::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| bad(format!("unknown status `{name}`")))?,
        ),
    };
    let limit = read::page_limit(params.limit, MAX_PAGE)?;
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(text) => Some(Cursor::decode(text).ok_or_else(|| bad("invalid cursor".into()))?),
    };
    let request = ListOrders {
        customer_id: params.customer_id,
        status,
        limit,
        cursor,
    };
    read::consistent(&state, &state.orders, &state.read_model, &headers).await?;
    let page = queries::list_orders(&state.read_model, &request)
        .await
        .map_err(read::model_unavailable)?;
    Ok(Json(OrderPage {
        orders: page.orders.iter().filter_map(OrderView::of).collect(),
        next_cursor: page.next.map(Cursor::encode),
    }))
}

/// An order's accepted events, oldest first, from the read model.
#[utoipa::path(
    get,
    path = "/orders/{id}/events",
    operation_id = "order_history",
    tag = "orders",
    params(OrderId, ReadHeaders),
    responses(
        (status = 200, description = "The order's history", body = OrderHistory),
        (status = 400, description = "A `Consistency-Token` that cannot be honoured", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yet in the read model)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The read model is unavailable; retry", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The read model did not catch up with the `Consistency-Token` in time; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<OrderHistory>, Problem> {
    let id = parse_order_id(&id)?;
    read::consistent(&state, &state.orders, &state.read_model, &headers).await?;
    match queries::order_events(&state.read_model, id).await {
        Ok(Some(events)) => Ok(Json(OrderHistory { events })),
        Ok(None) => Err(Problem::new(StatusCode::NOT_FOUND).detail(format!("no order {id}"))),
        Err(error) => Err(read::model_unavailable(error)),
    }
}
