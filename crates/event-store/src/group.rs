//! Who owns which partition, read from the consumer group itself.
//!
//! Every processor joins its group with the client id `<instance>@<host:port>`
//! (see [`member_client_id`]), so the group coordinator, which already is the
//! truth about the assignment, also says where each owner serves HTTP. A
//! `DescribeGroups` answer carries each member's client id and assignment;
//! [`GroupView`] is that answer decoded. Nothing else has to be written or
//! kept in sync, and a member that dies disappears from the view with its
//! session.
//!
//! The view also places standby replicas: the standby of a partition is the
//! member the range assignor would give it to if its owner left, so the
//! member that takes over after a crash is the one that kept a warm copy.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::groups::GroupInfo;

use crate::KafkaConfig;

/// The group's state in which the assignment is settled.
const STABLE: &str = "Stable";

/// The client id a processor joins its group with: its instance id and the
/// address its HTTP API is reachable at.
pub fn member_client_id(instance_id: &str, http_addr: &str) -> String {
    format!("{instance_id}@{http_addr}")
}

/// One member of the group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// Its instance id (static membership).
    pub instance_id: String,
    /// Where its HTTP API listens (`host:port`).
    pub http_addr: String,
    /// The partitions of the watched topic assigned to it.
    pub partitions: Vec<i32>,
}

/// The group as its coordinator described it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupView {
    /// True when the assignment is settled (no rebalance under way).
    pub stable: bool,
    /// The members that advertise an HTTP address, by instance id.
    pub members: Vec<Member>,
}

/// Why the group could not be described.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// Kafka failed.
    #[error("describing the consumer group failed: {0}")]
    Kafka(#[from] KafkaError),
}

impl GroupView {
    /// Decodes a described group: members' addresses from their client ids,
    /// their partitions of `topic` from their assignments.
    pub fn from_info(info: &GroupInfo, topic: &str) -> Self {
        let mut members: Vec<Member> = info
            .members()
            .iter()
            .filter_map(|member| {
                let (instance_id, http_addr) = member.client_id().split_once('@')?;
                let partitions = member
                    .assignment()
                    .and_then(|bytes| decode_assignment(bytes, topic))
                    .unwrap_or_default();
                Some(Member {
                    instance_id: instance_id.to_owned(),
                    http_addr: http_addr.to_owned(),
                    partitions,
                })
            })
            .collect();
        // librdkafka's range assignor orders static members by instance id.
        members.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Self {
            stable: info.state() == STABLE,
            members,
        }
    }

    /// The member assigned `partition`, if the assignment is settled.
    pub fn owner_of(&self, partition: i32) -> Option<&Member> {
        if !self.stable {
            return None;
        }
        self.members
            .iter()
            .find(|m| m.partitions.contains(&partition))
    }

    /// The partitions `instance_id` keeps standby copies of with `replicas`
    /// standbys per partition: for each partition, the members that would
    /// own it if its owner (and the standbys before them) left.
    pub fn standby_partitions(
        &self,
        instance_id: &str,
        replicas: usize,
        partition_count: i32,
    ) -> BTreeSet<i32> {
        let mut mine = BTreeSet::new();
        if !self.stable || replicas == 0 {
            return mine;
        }
        for partition in 0..partition_count {
            let Some(owner) = self.owner_of(partition) else {
                continue;
            };
            let mut remaining: Vec<&str> = self
                .members
                .iter()
                .map(|m| m.instance_id.as_str())
                .filter(|id| *id != owner.instance_id)
                .collect();
            for _ in 0..replicas {
                let Some(next) = range_owner(&remaining, partition, partition_count) else {
                    break;
                };
                if next == instance_id {
                    mine.insert(partition);
                    break;
                }
                remaining.retain(|id| *id != next);
            }
        }
        mine
    }
}

/// The member the range assignor gives `partition` to, among `members`
/// sorted as the assignor sorts them.
fn range_owner<'a>(members: &[&'a str], partition: i32, partition_count: i32) -> Option<&'a str> {
    let count = i32::try_from(members.len()).ok().filter(|c| *c > 0)?;
    let (per_member, extra) = (partition_count / count, partition_count % count);
    // The first `extra` members get one partition more than the rest.
    let boundary = extra * (per_member + 1);
    let index = if partition < boundary {
        partition / (per_member + 1)
    } else if per_member > 0 {
        extra + (partition - boundary) / per_member
    } else {
        return None;
    };
    members.get(usize::try_from(index).ok()?).copied()
}

