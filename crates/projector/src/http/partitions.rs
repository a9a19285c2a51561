//! `GET /partitions?entity=`: of one entity type (by default the first
//! hosted, orders), what this instance owns and how far along each is, the
//! standby copies it keeps, and the group's ownership as last described.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use event_store::group::GroupView;
use event_store::store::PartitionStatus;
use serde::{Deserialize, Serialize};
use service_kit::Problem;

use super::{AppState, query_problem};

/// Which entity type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Which {
    entity: Option<String>,
}

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
    /// The partition's last stable offset, as last seen: the end the fold
    /// can reach.
    end_offset: i64,
    /// The partition's high watermark, as last seen: beyond `end_offset`
    /// while a writer's transaction is open there.
    high_watermark: i64,
    /// Records not folded yet: 0 once the partition has nothing left to do.
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
    entity: &'static str,
    topic: String,
    partition_count: i32,
    partitions: Vec<PartitionView>,
    standbys: Vec<StandbyView>,
    group: std::sync::Arc<GroupView>,
}

/// Lists the partitions of an entity type this instance owns.
pub async fn list(
    State(state): State<AppState>,
    which: Result<Query<Which>, QueryRejection>,
) -> Result<Json<Ownership>, Problem> {
    let Query(which) = which.map_err(query_problem)?;
    let entity = match &which.entity {
        Some(name) => state.entity(name)?,
        None => &state.entities[0],
    };
    let partitions = entity
        .registry
        .owned()
        .iter()
        .map(|handle| {
            let (committed, folded) = (handle.committed(), handle.folded());
            let end = handle.stable_end().max(committed);
            PartitionView {
                partition: handle.partition,
                status: handle.status(),
                folded_offset: folded,
                committed_offset: committed,
                end_offset: end,
                high_watermark: handle.log_end().max(end),
                lag: handle.lag(),
            }
        })
        .collect();
    Ok(Json(Ownership {
        instance_id: state.instance_id.clone(),
        entity: entity.name,
        topic: entity.topics.events.clone(),
        partition_count: entity.registry.partition_count(),
        partitions,
        standbys: entity
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
        group: entity.directory.view(),
    }))
}
