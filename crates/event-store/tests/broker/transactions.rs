use event_store::{
    OutgoingRecord, TopicSpec, TransactionalProducer, TxErrorKind, ensure_topics,
    read_committed_to_end,
};

use crate::support::{kafka, unique};

async fn topic(partitions: i32) -> anyhow::Result<String> {
    let name = unique("txn");
    ensure_topics(&kafka(), &[TopicSpec::permanent_log(&name, partitions)]).await?;
    Ok(name)
}

fn record<'a>(topic: &'a str, key: &'a str, payload: &'a str) -> OutgoingRecord<'a> {
    OutgoingRecord {
        topic,
        key: key.as_bytes(),
        payload: payload.as_bytes(),
        headers: &[("kind", b"test")],
    }
}

fn payloads(records: &[event_store::CommittedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test]
async fn a_committed_batch_is_read_whole_and_in_order() -> anyhow::Result<()> {
    let config = kafka();
    let topic = topic(1).await?;
    let sent: Vec<String> = (0..100).map(|i| format!("event-{i}")).collect();

    let appended = tokio::task::spawn_blocking({
        let (config, topic, sent) = (config.clone(), topic.clone(), sent.clone());
        move || -> anyhow::Result<_> {
            let producer = TransactionalProducer::new(&config, &unique("writer"))?;
            producer.begin()?;
            let pending = sent
                .iter()
                .map(|payload| producer.send_tracked(record(&topic, "order-1", payload)))
                .collect::<Result<Vec<_>, _>>()?;
            producer.commit()?;
            Ok(pending)
        }
    })
    .await??;
    let mut offsets = Vec::new();
    for pending in appended {
        let appended = pending
            .completed()
            .ok_or_else(|| anyhow::anyhow!("no delivery report after the commit"))??;
        offsets.push(appended.offset);
    }

    let read = read_committed_to_end(&config, &topic).await?;
    assert_eq!(payloads(&read), sent);
    assert_eq!(read.iter().map(|r| r.offset).collect::<Vec<_>>(), offsets);
    assert_eq!(read[0].headers, vec![("kind".to_owned(), b"test".to_vec())]);
    Ok(())
}

#[tokio::test]
async fn an_aborted_transaction_is_never_seen() -> anyhow::Result<()> {
    let config = kafka();
    let topic = topic(3).await?;

    tokio::task::spawn_blocking({
        let (config, topic) = (config.clone(), topic.clone());
        move || -> anyhow::Result<()> {
            let producer = TransactionalProducer::new(&config, &unique("writer"))?;
            producer.begin()?;
            for i in 0..50 {
                producer.send(record(&topic, &format!("order-{i}"), "aborted"))?;
            }
            producer.abort()?;
            producer.begin()?;
            for i in 0..50 {
                producer.send(record(&topic, &format!("order-{i}"), "committed"))?;
            }
            producer.commit()?;
            Ok(())
        }
    })
    .await??;

    let read = read_committed_to_end(&config, &topic).await?;
    let seen = payloads(&read);
    assert_eq!(seen.len(), 50, "exactly the committed batch: {seen:?}");
    assert!(seen.iter().all(|p| p == "committed"), "{seen:?}");
    Ok(())
}

#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() -> anyhow::Result<()> {
    let config = kafka();
    let topic = topic(1).await?;
    let id = unique("writer");

    let outcome = tokio::task::spawn_blocking({
        let (config, topic) = (config.clone(), topic.clone());
        move || -> anyhow::Result<_> {
            let first = TransactionalProducer::new(&config, &id)?;
            first.begin()?;
            first.send(record(&topic, "order-1", "from the zombie"))?;

            let second = TransactionalProducer::new(&config, &id)?;
            let zombie_commit = first.commit();

            second.begin()?;
            second.send(record(&topic, "order-1", "from the successor"))?;
            second.commit()?;
            Ok(zombie_commit)
        }
    })
    .await??;

    let error = outcome.expect_err("the fenced producer's commit must fail");
    assert_eq!(error.kind, TxErrorKind::Fatal, "{error}");
    assert!(
        error.is_fenced(),
        "fenced, not another failure: {error} ({:?})",
        error.code
    );
    assert_eq!(
        payloads(&read_committed_to_end(&config, &topic).await?),
        vec!["from the successor"]
    );
    Ok(())
}
