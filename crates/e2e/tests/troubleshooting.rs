//! The README's troubleshooting section, as the scripts say it: a port held
//! by another process and a PostgreSQL that refuses the default credentials
//! are each explained, naming the culprit and the way out, and change
//! nothing.

use std::net::TcpListener;
use std::time::Duration;

use e2e::postgres::PrivateCluster;
use e2e::scripts::ScriptRun;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn a_port_in_use_is_named_before_anything_starts() -> anyhow::Result<()> {
    let root = e2e::cluster::repo_root();
    // The webhook receiver's default port, held by this test.
    let _held = TcpListener::bind("127.0.0.1:9000").map_err(|e| {
        anyhow::anyhow!("port 9000 is free for this test (is the demo running?): {e}")
    })?;

    let mut demo = ScriptRun::start(&root, "demo", &[], &[])?;
    let status = demo.wait(Duration::from_secs(60)).await?;
    let output = demo.output();
    assert!(!status.success(), "the demo refuses to start:\n{output}");
    assert!(
        output.contains("port 9000 is already in use by ")
            && output.contains(&format!("(pid {})", std::process::id())),
        "the message names the port and who holds it:\n{output}"
    );
    assert!(
        output.contains("SINK_WEBHOOK_ADDR=127.0.0.1:<port>"),
        "the message names the setting that moves the receiver:\n{output}"
    );
    assert!(
        !output.contains("building the binaries") && !output.contains(" started (log:"),
        "it stopped before building or starting anything:\n{output}"
    );
    assert!(demo.leftovers().is_empty(), "nothing was left running");
    demo.discard_output()?;
    Ok(())
}

#[tokio::test]
async fn a_postgres_with_other_credentials_is_explained() -> anyhow::Result<()> {
    let root = e2e::cluster::repo_root();
    // Someone else's server: a superuser with a password of its own, no
    // `orders` role.
    let password = "someone-elses-secret";
    let cluster = PrivateCluster::start_with_password(password)?;
    let port = cluster.port.to_string();
    let external_mark = root.join(".local/postgres.external");
    let marked_before = external_mark.exists();

    let mut infra = ScriptRun::start(&root, "infra", &["up"], &[("PGPORT", &port)])?;
    let status = infra.wait(Duration::from_secs(120)).await?;
    let output = infra.output();
    assert!(!status.success(), "infra up refuses:\n{output}");
    assert!(
        output.contains(&format!(
            "a PostgreSQL not started by these scripts listens on 127.0.0.1:{port}, and it refuses DATABASE_URL=postgres://orders:***@127.0.0.1:{port}/orders"
        )),
        "the message names the server and the URL, password masked:\n{output}"
    );
    assert!(
        output.contains("password authentication failed"),
        "the message passes on the server's reason:\n{output}"
    );
    assert!(
        output.contains("CREATE ROLE orders") && output.contains("PGPORT=5433 scripts/demo"),
        "the message offers the ways out:\n{output}"
    );
    assert!(
        !output.contains(password),
        "no secret of the server is printed"
    );

    // Nothing changed: no role was created there, and the scripts did not
    // take the server for one to leave alone at `infra down`.
    let mut admin = PgConnection::connect(&format!(
        "postgres://postgres:{password}@127.0.0.1:{port}/postgres"
    ))
    .await?;
    let roles: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = 'orders'")
        .fetch_one(&mut admin)
        .await?;
    assert_eq!(roles, 0, "no role was created on someone else's server");
    admin.close().await?;
    assert_eq!(
        external_mark.exists(),
        marked_before,
        "the scripts' marks are as they were"
    );
    infra.discard_output()?;
    Ok(())
}
