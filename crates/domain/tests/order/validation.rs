//! The shared validation rule: verdicts depend on the log alone.

use domain::aggregate::{CommandBatch, RECENT_COMMANDS, Snapshot, Verdict};
use domain::order::{Order, OrderAggregate, OrderCommand, OrderEvent, decide};
use proptest::prelude::*;

use crate::fixtures::*;
use crate::properties::command;

type OrderSnapshot = Snapshot<Option<Order>>;

fn fold(log: &[CommandBatch<OrderEvent>]) -> (OrderSnapshot, Vec<Verdict>) {
    log.iter().fold(
        (OrderSnapshot::default(), Vec::new()),
        |(snapshot, mut verdicts), batch| {
            let (snapshot, verdict) = snapshot.apply::<OrderAggregate>(batch);
            verdicts.push(verdict);
            (snapshot, verdicts)
        },
    )
}

#[test]
fn a_batch_decided_on_a_stale_state_is_a_conflict_and_changes_nothing() {
    let (snapshot, _) = fold(&[batch(1, 0, vec![placed_with_a_book()])]);
    let stale = batch(2, 0, vec![placed_with_a_book()]);

    let (after, verdict) = snapshot.clone().apply::<OrderAggregate>(&stale);

    assert_eq!(
        verdict,
        Verdict::Conflict {
            expected_version: 2,
            found_version: 1
        }
    );
    assert_eq!(after, snapshot);
}

#[test]
fn a_batch_that_skips_a_version_is_a_conflict() {
    let (snapshot, _) = fold(&[batch(1, 0, vec![placed_with_a_book()])]);
    let ahead = batch(2, 2, vec![OrderEvent::OrderConfirmed {}]);

    let (after, verdict) = snapshot.clone().apply::<OrderAggregate>(&ahead);

    assert_eq!(
        verdict,
        Verdict::Conflict {
            expected_version: 2,
            found_version: 3
        }
    );
    assert_eq!(after, snapshot);
}

#[test]
fn a_repeated_command_is_a_duplicate_even_with_fresh_versions() {
    let first = batch(1, 0, vec![placed_with_a_book()]);
    let confirm = batch(2, 1, vec![OrderEvent::OrderConfirmed {}]);
    // A writer that timed out re-decided the same command on the newer state.
    let retried = CommandBatch::new(
        meta(2),
        2,
        vec![OrderEvent::OrderConfirmed {}],
        event_ids(99),
    )
    .expect("batch");

    let (snapshot, verdicts) = fold(&[first, confirm, retried]);

    assert_eq!(verdicts[2], Verdict::Duplicate);
    assert_eq!(snapshot.version, 2);
}

#[test]
fn duplicates_are_recognised_within_the_recent_commands_window() {
    let mut log = vec![batch(0, 0, vec![placed(vec![line("A", 1, 1)])])];
    for n in 1..=RECENT_COMMANDS as u64 {
        log.push(batch(
            u128::from(n),
            n,
            vec![OrderEvent::ItemAdded {
                item: line("A", 1, 1),
            }],
        ));
    }
    let (snapshot, _) = fold(&log);
    let window: Vec<_> = snapshot.recent_commands().copied().collect();
    assert_eq!(window.len(), RECENT_COMMANDS);
    assert!(
        !window.contains(&meta(0).command_id),
        "the oldest fell out of the window"
    );
    assert!(window.contains(&meta(1).command_id));
}

/// One step of two writers sharing an order: which writer acts, whether it
/// reads the current state first (or decides on what it read before), and what
/// it asks.
#[derive(Clone, Debug)]
struct Step {
    writer: usize,
    refresh: bool,
    command: OrderCommand,
    repeat_last: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..2usize,
        any::<bool>(),
        command(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(writer, refresh, command, repeat_last)| Step {
            writer,
            refresh,
            command,
            repeat_last,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn two_writers_in_any_interleaving_never_break_the_fold(steps in prop::collection::vec(step(), 1..80)) {
        // Each writer decides on the snapshot it last read; the log is the
        // order their appends arrive in.
        let mut views = [OrderSnapshot::default(), OrderSnapshot::default()];
        let mut last: [Option<CommandBatch<OrderEvent>>; 2] = [None, None];
        let mut log = Vec::new();
        let mut commands = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            if step.refresh {
                views[step.writer] = fold(&log).0;
            }
            if step.repeat_last {
                // A retry of the writer's previous command, re-decided on its current view.
                if let Some(previous) = &last[step.writer] {
                    let events: Vec<OrderEvent> = previous.envelopes().iter().map(|e| e.event.clone()).collect();
                    let mut meta = meta(n as u128);
                    meta.command_id = previous.command_id();
                    log.push(CommandBatch::new(meta, views[step.writer].version, events, event_ids(n as u128 * 1000)).expect("batch"));
                    commands.push(None);
                }
                continue;
            }
            let view = &views[step.writer];
            // A command that decides nothing appends nothing.
            if let Ok(events) = decide(&step.command, &view.state)
                && !events.is_empty()
            {
                let appended = batch(n as u128, view.version, events);
                last[step.writer] = Some(appended.clone());
                log.push(appended);
                commands.push(Some((step.command.clone(), view.clone())));
            }
        }

        let (snapshot, verdicts) = fold(&log);
        // Deterministic: a second consumer of the same log agrees on everything.
        prop_assert_eq!(fold(&log), (snapshot.clone(), verdicts.clone()));

        let mut replay = OrderSnapshot::default();
        let mut accepted_ids = std::collections::HashSet::new();
        for ((appended, verdict), command) in log.iter().zip(&verdicts).zip(&commands) {
            match verdict {
                Verdict::Accepted { first_version, .. } => {
                    prop_assert_eq!(*first_version, replay.version + 1, "gapless versions");
                    prop_assert!(accepted_ids.insert(appended.command_id()), "a command is accepted once");
                    if let Some((command, view)) = command {
                        // Accepted only when decided on exactly the state it applies to,
                        // so the legality `decide` checked still holds.
                        prop_assert_eq!(&view.state, &replay.state);
                        let redecided = decide(command, &replay.state).expect("still legal");
                        let events: Vec<_> = appended.envelopes().iter().map(|e| e.event.clone()).collect();
                        prop_assert_eq!(redecided, events);
                    }
                    replay = replay.apply::<OrderAggregate>(appended).0;
                }
                Verdict::Duplicate => prop_assert!(accepted_ids.contains(&appended.command_id())),
                Verdict::Conflict { .. } => {}
            }
        }
        prop_assert_eq!(replay, snapshot);
    }
}
