//! What the projectors say about their group: members and partitions,
//! standby copies, and metrics.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::PARTITIONS;

/// Waits until every instance's description of the group is stable, with
/// `members` members and every partition assigned.
pub async fn wait_settled(
    http: &reqwest::Client,
    urls: &[String],
    members: usize,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut views = Vec::new();
        for url in urls {
            if let Ok(response) = http.get(format!("{url}/partitions")).send().await
                && let Ok(view) = response.json::<Value>().await
            {
                views.push(view["group"].clone());
            }
        }
        let settled = views.len() == urls.len()
            && views.iter().all(|group| {
                let assigned: usize = group["members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|m| m["partitions"].as_array().map_or(0, Vec::len))
                            .sum()
                    })
                    .unwrap_or(0);
                group["stable"] == true
                    && group["members"].as_array().map(Vec::len) == Some(members)
                    && assigned == PARTITIONS as usize
                    && *group == views[0]
            });
        if settled {
            return Ok(views[0].clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the group did not settle: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A counter or gauge of an instance's `/metrics`, summed over its samples.
pub async fn metric(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<f64> {
    Ok(e2e::metrics::scrape(http, url).await?.sum(name))
}

/// The partitions an instance lists under `field` (`partitions` it owns,
/// `standbys` it keeps copies of).
pub async fn partitions_of(
    http: &reqwest::Client,
    url: &str,
    field: &str,
) -> anyhow::Result<BTreeSet<i32>> {
    let view: Value = http
        .get(format!("{url}/partitions"))
        .send()
        .await?
        .json()
        .await?;
    Ok(numbers(&view[field], "partition"))
}

fn numbers(list: &Value, field: &str) -> BTreeSet<i32> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry[field].as_i64().and_then(|n| i32::try_from(n).ok()))
        .collect()
}

/// How long after `since` a query for each probe (partition, unused order
/// id, instance to ask) first got an answer from a store (404: no such
/// order there); the longest.
pub async fn measure_until(
    http: &reqwest::Client,
    probes: &[(i32, Uuid, String)],
    standby: bool,
    since: Instant,
) -> anyhow::Result<Duration> {
    let deadline = since + Duration::from_secs(120);
    let mut longest = Duration::ZERO;
    for (partition, id, via) in probes {
        let url = format!("{via}/orders/{id}?standby={standby}");
        loop {
            let response = http.get(&url).send().await?;
            if response.status() == 404 {
                longest = longest.max(since.elapsed());
                break;
            }
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            anyhow::ensure!(
                status == 503 && Instant::now() < deadline,
                "partition {partition} via {via}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(longest)
}
