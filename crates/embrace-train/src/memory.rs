//! The allocator setting that training needs.
//!
//! A training step allocates and frees many blocks of megabytes: activations kept for the
//! backward pass, gradients, dropout outputs. With glibc's defaults, blocks that large are
//! mapped from the kernel when allocated and unmapped when freed (or trimmed off the top of the
//! heap), so every step faults all of them in again, the kernel zeroes each page, and every
//! unmapping interrupts the other threads to flush their TLBs. On this project's 2-core test
//! machine that was a quarter of a LoRA step (`tools/oracle/bench_train.py --embrace-only`:
//! 0.64-0.69 steps/s by default, 0.85 with the setting below).

/// Largest block glibc's heap serves (its `M_MMAP_THRESHOLD` maximum on 64-bit systems);
/// larger ones are still mapped one by one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_BLOCK_LIMIT: libc::c_int = 32 * 1024 * 1024;

/// `M_TRIM_THRESHOLD` value that turns trimming off: free memory at the top of the heap is
/// kept for reuse instead of being returned to the kernel (`mallopt(3)`: "Setting
/// M_TRIM_THRESHOLD to -1 disables trimming completely"). A bound would not do: a LoRA step of
/// MiniLM at batch 32 grows the heap by 1.2 GiB, so with a 1 GiB bound every step gave it back
/// and faulted it in again (4,800 `brk` calls in 38 steps, a fifth of the step time).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const NO_TRIMMING: libc::c_int = -1;

/// Makes the process's allocator keep freed memory for reuse: blocks up to 32 MiB come from the
/// heap instead of fresh mappings, and free heap memory is kept instead of being returned to
/// the kernel. Process-wide (the binary decides: `embrace train` calls it); the
/// cost is a resident size that stays at its peak. Returns whether the setting took effect
/// (only with glibc on Linux; elsewhere it does nothing and returns false).
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    {
        // SAFETY: `mallopt` only changes glibc's allocation parameters, which it allows at
        // any time from any thread; both values are within the ranges glibc accepts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, NO_TRIMMING) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_setting() {
        assert!(super::reuse_freed_memory());
    }
}
