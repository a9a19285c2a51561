//! The order aggregate (arrives with the domain issue).
