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
    let settled = e2e::wait::until(Duration::from_secs(120), async || {
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
            Ok(views[0].clone())
        } else {
            Err(views)
        }
    })
    .await;
    settled.map_err(|views| anyhow::anyhow!("the group did not settle: {views:?}"))
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
        // Looked at every 20 ms: the wait is what is measured.
        let bound = deadline.saturating_duration_since(Instant::now());
        let answered = e2e::wait::until_every(Duration::from_millis(20), bound, async || {
            let response = match http.get(&url).send().await {
                Ok(response) => response,
                Err(error) => return Ok(Err(error.to_string())),
            };
            match response.status().as_u16() {
                404 => Ok(Ok(())),
                503 => Err(format!("503 {}", response.text().await.unwrap_or_default())),
                status => Ok(Err(format!(
                    "{status} {}",
                    response.text().await.unwrap_or_default()
                ))),
            }
        })
        .await
        .and_then(|answer| answer);
        if let Err(seen) = answered {
            anyhow::bail!("partition {partition} via {via}: {seen}");
        }
        longest = longest.max(since.elapsed());
    }
    Ok(longest)
}
