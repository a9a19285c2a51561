//! A lost local store comes back from the changelog.

use crate::support::process::Projector;
use crate::support::{PARTITIONS, start_projector, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_store_is_restored_from_the_changelog_to_the_same_states() -> anyhow::Result<()> {
    let (topics, mut projector) = start_projector(&[]).await?;
    let writer = write(&topics, 50, 1_000, 50, 7).await?;
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
    std::fs::remove_dir_all(&projector.state_dir)?;
    let restored = Projector::start(&topics, &projector.group, &projector.state_dir).await;

    for (id, expected) in before {
        assert_eq!(
            restored.json(&format!("/orders/{id}")).await,
            expected,
            "order {id}"
        );
    }
    Ok(())
}
