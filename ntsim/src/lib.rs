//! ntsim: a user-mode model of the NT kernel.

pub mod ntdef;
