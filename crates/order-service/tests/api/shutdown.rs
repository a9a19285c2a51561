//! Graceful shutdown: once told to stop, the service takes no new
//! connections but answers every request already in flight.

use std::time::Duration;

use e2e::wait::eventually;
use reqwest::Method;

use crate::support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight() {
    let mut system = start().await;
    let id = system.place().await;

    // A read that waits for version 2, which only a later command makes.
    let waiting = tokio::spawn(
        system
            .request(Method::GET, &format!("/orders/{id}?min_version=2"))
            .send(),
    );
    // In flight: the wait and the /metrics request that observes it.
    eventually("the read in flight", Duration::from_secs(10), async || {
        let in_flight = system.metric("order_service_http_requests_in_flight").await;
        (in_flight >= 2.0).then_some(())
    })
    .await;

    let served = system.begin_shutdown();
    eventually(
        "connections refused after shutdown",
        Duration::from_secs(10),
        async || {
            let answer = reqwest::Client::new()
                .get(format!("{}/healthz", system.base_url))
                .send()
                .await;
            answer.is_err().then_some(())
        },
    )
    .await;
    assert!(!served.is_finished(), "it waits for the request in flight");

    // Another instance takes the order to version 2; the waiting read sees it.
    let other = system.another_service().await;
    let confirmed = system
        .http
        .post(format!("{}/orders/{id}/confirm", other.base_url))
        .send()
        .await
        .expect("the other instance answers");
    assert_eq!(confirmed.status(), 200);

    let answer = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the read is answered")
        .expect("the task ran")
        .expect("an HTTP answer, not a dropped connection");
    assert_eq!(answer.status(), 200);
    let order: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(order["version"], 2);
    assert_eq!(order["status"], "confirmed");

    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the service stops once idle")
        .expect("the task ran")
        .expect("it stopped without error");
}
