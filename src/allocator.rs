//! Keeping freed tensor memory in the process instead of handing it back to the system.
//!
//! libtorch allocates CPU tensors with the C allocator. With glibc's defaults every block over a
//! few megabytes is a fresh `mmap`, unmapped again when the tensor is dropped, so a loop over
//! batches spends much of its time zero-filling new pages in the kernel (on two cores the
//! stacked ablation sweep ran 2.4× slower that way). [`keep_freed_memory`] turns `mmap` off
//! for allocations and stops the heap from being trimmed, so the next batch reuses the last
//! one's memory. The price is that the process keeps its peak memory until it exits.

/// Tunes glibc's allocator as the module documentation describes; a no-op elsewhere. Call it
/// once, early, in a program that runs many similar forwards.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; both values are valid for glibc.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
