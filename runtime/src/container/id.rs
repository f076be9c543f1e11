//! The runtime's identifiers: container IDs (64 hex digits, as Docker's), default names
//! and scratch names, from the kernel's random source.

/// `bytes` random bytes as lower-case hex.
pub fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length name the unfilled tail of `b`.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // getrandom(2) cannot fail on Linux ≥ 3.17 once the pool is initialised;
            // should it, time and PID still make names unique enough for scratch use.
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let seed = t ^ ((std::process::id() as u128) << 64);
            for (i, x) in b[filled..].iter_mut().enumerate() {
                *x = (seed >> ((i % 16) * 8)) as u8;
            }
            break;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_of_the_length_asked_and_differ() {
        let a = super::random(32);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, super::random(32));
    }
}
