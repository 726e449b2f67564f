//! This process's limit on open file descriptors, for the tests that run out of them
//! (each in its own test binary: the limit is the whole process's).

/// Sets this process's soft limit on open descriptors; returns the old one.
pub fn set_fd_limit(soft: u64) -> u64 {
    // SAFETY: get/setrlimit read and write the `rlimit` we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}
