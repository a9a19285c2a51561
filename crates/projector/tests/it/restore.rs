//! A lost local store comes back from the changelog.

use uuid::Uuid;

use crate::support::process::Projector;
use crate::support::writer::Writer;
use crate::support::{PARTITIONS, fresh_topics, kafka};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_store_is_restored_from_the_changelog_to_the_same_states() -> anyhow::Result<()> {
    let topics = fresh_topics().await?;
    let group = format!("test-group-{}", Uuid::now_v7().simple());
    let state_dir = std::env::temp_dir().join(&group);
    let mut projector = Projector::start(&topics, &group, &state_dir).await;
    let writer = tokio::task::spawn_blocking({
        let (kafka, topics) = (kafka(), topics.clone());
        move || -> anyhow::Result<Writer> {
            let mut writer = Writer::new(&kafka, &topics, 50, 7)?;
            writer.append(1_000, 50)?;
            Ok(writer)
        }
    })
    .await??;
    projector.wait_caught_up(&writer.ends(PARTITIONS)).await;
    let mut before = Vec::new();
    for id in writer.order_ids() {
        before.push((id, projector.json(&format!("/orders/{id}")).await));
    }
    assert!(
        before.iter().any(|(_, (status, _))| *status == 200),
        "some orders exist"
    );

    projector.terminate();
    std::fs::remove_dir_all(&state_dir)?;
    let projector = Projector::start(&topics, &group, &state_dir).await;

    for (id, expected) in before {
        assert_eq!(
            projector.json(&format!("/orders/{id}")).await,
            expected,
            "order {id}"
        );
    }
    drop(projector);
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(())
}
