//! Attacks at the HTTP edge: content types, request ids, metrics, forged hosts, oversized input.
