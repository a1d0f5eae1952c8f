//! Cross-crate acceptance tests (issue 4).
