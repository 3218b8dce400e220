//! Process figures for GetSysStats, from /proc (Linux); `None` where unavailable.

/// Resident memory in bytes (`/proc/self/statm`, second field, in pages).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages.saturating_mul(u64::try_from(page).ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_resident_memory() {
        assert!(super::resident_bytes().is_some_and(|b| b > 0));
    }
}
