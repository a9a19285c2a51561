//! The whole system against a real Kafka broker and a real PostgreSQL: the
//! tests in `tests/` start the services' binaries and `kill -9` them.
