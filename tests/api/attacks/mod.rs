//! Attacks on the server, each one reproduced against the real server (issue #16):
//! the scenario a reviewer found, written as the attacker would run it, and the
//! guarantee that now holds. `docs/security.md` lists each guarantee with its test.

mod accounts;
mod edge;
mod import;
mod lockout;
