//! A test-only backend: a few dozen lines of the contract's semantics, enough to exercise the
//! plumbing (printing, compare, timeline) without a driver. Compiled only under `cfg(test)`; the
//! CLI cannot reach it. It is no reference model: the acceptance tests compare real drivers.

use std::collections::{BTreeMap, VecDeque};

use crate::backend::{Backend, BackendError, Model, RunResult};
use crate::observation::{NtStatus, Observation};
use crate::script::{
    ActionKind, BadHandle, Due, IOCTL_REGISTER_EVENT, REGISTER_EVENT_SIZE, Script,
};

/// A simulated device following model S or C, with optional canned violations and leaks.
#[derive(Debug)]
pub struct FakeBackend {
    name: String,
    model: Model,
    /// Added to the result as they are.
    pub violations: u64,
    /// Added to the result as they are.
    pub leaks: u64,
    /// When set, `run` fails with this message.
    pub fail: Option<String>,
}

impl FakeBackend {
    pub fn new(name: &str, model: Model) -> Self {
        FakeBackend {
            name: name.to_owned(),
            model,
            violations: 0,
            leaks: 0,
            fail: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    req: String,
    handle: String,
    due_ms: u64,
    deadline: u64,
}

#[derive(Default)]
struct Sim {
    out: Vec<Observation>,
    queue: VecDeque<Pending>,
    /// Model S: the request in service. Model C: unused.
    service: Option<Pending>,
    /// Model C: every pending request.
    all: Vec<Pending>,
    /// Event registrations: (deadline, event, handle).
    armed: Vec<(u64, String, String)>,
    signalled: BTreeMap<String, bool>,
    open: Vec<String>,
}

impl Sim {
    fn complete(&mut self, t_ms: u64, req: &str, status: NtStatus, pending: bool) {
        self.out.push(Observation::Completed {
            t_ms,
            req: req.to_owned(),
            status,
            info: 0,
            pending,
        });
    }

    fn next_due(&self) -> Option<u64> {
        let irp = match &self.service {
            Some(p) => Some(p.deadline),
            None => self.all.iter().map(|p| p.deadline).min(),
        };
        let event = self.armed.iter().map(|a| a.0).min();
        match (irp, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every deadline at or before `to`, in time order.
    fn advance(&mut self, to: u64) {
        while let Some(t) = self.next_due().filter(|t| *t <= to) {
            if let Some(i) = self.armed.iter().position(|a| a.0 == t) {
                let (_, event, _) = self.armed.remove(i);
                let state = self.signalled.entry(event.clone()).or_insert(false);
                if !*state {
                    *state = true;
                    self.out.push(Observation::Signalled { t_ms: t, event });
                }
            } else if self.service.as_ref().is_some_and(|p| p.deadline == t) {
                let done = self.service.take().map(|p| p.req).unwrap_or_default();
                self.complete(t, &done, NtStatus::SUCCESS, true);
                self.start_next(t);
            } else if let Some(i) = self.all.iter().position(|p| p.deadline == t) {
                let done = self.all.remove(i);
                self.complete(t, &done.req, NtStatus::SUCCESS, true);
            }
        }
    }

    fn start_next(&mut self, now: u64) {
        if self.service.is_none() {
            if let Some(mut next) = self.queue.pop_front() {
                next.deadline = now + next.due_ms;
                self.service = Some(next);
            }
        }
    }

    fn submit(&mut self, model: Model, now: u64, req: &str, handle: &str, due_ms: u64) {
        let p = Pending {
            req: req.to_owned(),
            handle: handle.to_owned(),
            due_ms,
            deadline: now + due_ms,
        };
        match model {
            Model::Serialized => {
                self.queue.push_back(p);
                self.start_next(now);
            }
            Model::Concurrent => self.all.push(p),
        }
    }

    fn cancel_where(&mut self, now: u64, hit: impl Fn(&Pending) -> bool) {
        let mut cancelled = Vec::new();
        if self.service.as_ref().is_some_and(&hit) {
            cancelled.extend(self.service.take());
        }
        let (gone, kept): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(&hit);
        self.queue = kept.into();
        cancelled.extend(gone);
        let (gone, kept): (Vec<_>, Vec<_>) = self.all.drain(..).partition(&hit);
        self.all = kept;
        cancelled.extend(gone);
        for p in cancelled {
            self.complete(now, &p.req, NtStatus::CANCELLED, true);
        }
        self.start_next(now);
    }

    fn close(&mut self, now: u64, handle: &str) {
        self.cancel_where(now, |p| p.handle == handle);
        self.armed.retain(|a| a.2 != handle);
        self.open.retain(|h| h != handle);
    }
}

fn due_ms(due: Due) -> u64 {
    match due {
        Due::Ms(ms) => ms,
        // A positive DueTime is treated as relative (scenarios.md, "Semantics").
        Due::Raw100ns(n) => n.unsigned_abs() / 10_000,
    }
}

impl Backend for FakeBackend {
    fn run(&mut self, script: &Script) -> Result<RunResult, BackendError> {
        if let Some(message) = &self.fail {
            return Err(BackendError::Failed {
                device: self.name.clone(),
                message: message.clone(),
            });
        }
        let mut sim = Sim::default();
        for action in &script.actions {
            let now = action.at_ms;
            sim.advance(now);
            match &action.kind {
                ActionKind::Open { handle } => sim.open.push(handle.to_string()),
                ActionKind::Irp { req, handle, due } => {
                    sim.submit(self.model, now, req.as_str(), handle.as_str(), due_ms(*due));
                }
                ActionKind::Event {
                    event,
                    handle,
                    due_ms,
                } => {
                    sim.complete(now, event.as_str(), NtStatus::SUCCESS, false);
                    sim.signalled.entry(event.to_string()).or_insert(false);
                    sim.armed
                        .push((now + due_ms, event.to_string(), handle.to_string()));
                }
                ActionKind::BadEvent { req, bad, .. } => {
                    let status = match bad {
                        BadHandle::Invalid => NtStatus::INVALID_HANDLE,
                        BadHandle::NotEvent => NtStatus::OBJECT_TYPE_MISMATCH,
                    };
                    sim.complete(now, req.as_str(), status, false);
                }
                ActionKind::Raw {
                    req,
                    handle,
                    len,
                    ty,
                    due_ms,
                } => match (*len >= REGISTER_EVENT_SIZE, ty.unwrap_or(0)) {
                    (true, 0) => sim.submit(
                        self.model,
                        now,
                        req.as_str(),
                        handle.as_str(),
                        due_ms.unwrap_or(0),
                    ),
                    (true, 1) => sim.complete(now, req.as_str(), NtStatus::INVALID_HANDLE, false),
                    _ => sim.complete(now, req.as_str(), NtStatus::INVALID_PARAMETER, false),
                },
                ActionKind::Ioctl { req, code, len, .. } => {
                    let status = if *code == IOCTL_REGISTER_EVENT && len.unwrap_or(0) < 24 {
                        NtStatus::INVALID_PARAMETER
                    } else {
                        NtStatus::NOT_IMPLEMENTED
                    };
                    sim.complete(now, req.as_str(), status, false);
                }
                ActionKind::Cancel { req } => sim.cancel_where(now, |p| p.req == req.as_str()),
                ActionKind::Close { handle } => sim.close(now, handle.as_str()),
                ActionKind::Reset { event } => {
                    sim.signalled.insert(event.to_string(), false);
                }
                ActionKind::End => {
                    for handle in sim.open.clone() {
                        sim.close(now, &handle);
                    }
                }
            }
        }
        Ok(RunResult {
            observations: sim.out,
            violations: self.violations,
            leaks: self.leaks,
            reports: (0..self.violations + self.leaks)
                .map(|i| format!("fake report {i}"))
                .collect(),
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::format_json;
    use crate::script::parse;

    fn json(model: Model, text: &str) -> String {
        let script = parse(text).unwrap();
        let result = FakeBackend::new("fake", model).run(&script).unwrap();
        format_json(&result.observations, &result.summary("fake"))
    }

    #[test]
    fn serializes_in_model_s_and_overlaps_in_model_c() {
        let text = "at 0 open h1\nat 0 irp r1 h1 due=1000\nat 0 irp r2 h1 due=500\nat 2000 end\n";
        let s = json(Model::Serialized, text);
        let c = json(Model::Concurrent, text);
        assert!(s.contains(r#"{"t":1500,"req":"r2","#), "{s}");
        assert!(c.contains(r#"{"t":500,"req":"r2","#), "{c}");
    }

    #[test]
    fn close_cancels_and_drops_registrations() {
        let text = "at 0 open h1\nat 0 irp r1 h1 due=1000\nat 0 event e1 h1 due=500\n\
                    at 100 close h1\nat 2000 end\n";
        let out = json(Model::Concurrent, text);
        assert!(
            out.contains(r#"{"t":100,"req":"r1","status":"STATUS_CANCELLED""#),
            "{out}"
        );
        assert!(!out.contains(r#""event":"e1""#), "{out}");
    }
}
