//! The whole system against a real Kafka broker and a real PostgreSQL:
//! [`sinks`], local receivers of the notifier's e-mails and webhooks;
//! [`cluster`], the services as child processes a test can kill; [`fold`],
//! the fold of the log every answer must agree with; [`postgres`], a
//! PostgreSQL server of a test's own; [`kafka`], the scripts' SASL_SSL
//! listener and Kafka clusters of a test's own; [`load`], clients that check
//! every answer against their own model; [`metrics`], reading `/metrics`;
//! [`scripts`], the README's commands run as a user runs them; [`stack`],
//! one test's services started with the arguments they share; [`wait`],
//! waiting on a condition with a bound.

pub mod browser;
pub mod cluster;
pub mod fold;
pub mod kafka;
pub mod load;
pub mod metrics;
pub mod postgres;
pub mod scripts;
pub mod sinks;
pub mod stack;
pub mod wait;
