//! A child process (a server the test started) that is killed and reaped when dropped, so a test
//! that fails or panics leaves nothing running.

use std::process::Child;

/// A child process killed (SIGKILL) and waited for when dropped.
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // Already exited (a test that stopped it) or killed here.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
