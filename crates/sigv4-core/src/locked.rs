//! Key material that stays out of swap: a value alone on a page of its own, locked in RAM
//! with `mlock(2)` (through the `region` crate: no unsafe code here), zeroized when dropped.
//!
//! Locking is best effort. Where the page size is not 4 KiB (the layout below could then
//! share a page with other data, which an unlock would unlock too), or the process's limit
//! on locked memory (`RLIMIT_MEMLOCK`) is used up, the value is kept as it is, unlocked.
//! Copies a computation makes on the stack are not covered.

use std::ops::Deref;

use zeroize::Zeroize;

/// The page size the layout of [`Page`] is made for.
const PAGE_SIZE: usize = 4096;

/// A value aligned to a page and padded to whole pages: nothing else lies on its pages, so
/// locking and unlocking them touches nothing else.
#[repr(C, align(4096))]
struct Page<T>(T);

/// A value on locked pages of its own; zeroized, then unlocked, when dropped.
pub(crate) struct Locked<T: Zeroize> {
    page: Box<Page<T>>,
    lock: Option<region::LockGuard>,
}

impl<T: Zeroize> Locked<T> {
    /// Moves `value` onto a page of its own and locks it there, if the system allows.
    pub(crate) fn new(value: T) -> Self {
        let page = Box::new(Page(value));
        let lock = match region::page::size() == PAGE_SIZE {
            true => region::lock(&page.0 as *const T, size_of::<Page<T>>()).ok(),
            false => None,
        };
        Self { page, lock }
    }

    /// Whether the value's pages are locked in RAM.
    #[cfg(test)]
    pub(crate) fn is_locked(&self) -> bool {
        self.lock.is_some()
    }
}

impl<T: Zeroize> Deref for Locked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.page.0
    }
}

impl<T: Zeroize> Drop for Locked<T> {
    fn drop(&mut self) {
        self.page.0.zeroize();
        self.lock.take(); // unlocked once zeroized, before the page is freed
    }
}

/// How much memory this process has locked, from `/proc/self/status` (`VmLck`, in KiB).
#[cfg(test)]
pub(crate) fn locked_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmLck:"))
        .expect("a VmLck line");
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("KiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_locked_on_its_own_page_and_unlocked_when_dropped() {
        let before = locked_kib();
        let value = Locked::new([7u8; 64]);
        assert!(
            value.is_locked(),
            "RLIMIT_MEMLOCK too low to lock one page?"
        );
        assert_eq!(*value, [7u8; 64]);
        assert_eq!((&*value as *const [u8; 64] as usize) % PAGE_SIZE, 0);
        assert_eq!(locked_kib(), before + 4);
        let other = Locked::new([9u8; 64]);
        assert_eq!(locked_kib(), before + 8, "each value has a page of its own");
        drop(value);
        assert_eq!(
            locked_kib(),
            before + 4,
            "dropping one leaves the other locked"
        );
        assert_eq!(*other, [9u8; 64]);
        drop(other);
        assert_eq!(locked_kib(), before);
    }
}
