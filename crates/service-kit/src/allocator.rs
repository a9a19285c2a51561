//! The services' allocator: jemalloc, for Rust's allocations and, through
//! its unprefixed `malloc`, for librdkafka's and RocksDB's too.
//!
//! With glibc's malloc the fold thread, librdkafka's threads and RocksDB's
//! contended for its arenas (a record is allocated on one thread and freed
//! on another); jemalloc made the fold's CPU per event 15 % smaller.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
