//! What every fuzz target shares: the case count, byte and text mutations of valid files, and
//! an allocator that records each thread's peak so a case can assert bounded memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per target: `GRADLAB_FUZZ_CASES` (a few hundred by default, for CI; a million for the
/// long run described in ARCHITECTURE.md).
pub fn config() -> Config {
    let cases = std::env::var("GRADLAB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    // failures are kept as named regression tests, not in a proptest-regressions folder
    Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() }
}

/// Bytes one case may hold at its peak, beyond what it held when it began. The inputs are
/// kilobytes; a reader that sizes a buffer from a header number blows far past this.
pub const MAX_CASE_BYTES: isize = 64 << 20;

struct Counting;

thread_local! {
    static NOW: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // try_with: the thread's locals may already be gone while it exits
    let _ = NOW.try_with(|now| {
        let n = now.get() + delta;
        now.set(n);
        let _ = PEAK.try_with(|p| p.set(p.get().max(n)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `case` and returns its result with the most bytes this thread held above its start.
pub fn peak_of<T>(case: impl FnOnce() -> T) -> (T, isize) {
    let start = NOW.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = case();
    (out, PEAK.with(Cell::get) - start)
}

/// Runs `case` and fails the proptest case when it held more than [`MAX_CASE_BYTES`].
pub fn bounded<T>(what: &str, case: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let (out, peak) = peak_of(case);
    prop_assert!(peak <= MAX_CASE_BYTES, "{what} held {peak} bytes at its peak");
    Ok(out)
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
pub enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    /// Puts a big-endian u32 (sizes and counts in headers) at a position.
    Word(usize, u32),
    /// Repeats a slice (inflates a length without inventing new bytes).
    Repeat(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting =
        prop_oneof![Just(0u32), Just(1), Just(0x7fff_ffff), Just(u32::MAX), Just(60_000), Just(28), any::<u32>()];
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Truncate),
        2 => (any::<usize>(), interesting).prop_map(|(i, w)| Edit::Word(i, w)),
        1 => (any::<usize>(), 1usize..64, 1usize..32).prop_map(|(i, l, n)| Edit::Repeat(i, l, n)),
    ]
}

pub fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = base.to_vec();
    for e in edits {
        let len = b.len();
        let at = |i: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Set(i, v) if len > 0 => b[at(i)] = v,
            Edit::Insert(i, v) => b.insert(i % (len + 1), v),
            Edit::Remove(i) if len > 0 => {
                b.remove(at(i));
            }
            Edit::Truncate(i) => b.truncate(i % (len + 1)),
            Edit::Word(i, w) if len >= 4 => {
                let p = i % (len - 3);
                b[p..p + 4].copy_from_slice(&w.to_be_bytes());
            }
            Edit::Repeat(i, l, n) if len > 0 => {
                let s = at(i);
                let piece = b[s..(s + l).min(len)].to_vec();
                let tail = b.split_off(s);
                for _ in 0..n {
                    b.extend_from_slice(&piece);
                }
                b.extend_from_slice(&tail);
            }
            _ => {}
        }
    }
    b
}

/// `base` with up to eight random edits (none: the valid file itself).
pub fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(edit(), 0..8).prop_map(move |edits| apply(&base, &edits))
}

/// Random bytes, mostly short.
pub fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// A mutated text file, as text (invalid UTF-8 replaced: text readers see valid strings).
pub fn mutated_text(base: &str) -> impl Strategy<Value = String> {
    mutated(base.as_bytes().to_vec()).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Numbers a hostile file would hold where a count or size is expected.
pub fn hostile_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("4000000000".to_string()),
        Just("100000000000000".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("18446744073709551615".to_string()),
        Just("1e308".to_string()),
        Just("-1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("0.5".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u32>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
    ]
}

/// Replaces the `n`-th number (a run of digits, with sign and fraction) in `text` by `with`.
pub fn replace_number(text: &str, n: usize, with: &str) -> String {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let mut start = i;
            if start > 0 && bytes[start - 1] == b'-' {
                start -= 1;
            }
            while i < bytes.len() && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E' | b'+')) {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    if spans.is_empty() {
        return text.to_string();
    }
    let (s, e) = spans[n % spans.len()];
    format!("{}{with}{}", &text[..s], &text[e..])
}

/// Valid text with numbers swapped for hostile ones, then a few byte edits.
pub fn hostile_text(base: String) -> impl Strategy<Value = String> {
    (proptest::collection::vec((any::<usize>(), hostile_number()), 0..4), proptest::collection::vec(edit(), 0..3))
        .prop_map(move |(numbers, edits)| {
            let mut text = base.clone();
            for (n, with) in numbers {
                text = replace_number(&text, n, &with);
            }
            String::from_utf8_lossy(&apply(text.as_bytes(), &edits)).into_owned()
        })
}
