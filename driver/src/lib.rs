//! The timer-event driver on wdm-csq (issue 4).
