//! Two instances share the partitions: a query reaching either is answered
//! by the owner of the key's partition, a standby read says it is one and
//! how far behind, and a forwarded query is never forwarded again.

use e2e::cluster::key_in_partition;
use uuid::Uuid;

use crate::support::process::Projector;
use crate::support::{
    PARTITIONS, fresh_topics, wait_group_caught_up, wait_standbys_current, write,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_instance_answers_with_the_owners_state() -> anyhow::Result<()> {
    let topics = fresh_topics().await?;
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let flags = ["--standby-replicas=1", "--read-model=false"];
    let members: Vec<Projector> = ["a", "b"]
        .iter()
        .map(|name| {
            let instance = format!("{group}-{name}");
            Projector::member(
                &topics,
                &group,
                &instance,
                &std::env::temp_dir().join(&instance),
                &flags,
            )
        })
        .collect();
    for member in &members {
        member.wait_ready().await;
    }
    let writer = write(&topics, 40, 400, 40, 5).await?;
    wait_group_caught_up(&members, &writer.ends(PARTITIONS)).await;
    wait_standbys_current(&members, &topics.changelog).await;

    let mut standby_reads = 0;
    for id in writer.order_ids() {
        let path = format!("/orders/{id}");
        let (a, b) = (members[0].get(&path).await, members[1].get(&path).await);
        let served_by = |r: &reqwest::Response| r.headers().get("x-served-by").cloned();
        let owner = served_by(&a);
        assert!(owner.is_some(), "answered from an owned store");
        assert_eq!(owner, served_by(&b), "both instances answer from the owner");
        let (a, b): (serde_json::Value, serde_json::Value) = (a.json().await?, b.json().await?);
        assert_eq!(a, b, "order {id}");

        // The instance that does not own the partition reads its copy when asked to.
        let owner_is_a = owner
            .as_ref()
            .is_some_and(|o| o.as_bytes().ends_with(b"-a"));
        let other = if owner_is_a { &members[1] } else { &members[0] };
        let copy = other.get(&format!("{path}?standby=true")).await;
        assert_eq!(copy.status(), 200);
        assert_eq!(copy.headers()["x-standby"], "true");
        assert_eq!(copy.headers()["x-standby-lag"], "0", "the copy is current");
        assert_eq!(
            copy.json::<serde_json::Value>().await?,
            a,
            "the copy equals the owner's state"
        );
        standby_reads += 1;
    }
    assert!(standby_reads > 0);

    // A standby read does not wait; a forwarded query that lands on a non-owner stops there.
    let (status, problem) = members[0]
        .json(&format!(
            "/orders/{}?standby=true&min_version=1",
            Uuid::now_v7()
        ))
        .await;
    assert_eq!(status, 400, "{problem}");
    let owned_by_a = members[0].owned().await;
    let elsewhere = (0..PARTITIONS)
        .find(|p| !owned_by_a.contains(p))
        .expect("b owns a partition");
    let response = members[0]
        .http
        .get(format!(
            "{}/orders/{}",
            members[0].base_url,
            key_in_partition(elsewhere, PARTITIONS)
        ))
        .header("x-forwarded-by", "another-instance")
        .send()
        .await?;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    Ok(())
}
