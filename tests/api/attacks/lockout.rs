//! Attacks on the lockout: concurrent guessing on the token and password endpoints.