/// Describes `group` through any client handle; blocks up to `timeout`.
pub fn describe(
    client: &BaseConsumer,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<GroupView, GroupError> {
    let list = client.fetch_group_list(Some(group), timeout)?;
    Ok(list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map(|info| GroupView::from_info(info, topic))
        .unwrap_or_default())
}

/// A client for [`describe`]: it joins no group and reads nothing.
pub fn describer(config: &KafkaConfig) -> Result<BaseConsumer, GroupError> {
    Ok(config.client_config().create()?)
}

/// Decodes a consumer protocol assignment (version, then an array of topics
/// with their partitions, then user data) and returns `topic`'s partitions.
fn decode_assignment(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut reader = Reader(bytes);
    let _version = reader.i16()?;
    let mut partitions = Vec::new();
    for _ in 0..reader.i32()?.max(0) {
        let name = reader.string()?;
        for _ in 0..reader.i32()?.max(0) {
            let partition = reader.i32()?;
            if name == topic.as_bytes() {
                partitions.push(partition);
            }
        }
    }
    partitions.sort_unstable();
    Some(partitions)
}

/// Big-endian reads from Kafka's wire format.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut bytes = 1i16.to_be_bytes().to_vec();
        bytes.extend((topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            bytes.extend((name.len() as i16).to_be_bytes());
            bytes.extend(name.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend((-1i32).to_be_bytes()); // no user data
        bytes
    }

    fn view(members: &[(&str, &[i32])]) -> GroupView {
        GroupView {
            stable: true,
            members: members
                .iter()
                .map(|(id, partitions)| Member {
                    instance_id: (*id).to_owned(),
                    http_addr: format!("{id}:80"),
                    partitions: partitions.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_assignment_decodes_to_the_topics_partitions() {
        let bytes = assignment(&[("other", &[0, 1]), ("orders.events", &[4, 2])]);
        assert_eq!(decode_assignment(&bytes, "orders.events"), Some(vec![2, 4]));
        assert_eq!(decode_assignment(&bytes, "missing"), Some(vec![]));
        assert_eq!(
            decode_assignment(&bytes[..bytes.len() - 9], "orders.events"),
            None
        );
    }

    #[test]
    fn the_range_owner_matches_the_range_assignor() {
        let members = ["a", "b", "c"];
        let owners: Vec<_> = (0..8).map(|p| range_owner(&members, p, 8)).collect();
        // 8 partitions over 3: 3, 3, 2.
        let expected = ["a", "a", "a", "b", "b", "b", "c", "c"];
        assert_eq!(owners, expected.map(Some));
        assert_eq!(range_owner(&members, 3, 2), None);
        assert_eq!(range_owner(&["a", "b", "c"], 1, 2), Some("b"));
        assert_eq!(range_owner(&[], 0, 3), None);
    }

    #[test]
    fn a_standby_is_where_the_partition_goes_when_its_owner_leaves() {
        let group = view(&[("a", &[0]), ("b", &[1]), ("c", &[2])]);
        // Without c: a gets 0 and 1, b gets 2. Without a: b gets 0, c gets 1 and 2.
        assert_eq!(group.standby_partitions("a", 1, 3), BTreeSet::from([1]));
        assert_eq!(group.standby_partitions("b", 1, 3), BTreeSet::from([0, 2]));
        assert_eq!(group.standby_partitions("c", 1, 3), BTreeSet::new());
        // Two standbys with three members: every member keeps every partition it does not own.
        assert_eq!(group.standby_partitions("c", 2, 3), BTreeSet::from([0, 1]));
        assert_eq!(group.standby_partitions("a", 0, 3), BTreeSet::new());
    }

    #[test]
    fn an_unsettled_group_has_no_owners() {
        let mut group = view(&[("a", &[0, 1, 2])]);
        assert_eq!(group.owner_of(1).map(|m| m.instance_id.as_str()), Some("a"));
        group.stable = false;
        assert_eq!(group.owner_of(1), None);
        assert!(group.standby_partitions("a", 1, 3).is_empty());
    }
}
