//! TCP_NODELAY on the connections to PostgreSQL.
//!
//! sqlx 0.9.0 stopped setting it on its sockets (restored upstream in
//! sqlx#4336, not yet released). Without it every binary `COPY` waits out
//! PostgreSQL's delayed ACK between the data and its end (Nagle's
//! algorithm): 40 ms per `COPY`, three per batch, so rows became visible
//! ~150 ms after their append at light load. sqlx exposes no socket, so
//! each new connection sets it on this process's TCP sockets to the
//! database's port (harmless on any that already have it). Remove once a
//! sqlx release sets it again.

use sqlx::postgres::PgPoolOptions;

/// `options` with TCP_NODELAY set on every connection it opens to `port`.
pub fn set_on_connect(options: PgPoolOptions, port: u16) -> PgPoolOptions {
    options.after_connect(move |_, _| {
        Box::pin(async move {
            set_for_port(port);
            Ok(())
        })
    })
}

#[cfg(target_os = "linux")]
fn set_for_port(port: u16) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if peer_port(fd) == Some(port) {
            let one: libc::c_int = 1;
            // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes from a
            // live local; on a descriptor that is not a TCP socket (or was
            // closed meanwhile) it fails and nothing changes.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

/// The remote port of the TCP socket `fd`, if it is one.
#[cfg(target_os = "linux")]
fn peer_port(fd: libc::c_int) -> Option<u16> {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `getpeername` writes at most `length` bytes into `address`,
    // which is that large; on any other kind of descriptor it fails.
    let found = unsafe { libc::getpeername(fd, (&raw mut address).cast(), &mut length) };
    if found != 0 {
        return None;
    }
    match libc::c_int::from(address.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`.
            let v4: libc::sockaddr_in = unsafe { std::ptr::read((&raw const address).cast()) };
            Some(u16::from_be(v4.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a `sockaddr_in6`.
            let v6: libc::sockaddr_in6 = unsafe { std::ptr::read((&raw const address).cast()) };
            Some(u16::from_be(v6.sin6_port))
        }
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn set_for_port(_port: u16) {}
