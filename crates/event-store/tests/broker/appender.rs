use std::collections::HashSet;

use event_store::{
    AppendError, AppendRecord, Appender, AppenderSettings, TopicSpec, TransactionalProducer,
    ensure_topics, read_committed_to_end,
};

use crate::support::{kafka, unique};

async fn topic() -> anyhow::Result<String> {
    let name = unique("appends");
    ensure_topics(&kafka(), &[TopicSpec::permanent_log(&name, 3)]).await?;
    Ok(name)
}

fn record(topic: &str, n: usize) -> AppendRecord {
    AppendRecord {
        topic: topic.to_owned(),
        key: format!("order-{}", n % 17).into_bytes(),
        payload: format!("command-{n}").into_bytes(),
        headers: vec![("n".into(), n.to_string().into_bytes())],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_transactions_and_each_gets_its_offset() -> anyhow::Result<()> {
    let topic = topic().await?;
    let appender = Appender::start(&kafka(), &unique("appender"), AppenderSettings::default())?;

    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let (appender, record) = (appender.clone(), record(&topic, n));
            tokio::spawn(async move { appender.append(record).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await??);
    }

    let read = read_committed_to_end(&kafka(), &topic).await?;
    assert_eq!(read.len(), 300, "every append is in the log once");
    let positions: HashSet<_> = answers.iter().map(|a| (a.partition, a.offset)).collect();
    assert_eq!(positions.len(), 300, "each caller got its own position");
    for record in &read {
        assert!(
            positions.contains(&(record.partition, record.offset)),
            "a position nobody was told"
        );
    }
    assert!(
        appender.transactions() < 300,
        "appends were grouped: {} transactions for 300 appends",
        appender.transactions()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_appender_fails_its_batch_whole_and_recovers() -> anyhow::Result<()> {
    let topic = topic().await?;
    let id = unique("appender");
    let appender = Appender::start(&kafka(), &id, AppenderSettings::default())?;
    appender.append(record(&topic, 0)).await?;

    // Another process takes the transactional id: the appender is fenced.
    let usurper = tokio::task::spawn_blocking({
        let id = id.clone();
        move || TransactionalProducer::new(&kafka(), &id)
    })
    .await??;
    let fenced = appender.append(record(&topic, 1)).await;
    assert!(
        matches!(fenced, Err(AppendError::NotCommitted(_))),
        "{fenced:?}"
    );
    drop(usurper);

    // The next batch runs on a rebuilt producer.
    appender.append(record(&topic, 2)).await?;

    let payloads: Vec<_> = read_committed_to_end(&kafka(), &topic)
        .await?
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(
        payloads.len(),
        2,
        "the failed append left nothing: {payloads:?}"
    );
    assert!(
        payloads.contains(&"command-0".to_owned()) && payloads.contains(&"command-2".to_owned())
    );
    Ok(())
}
