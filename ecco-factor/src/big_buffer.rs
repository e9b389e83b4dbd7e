//! A zeroed `f32` buffer for the solver's copy of the data, on transparent huge pages
//! where Linux offers them.
//!
//! The blocked copy of `X` (12 MB for the 157 × 18432 benchmark) is written once and
//! then streamed every iteration. On 4 KiB pages its first writes take one page fault
//! per page (about 3000, slow in a virtual machine), and every sweep over it misses
//! the TLB; on 2 MiB pages both mostly go away. The mapping is a little larger than
//! the buffer so that the buffer can start, and end, on a 2 MiB boundary. Elsewhere,
//! or when the mapping fails, it is a plain `Vec`.

/// Buffers at least this large ask for huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;
/// The huge page size the buffer is aligned to (x86-64 and most arm64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// A zero-initialised buffer of `f32`.
#[derive(Debug)]
pub(crate) enum BigBuffer {
    /// An anonymous mapping advised to use transparent huge pages, and where in it
    /// the values are (`start .. start + len` bytes, `start` on a huge page boundary).
    Mapped { map: memmap2::MmapMut, start: usize, len: usize },
    /// An ordinary allocation.
    Heap(Vec<f32>),
}

impl BigBuffer {
    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> Self {
        let bytes = len * size_of::<f32>();
        #[cfg(target_os = "linux")]
        if bytes >= HUGE_PAGE_MIN_BYTES
            && let Ok(map) = memmap2::MmapMut::map_anon(bytes.next_multiple_of(HUGE_PAGE) + HUGE_PAGE)
        {
            // Only a hint: without transparent huge pages it is a normal mapping.
            let _ = map.advise(memmap2::Advice::HugePage);
            let start = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
            return Self::Mapped { map, start, len: bytes };
        }
        let _ = (bytes, HUGE_PAGE_MIN_BYTES, HUGE_PAGE);
        Self::Heap(vec![0.0; len])
    }

    /// The values.
    pub(crate) fn as_slice(&self) -> &[f32] {
        match self {
            // The values start on a page boundary, so the cast cannot fail.
            Self::Mapped { map, start, len } => bytemuck::cast_slice(&map[*start..*start + *len]),
            Self::Heap(v) => v,
        }
    }

    /// The values, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        match self {
            Self::Mapped { map, start, len } => bytemuck::cast_slice_mut(&mut map[*start..*start + *len]),
            Self::Heap(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_are_zeroed_and_writable() {
        for len in [0, 10, (HUGE_PAGE_MIN_BYTES / 4) + 3] {
            let mut b = BigBuffer::zeros(len);
            assert_eq!(b.as_slice().len(), len);
            assert!(b.as_slice().iter().all(|&v| v == 0.0));
            if let Some(last) = b.as_mut_slice().last_mut() {
                *last = 2.5;
            }
            assert_eq!(b.as_slice().last().copied().unwrap_or(2.5), 2.5);
        }
    }

    /// What the mapping exists for: a large buffer's values start on a huge-page boundary and
    /// the mapping covers whole huge pages from there.
    #[cfg(target_os = "linux")]
    #[test]
    fn large_buffers_are_mapped_on_huge_page_boundaries() {
        let len = HUGE_PAGE_MIN_BYTES / 4 + 3;
        let b = BigBuffer::zeros(len);
        let BigBuffer::Mapped { map, start, len: bytes } = &b else { panic!("a buffer of {len} values is not mapped") };
        assert_eq!(b.as_slice().as_ptr() as usize % HUGE_PAGE, 0, "the values do not start on a huge page");
        assert!(start + bytes.next_multiple_of(HUGE_PAGE) <= map.len(), "the mapping ends inside the last huge page");
        assert_eq!(b.as_slice().len(), len);
    }
}
