//! `GET /openapi.json`: every route is in it, every documented route exists,
//! and every error a route can answer is documented as a problem.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::support::start;

/// The public API of the design, as (method, path).
const API: &[(&str, &str)] = &[
    ("post", "/orders"),
    ("get", "/orders"),
    ("get", "/orders/{id}"),
    ("get", "/orders/{id}/events"),
    ("post", "/orders/{id}/items"),
    ("delete", "/orders/{id}/items/{sku}"),
    ("post", "/orders/{id}/confirm"),
    ("post", "/orders/{id}/stock-reserved"),
    ("post", "/orders/{id}/ship"),
    ("post", "/orders/{id}/deliver"),
    ("post", "/orders/{id}/cancel"),
    ("get", "/inventory"),
    ("put", "/inventory/{sku}"),
    ("get", "/inventory/{sku}"),
    ("get", "/inventory/{sku}/events"),
    ("post", "/inventory/{sku}/restock"),
    ("post", "/inventory/{sku}/reservations"),
    ("delete", "/inventory/{sku}/reservations/{order_id}"),
    ("post", "/inventory/{sku}/reservations/{order_id}/commit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Errors every command can answer; commands with a body add 413 and 415.
const COMMAND_ERRORS: &[&str] = &["400", "404", "409", "412", "422", "503", "504"];
const BODY_ERRORS: &[&str] = &["413", "415"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_route_with_its_bodies_and_errors() {
    let system = start().await;
    let response = system
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document: {}",
        doc["openapi"]
    );

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| !matches!(key.as_str(), "parameters" | "summary" | "description"))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = API
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, expected, "documented operations");

    for (method, path) in &documented {
        let operation = &doc["paths"][path][method];
        let responses = operation["responses"].as_object().expect("responses");
        let has_body = operation.get("requestBody").is_some();
        let entity = ["/orders", "/inventory"]
            .into_iter()
            .find(|prefix| path.starts_with(prefix));
        let is_command = entity.is_some() && method != "get";

        if is_command {
            for status in COMMAND_ERRORS {
                assert!(
                    responses.contains_key(*status),
                    "{method} {path} documents {status}"
                );
            }
            assert_eq!(
                has_body,
                method != "delete"
                    && !matches!(
                        path.rsplit('/').next(),
                        Some("confirm" | "stock-reserved" | "deliver" | "commit")
                    ),
                "{method} {path}: a request body exactly where the API takes one"
            );
            let headers: Vec<&str> = operation["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter(|p| p["in"] == "header")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(headers, ["If-Match", "Idempotency-Key"], "{method} {path}");
        }
        if has_body {
            for status in BODY_ERRORS {
                assert!(
                    responses.contains_key(*status),
                    "{method} {path} documents {status}"
                );
            }
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let name = schema["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next())
                .expect("a named body schema");
            assert_eq!(
                doc["components"]["schemas"][name]["additionalProperties"],
                Value::Bool(false),
                "{name} refuses unknown fields, as the handler does"
            );
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"]["schema"]["$ref"]
                        .as_str()
                        .is_some_and(|r| r.ends_with("/Problem")),
                    "{method} {path} {status} is a problem: {response}"
                );
            }
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} is described"
            );
        }
        let one_entity = ["/orders/{id}", "/inventory/{sku}"].contains(&path.as_str());
        if let Some(entity) = entity
            && (method != "get" || one_entity)
        {
            let creates = (method.as_str(), path.as_str()) == ("post", "/orders")
                || (method.as_str(), path.as_str()) == ("put", "/inventory/{sku}");
            let success = if creates { "201" } else { "200" };
            let view = if entity == "/orders" {
                "/OrderView"
            } else {
                "/StockView"
            };
            let answer = &responses[success];
            assert!(
                answer["headers"].get("ETag").is_some(),
                "{method} {path} documents the ETag"
            );
            assert!(
                answer["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(view)),
                "{method} {path} answers the {view} view"
            );
        }

        // The route exists: the router's fallbacks never answer it.
        let concrete = path
            .replace("{id}", &Uuid::now_v7().to_string())
            .replace("{order_id}", &Uuid::now_v7().to_string())
            .replace("{sku}", "SKU-1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let response = system
            .request(method.clone(), &concrete)
            .send()
            .await
            .expect("answers");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert!(
            status != 405 && !body.contains("no such resource"),
            "{method} {concrete} is routed, not a fallback: {status} {body}"
        );
    }

    let view = &doc["components"]["schemas"]["OrderView"];
    let statuses: Vec<&str> = view["properties"]["status"]["enum"]
        .as_array()
        .expect("the status is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        statuses,
        ["placed", "confirmed", "shipped", "delivered", "cancelled"]
    );
}
