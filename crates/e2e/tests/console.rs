//! The web console in a real browser (headless Chromium over WebDriver),
//! against the running services: an order placed through the form appears
//! in the live feed and in the list; on its page it is confirmed and the
//! timeline grows; a bad input shows the API's problem detail; the
//! inventory lists the stock; the operations page shows every partition.
//! Each page is saved as a screenshot (`CONSOLE_SCREENSHOTS`, by default
//! `.local/console-screenshots`; the README's are in `docs/console`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use e2e::browser::Browser;
use e2e::cluster::LogsOnFailure;
use e2e::sinks::smtp::SmtpSink;
use e2e::stack::Stack;
use serde_json::{Value, json};
use uuid::Uuid;

const PARTITIONS: usize = 2;
const ENTITIES: usize = 2;
const SOON: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_places_shows_and_confirms_an_order_in_a_browser() -> anyhow::Result<()> {
    let stack = Stack::new(
        "console",
        &[
            "projector",
            "order-service",
            "notifier",
            "fulfilment",
            "web-console",
        ],
    )?;
    let run = &stack.run;
    // A relative folder is the repository's, wherever cargo runs the test.
    let shots =
        e2e::cluster::repo_root().join(std::env::var_os("CONSOLE_SCREENSHOTS").map_or_else(
            || PathBuf::from(".local/console-screenshots"),
            PathBuf::from,
        ));
    let database_url = e2e::postgres::fresh_database(&format!("test_{run}")).await?;
    let smtp = SmtpSink::start("127.0.0.1:0".parse()?).await?;
    let database = format!("--database-url={database_url}");
    let partitions = format!("--partitions={PARTITIONS}");
    let projector = stack.start(
        "projector",
        vec![
            partitions.clone(),
            database.clone(),
            stack.state_dir("projector"),
        ],
    )?;
    let http = reqwest::Client::new();
    let ready = Duration::from_secs(90);
    projector
        .wait_ready(&http, ready)
        .await
        .map_err(anyhow::Error::msg)?;
    let api = stack.start(
        "order-service",
        vec![
            partitions.clone(),
            database.clone(),
            format!("--projector-url={}", projector.url),
        ],
    )?;
    let notifier = stack.start(
        "notifier",
        vec![
            partitions,
            database,
            format!("--smtp-port={}", smtp.addr.port()),
        ],
    )?;
    api.wait_ready(&http, ready)
        .await
        .map_err(anyhow::Error::msg)?;
    // The workflow starts once the order's page has been checked (it would
    // cancel the order, out of stock, meanwhile); the console knows its
    // address from the start.
    let fulfilment_port = e2e::cluster::free_port()?;
    let console = stack.start(
        "web-console",
        vec![
            format!("--order-service-url={}", api.url),
            format!("--projector-url={}", projector.url),
            format!("--notifier-url={}", notifier.url),
            format!("--fulfilment-url=http://127.0.0.1:{fulfilment_port}"),
        ],
    )?;
    let logs = LogsOnFailure::of(&[&projector, &api, &notifier, &console]);
    e2e::wait::eventually("the console", SOON, async || {
        let answer = http.get(format!("{}/healthz", console.url)).send().await;
        answer.ok()?.status().is_success().then_some(())
    })
    .await;
    let sku = format!("CONSOLE-{}", &run[24..]).to_uppercase();
    let created = http
        .put(format!("{}/inventory/{sku}", api.url))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(created.status(), 201, "{}", created.text().await?);

    let browser = Browser::start(1280, 900).await?;
    let page = |path: &str| format!("{}/#/{path}", console.url);
    browser.open(&page("")).await?;
    browser
        .wait_for("#connection", SOON, |text| text == "live")
        .await?;

    // Place an order through the form, moving around by the navigation as a
    // person would: the page, and its feed, stay loaded.
    let nav = async |target: &str| -> anyhow::Result<()> {
        let link = browser
            .find_all(&format!("header nav a[href=\"#/{target}\"]"))
            .await?;
        browser
            .click(link.first().context("a navigation link")?)
            .await
    };
    let customer = format!("customer-{}", &run[24..]);
    nav("orders").await?;
    let form = "#place";
    browser
        .fill(
            &browser.wait_count("#customer", 1, SOON).await?[0],
            &customer,
        )
        .await?;
    let submit = browser
        .find_all(&format!("{form} button[type=submit]"))
        .await?;
    browser.click(&submit[0]).await?;
    let placed = browser
        .wait_for("#placed a", SOON, |text| !text.is_empty())
        .await?;
    let id = browser
        .attribute(&placed, "data-id")
        .await?
        .unwrap_or_default();
    assert!(Uuid::parse_str(&id).is_ok(), "the new order's id: {id}");

    // It appears in the live feed and in the list.
    nav("").await?;
    let in_feed = format!("#feed li[data-id=\"{id}\"]");
    browser
        .wait_for(&in_feed, SOON, |text| text.contains("OrderPlaced"))
        .await?;
    browser.screenshot(&shots.join("feed.png")).await?;
    browser
        .open(&page(&format!("orders?customer={customer}")))
        .await?;
    browser
        .wait_for(&format!("#orders tr[data-id=\"{id}\"]"), SOON, |text| {
            text.contains("placed")
        })
        .await?;
    browser.screenshot(&shots.join("orders.png")).await?;

    // Its page: confirmed through the form, and the timeline grows.
    browser.open(&page(&format!("orders/{id}"))).await?;
    browser.wait_count("#timeline li", 1, SOON).await?;
    let confirm = browser
        .wait_count("button[data-action=\"confirm\"]", 1, SOON)
        .await?;
    browser.click(&confirm[0]).await?;
    browser
        .wait_for("#order-status", SOON, |text| text == "confirmed")
        .await?;
    let timeline = browser.wait_count("#timeline li", 2, SOON).await?;
    let last = browser.text(&timeline[timeline.len() - 1]).await?;
    assert!(last.contains("OrderConfirmed"), "{last}");
    browser
        .wait_for("#outcome", SOON, |text| text.contains("Confirm: accepted"))
        .await?;
    browser.screenshot(&shots.join("order.png")).await?;

    // A bad input: the page shows the API's own problem detail.
    let refused: Value = http
        .post(format!("{}/orders", api.url))
        .json(&json!({
            "customer_id": customer,
            "email": "someone@example.com",
            "items": [{"sku": "BOOK-1", "quantity": 0, "unit_price_cents": 1500}]
        }))
        .send()
        .await?
        .json()
        .await?;
    let detail = refused["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.is_empty(), "the API explains: {refused}");
    browser.open(&page("orders")).await?;
    let quantity = browser.wait_count("#quantity", 1, SOON).await?;
    browser.fill(&quantity[0], "0").await?;
    let submit = browser
        .find_all(&format!("{form} button[type=submit]"))
        .await?;
    browser.click(&submit[0]).await?;
    browser
        .wait_for("#placed .problem", SOON, |text| text.contains(&detail))
        .await?;
    browser.screenshot(&shots.join("problem.png")).await?;

    // The workflow acts on the confirmed order: the operations page shows
    // its commands once its own /metrics counts one.
    let fulfilment = stack.start_on(
        fulfilment_port,
        "fulfilment",
        [
            format!("--partitions={PARTITIONS}"),
            format!("--order-service-url={}", api.url),
        ],
    )?;
    e2e::wait::eventually("the workflow's first command", SOON, async || {
        let metrics = e2e::metrics::scrape(&http, &fulfilment.url).await.ok()?;
        (metrics.sum("fulfilment_steps_total") >= 1.0).then_some(())
    })
    .await;

    // The inventory, and every partition of both entities.
    browser.open(&page("inventory")).await?;
    browser
        .wait_for(&format!("#stock tr[data-sku=\"{sku}\"]"), SOON, |_| true)
        .await?;
    browser.screenshot(&shots.join("inventory.png")).await?;
    browser.open(&page("operations")).await?;
    let owned = browser
        .wait_count(
            "#partitions tr[data-role=\"owner\"]",
            PARTITIONS * ENTITIES,
            SOON,
        )
        .await?;
    assert_eq!(owned.len(), PARTITIONS * ENTITIES);
    browser
        .wait_count("#dead-letters [data-topic]", ENTITIES + 1, SOON)
        .await?;
    // The confirmed order's first step: a reservation, with its answer.
    let reserve = browser
        .wait_count("#fulfilment tr[data-step=\"reserve\"]", 1, SOON)
        .await?;
    let row = browser.text(&reserve[0]).await?;
    assert!(row.contains(": 1"), "the reservation's answer: {row}");
    browser
        .wait_for("#fulfilment-lag", SOON, |text| {
            text.starts_with("Records not acted on yet: ")
        })
        .await?;
    browser.screenshot(&shots.join("operations.png")).await?;

    // At phone width nothing runs off the side, and every field has a label.
    browser.resize(390, 844).await?;
    browser.open(&page(&format!("orders/{id}"))).await?;
    browser.wait_count("#timeline li", 2, SOON).await?;
    browser.screenshot(&shots.join("order-phone.png")).await?;
    let overflowing = browser
        .eval(
            "return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                    && !e.closest('.scroll'))
                .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)",
        )
        .await?;
    assert_eq!(overflowing, json!([]), "the order page fits a phone");
    let unlabelled = browser
        .eval("return [...document.querySelectorAll('input, select')].filter(e => !e.closest('label')).length")
        .await?;
    assert_eq!(unlabelled, json!(0), "every field has a label");

    drop(browser);
    logs.passed();
    std::fs::remove_dir_all(&stack.dir)?;
    Ok(())
}
