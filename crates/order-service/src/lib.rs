//! order-service: the public HTTP API. It validates requests, decides with the
//! domain, appends the events in Kafka transactions and answers with
//! read-your-writes (see `ARCHITECTURE.md`). Its code arrives with the write path.
