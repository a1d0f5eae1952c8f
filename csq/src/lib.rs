//! Safe cancel-safe IRP queues for Windows WDM drivers.
#![no_std]
