//! Attacks through `gatehouse import`: identity confusion and crafted password hashes.
