//! The real process environment, as the core's [`Environment`] sees it.

use std::path::PathBuf;

use opencode_sync_core::paths::Environment;

/// Reads `std::env` and the platform's home directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        etcetera::home_dir().ok()
    }
}

/// Whether a process with this pid runs. Sure answers only: a process that cannot be
/// asked about (owned by someone else) counts as running, and so does every process
/// where the system cannot be asked at all. The outbox takes back the claims and sends
/// the drafts of a dead writer at once (`outbox::PidLiveness`); those of a running one
/// wait until they are stale (STALE_CLAIM_MS, STALE_DRAFT_MS), so a wrong "running"
/// only delays them, and a wrong "dead" would send a draft OpenCode is still writing.
///
/// - Unix: kill(pid, 0); only ESRCH (no such process) is dead, EPERM runs.
/// - Windows: OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION) and GetExitCodeProcess.
///   Windows has no signal 0: a pid no process has fails to open with
///   ERROR_INVALID_PARAMETER (dead); one that opens is running while its exit code is
///   STILL_ACTIVE (a process that ended, kept by an open handle, has its real exit
///   code; one that exited with 259 itself looks alive, the safe side). Access denied
///   (another user's, a protected process) and any other failure count as running.
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(windows)]
    {
        windows::pid_alive(pid)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

/// The Win32 calls behind [`pid_alive`]: the one place in the workspace with `unsafe`
/// (foreign functions), each call with what makes it sound.
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows {
    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_INVALID_PARAMETER, GetLastError, STILL_ACTIVE,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };

    pub(super) fn pid_alive(pid: u32) -> bool {
        // SAFETY: plain values in; out comes a process handle this function owns, or null.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            // SAFETY: no arguments; reads this thread's error from the OpenProcess above.
            let error = unsafe { GetLastError() };
            return error != ERROR_INVALID_PARAMETER;
        }
        let mut exit_code = 0u32;
        // SAFETY: `handle` is open (PROCESS_QUERY_LIMITED_INFORMATION allows this call)
        // and `exit_code` is a live u32 for it to write.
        let asked = unsafe { GetExitCodeProcess(handle, &mut exit_code) } != 0;
        // SAFETY: `handle` is open, owned here, and closed once.
        unsafe { CloseHandle(handle) };
        !asked || exit_code == STILL_ACTIVE.cast_unsigned()
    }
}

#[cfg(all(test, any(unix, windows)))]
mod tests {
    use super::pid_alive;

    #[test]
    fn tells_running_from_finished_processes() {
        assert!(pid_alive(std::process::id()));
        #[cfg(unix)]
        let mut child = std::process::Command::new("true").spawn().unwrap();
        #[cfg(windows)]
        let mut child = std::process::Command::new("cmd")
            .args(["/C", "exit 0"])
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // Windows: `child` still holds a handle, so the pid is not reused yet and opens
        // to an exit code that is not STILL_ACTIVE.
        assert!(!pid_alive(pid), "a reaped child is gone");
        assert!(!pid_alive(u32::MAX), "not a pid");
    }
}
