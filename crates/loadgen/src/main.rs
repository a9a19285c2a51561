//! loadgen: drives order placement and transitions through order-service at a
//! target rate or flat out, or measures the raw transactional producer with
//! records of the same size; shows progress and prints throughput and latency
//! percentiles (HDR histograms).
//!
//! Layout: `main` (flags, the run loop), [`stop`] (when to stop: a deadline or
//! Ctrl-C), [`report`] (histograms and the summary), [`orders`] (orders over
//! HTTP: lifecycles, or one hot order), [`raw`] (appends without the API).

mod orders;
mod raw;
mod report;
mod stop;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Mutex;

use report::Report;
use stop::Stop;

/// What to drive.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Orders through the API: place, add an item, confirm, ship, deliver.
    Orders,
    /// One order, and every worker adding to it: commands on a hot entity.
    Hot,
    /// Records of the same size straight into the events topic, in shared
    /// transactions: the ceiling the API's append path is measured against.
    Raw,
}

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Load for the order system, with latency percentiles."
)]
struct Args {
    /// What to drive.
    #[arg(long, value_enum, default_value = "orders")]
    mode: Mode,
    /// order-service's address.
    #[arg(
        long,
        env = "ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Target commands (or records) per second; 0 runs flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    concurrency: u64,
    /// How long to run, in seconds; without it, until Ctrl-C or SIGTERM (the
    /// summary is printed either way).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: Option<u64>,
    /// Kafka brokers (raw mode).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    kafka_bootstrap_servers: String,
    /// How raw mode connects to the brokers (the services' flags).
    #[command(flatten)]
    kafka: service_kit::kafka::KafkaClientArgs,
    /// How many SKUs the orders spread over (orders mode): with 1, every
    /// order holds `BOOK-1` and `PEN-2`; with N, order i holds `BOOK-<1 + i % N>`
    /// and `PEN-<2 + i % N>`. The fulfilment workflow reserves stock per SKU,
    /// so a few SKUs make every reservation wait for the one before.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    skus: u64,
    /// One order in this many is cancelled after confirming instead of
    /// shipped and delivered (orders mode). With 1, no order waits for the
    /// fulfilment workflow's stock reservation, so the API can be driven
    /// without the workflow running.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    cancel_every: u64,
    /// Topic prefix (raw mode appends to `<prefix>.loadgen-raw`, never to the events topic).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "orders")]
    topic_prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = Arc::new(Mutex::new(Report::default()));
    let progress = match args.duration {
        Some(seconds) => ProgressBar::new(seconds).with_style(ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {msg}",
        )?),
        None => ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {msg} (Ctrl-C stops)",
        )?),
    };

    // The clock starts once the connection, the topic or the hot order is
    // ready: the figures are the load's alone.
    let driver = Driver::set_up(&args).await?;
    let pacer = Pacer::new(args.rate, args.concurrency);
    let started = Instant::now();
    let stop = Stop::new(
        args.duration
            .map(|seconds| started + Duration::from_secs(seconds)),
    );
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| driver.spawn(pacer.clone(), stop.clone(), report.clone()))
        .collect();
    while !stop.is_due() {
        stop.sleep(Duration::from_millis(500)).await;
        let elapsed = started.elapsed();
        let summary = report.lock().await.progress(elapsed);
        progress.set_position(elapsed.as_secs());
        progress.set_message(summary);
    }
    for worker in workers {
        worker.await??;
    }
    progress.finish_and_clear();
    let report = report.lock().await;
    println!(
        "{}",
        report.summary(
            &format!("{:?}", args.mode).to_lowercase(),
            started.elapsed(),
            args.rate,
            args.concurrency
        )
    );
    Ok(())
}

/// What the workers drive.
enum Driver {
    Orders(orders::Client),
    Hot(orders::Client, String),
    Raw(raw::Target),
}

impl Driver {
    async fn set_up(args: &Args) -> anyhow::Result<Self> {
        Ok(match args.mode {
            Mode::Orders => Self::Orders(
                orders::Client::new(&args.url)
                    .spread_over(args.skus)
                    .cancelling_every(args.cancel_every),
            ),
            Mode::Hot => {
                let client = orders::Client::new(&args.url);
                let order_id = orders::place_hot(&client).await?;
                Self::Hot(client, order_id)
            }
            Mode::Raw => {
                let kafka = args
                    .kafka
                    .connect(&args.kafka_bootstrap_servers, "loadgen")
                    .await?;
                Self::Raw(raw::Target::start(kafka, &args.topic_prefix).await?)
            }
        })
    }

    /// One worker.
    fn spawn(
        &self,
        pacer: Pacer,
        stop: Stop,
        report: Arc<Mutex<Report>>,
    ) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        match self {
            Self::Orders(client) => {
                tokio::spawn(orders::drive(client.clone(), pacer, stop, report))
            }
            Self::Hot(client, order_id) => tokio::spawn(orders::drive_hot(
                client.clone(),
                order_id.clone(),
                pacer,
                stop,
                report,
            )),
            Self::Raw(target) => tokio::spawn(raw::drive(target.clone(), pacer, stop, report)),
        }
    }
}

/// Spaces the starts of requests so that all workers together keep a rate.
#[derive(Clone)]
pub struct Pacer {
    interval: Option<Duration>,
}

impl Pacer {
    fn new(rate: u64, concurrency: u64) -> Self {
        Self {
            interval: (rate > 0).then(|| Duration::from_secs_f64(concurrency as f64 / rate as f64)),
        }
    }

    /// The moment the next request of a worker may start, after one that started at `last`.
    pub fn next_start(&self, last: Instant) -> Option<Instant> {
        self.interval.map(|interval| last + interval)
    }
}
