//! The whole system against a real Kafka broker and a real PostgreSQL:
//! [`sinks`], local receivers of the notifier's e-mails and webhooks;
//! [`cluster`], the services as child processes a test can kill; [`fold`],
//! the fold of the log every answer must agree with.

pub mod cluster;
pub mod fold;
pub mod sinks;
