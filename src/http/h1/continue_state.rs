//! Where `100 Continue` stands for one request whose client expects it (RFC 9110 §10.1.1):
//! shared by the connection's writer, its body reader and the handler's thread.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Continue {
    /// Nobody has asked for the body yet.
    Idle = 0,
    /// The handler asked for the body: the writer owes the client `100 Continue`.
    Wanted = 1,
    Sent = 2,
    /// The response head went out first: the body will not be asked for.
    Refused = 3,
}

impl Continue {
    fn from_u8(value: u8) -> Continue {
        match value {
            0 => Continue::Idle,
            1 => Continue::Wanted,
            2 => Continue::Sent,
            _ => Continue::Refused,
        }
    }
}

#[derive(Debug)]
pub struct ContinueState(AtomicU8);

impl Default for ContinueState {
    fn default() -> ContinueState {
        ContinueState(AtomicU8::new(Continue::Idle as u8))
    }
}

/// The state of a request that does not expect `100 Continue`: stays idle.
pub static NOT_EXPECTED: ContinueState = ContinueState(AtomicU8::new(Continue::Idle as u8));

impl ContinueState {
    pub fn get(&self) -> Continue {
        Continue::from_u8(self.0.load(Ordering::Acquire))
    }

    /// The handler asks for the body. `false` when the response went out first: the client
    /// was told no and will not send it.
    pub fn request(&self) -> bool {
        self.move_from(Continue::Idle, Continue::Wanted).is_ok()
    }

    /// The writer has sent `100 Continue`.
    pub fn mark_sent(&self) {
        self.0.store(Continue::Sent as u8, Ordering::Release);
    }

    /// The response head is about to go out: from now on the body is not asked for. Returns
    /// the state before (`Idle`: the body was never asked for, so it will not come).
    pub fn on_response(&self) -> Continue {
        match self.move_from(Continue::Idle, Continue::Refused) {
            Ok(()) => Continue::Idle,
            Err(seen) => seen,
        }
    }

    fn move_from(&self, from: Continue, to: Continue) -> Result<(), Continue> {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Continue::from_u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_asked_for_first_is_owed_a_continue_and_one_asked_for_late_is_refused() {
        let asked = ContinueState::default();
        assert!(asked.request());
        assert_eq!(asked.on_response(), Continue::Wanted);
        let late = ContinueState::default();
        assert_eq!(late.on_response(), Continue::Idle);
        assert!(!late.request());
        assert_eq!(late.get(), Continue::Refused);
    }
}
