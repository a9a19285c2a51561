//! notifier: idempotent side effects (e-mail, signed webhooks) of accepted
//! order events (see `ARCHITECTURE.md`). Its code arrives with the side effects.
