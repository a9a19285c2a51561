//! `GET /partitions`: what this instance owns and how far along each is, the
//! standby copies it keeps, and the group's ownership as last described.

use axum::Json;
use axum::extract::State;
use event_store::group::GroupView;
use event_store::store::PartitionStatus;
use serde::Serialize;

use super::AppState;

/// One owned partition.
#[derive(Serialize)]
pub struct PartitionView {
    partition: i32,
    #[serde(flatten)]
    status: PartitionStatus,
    /// The next offset not folded here yet (queries see the folded state).
    folded_offset: i64,
    /// The next offset whose effects are not committed here yet.
    committed_offset: i64,
    /// The partition's last stable offset, as last seen.
    end_offset: i64,
    /// Records not yet folded and committed.
    lag: i64,
}

/// One standby copy.
#[derive(Serialize)]
pub struct StandbyView {
    partition: i32,
    /// The next changelog offset the copy has not applied.
    changelog_offset: i64,
    /// Changelog records it is behind, as last seen.
    lag: i64,
}

/// The instance's ownership.
#[derive(Serialize)]
pub struct Ownership {
    instance_id: String,
    topic: String,
    partition_count: i32,
    partitions: Vec<PartitionView>,
    standbys: Vec<StandbyView>,
    group: std::sync::Arc<GroupView>,
}

/// Lists the partitions this instance owns.
pub async fn list(State(state): State<AppState>) -> Json<Ownership> {
    let partitions = state
        .registry
        .owned()
        .iter()
        .map(|handle| {
            let (committed, end) = (handle.committed(), handle.high_watermark());
            PartitionView {
                partition: handle.partition,
                status: handle.status(),
                folded_offset: handle.folded(),
                committed_offset: committed,
                end_offset: end.max(committed),
                lag: (end - committed).max(0),
            }
        })
        .collect();
    Json(Ownership {
        instance_id: state.instance_id.clone(),
        topic: state.topics.events.clone(),
        partition_count: state.registry.partition_count(),
        partitions,
        standbys: state
            .registry
            .standbys
            .all()
            .iter()
            .map(|replica| StandbyView {
                partition: replica.partition,
                changelog_offset: replica.position(),
                lag: replica.lag(),
            })
            .collect(),
        group: state.directory.view(),
    })
}
