//! Leads files (`rules replay`, `rules diff`) read a block at a time: a block
//! holds whole lines, handed out in place with no copy or allocation per line.

use std::io::{self, Read};

/// Bytes read at a time; a line longer than this makes its block longer.
const BLOCK: usize = 1 << 20;

/// Whole lines of a leads file and the number of the first.
#[derive(Debug)]
pub struct Block {
    first: usize,
    bytes: Vec<u8>,
}

impl Block {
    /// Each line that is not blank (nothing but white space), with its number
    /// (from 1) and without its `\n`; a line that is not UTF-8 is handed out
    /// as the error it is.
    pub fn lines(&self) -> impl Iterator<Item = (usize, Result<&str, std::str::Utf8Error>)> + '_ {
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', &self.bytes).chain(
            // The last line of a file may have no `\n`.
            (self.bytes.last().is_some_and(|b| *b != b'\n')).then_some(self.bytes.len()),
        );
        ends.enumerate().filter_map(move |(i, end)| {
            let text = std::str::from_utf8(&self.bytes[start..end]);
            start = end + 1;
            // Blank as `str::trim` has it (Unicode spaces too).
            let blank = text.is_ok_and(|t| t.trim().is_empty());
            (!blank).then_some((self.first + i, text))
        })
    }
}

/// Reads `R` a block of whole lines at a time.
pub struct Blocks<R> {
    reader: R,
    /// The start of a line whose end is not read yet.
    carry: Vec<u8>,
    /// The number of the next block's first line.
    next: usize,
    done: bool,
}

impl<R: Read> Blocks<R> {
    pub fn new(reader: R) -> Self {
        Blocks { reader, carry: Vec::new(), next: 1, done: false }
    }

    /// The next block, or `None` at the end of the input.
    pub fn next_block(&mut self) -> io::Result<Option<Block>> {
        let mut bytes = std::mem::take(&mut self.carry);
        loop {
            let searched = bytes.len();
            if !self.done {
                bytes.reserve(BLOCK);
                // Short of a block only at the end of the input.
                let read = (&mut self.reader).take(BLOCK as u64).read_to_end(&mut bytes)?;
                self.done = read < BLOCK;
            }
            if self.done {
                if bytes.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.block(bytes)));
            }
            if let Some(last) = memchr::memrchr(b'\n', &bytes[searched..]) {
                let end = searched + last + 1;
                self.carry = bytes[end..].to_vec();
                bytes.truncate(end);
                return Ok(Some(self.block(bytes)));
            }
        }
    }

    /// The number of the first line not handed out yet.
    pub fn next_line(&self) -> usize {
        self.next
    }

    fn block(&mut self, bytes: Vec<u8>) -> Block {
        let first = self.next;
        self.next += memchr::memchr_iter(b'\n', &bytes).count();
        Block { first, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, as a pipe can.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn all_lines(input: &[u8], step: usize) -> (Vec<(usize, String)>, usize) {
        let mut blocks = Blocks::new(Trickle { bytes: input, step });
        let (mut lines, mut count) = (Vec::new(), 0);
        while let Some(block) = blocks.next_block().expect("read") {
            count += 1;
            for (n, line) in block.lines() {
                let text = match line {
                    Ok(text) => text.to_owned(),
                    Err(e) => format!("not UTF-8: {e}"),
                };
                lines.push((n, text));
            }
        }
        (lines, count)
    }

    #[test]
    fn lines_are_numbered_across_blocks_and_blank_ones_skipped() {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for n in 1..=30_000 {
            if n % 7 == 0 {
                // Blank as `str::trim` has it, Unicode spaces too.
                let blank: [&str; 4] = ["  \t\r\n", "\u{a0}\n", "\u{3000} \u{b}\n", "\u{2028}\n"];
                input.extend_from_slice(blank[n % 4].as_bytes());
                continue;
            }
            let line = format!("{{\"n\": {n}, \"pad\": \"{}\"}}", "x".repeat(n % 97));
            input.extend_from_slice(line.as_bytes());
            input.extend_from_slice(if n % 5 == 0 { b"\r\n" } else { b"\n" });
            expected.push((n, if n % 5 == 0 { format!("{line}\r") } else { line }));
        }
        for step in [1 << 20, 4096, 999] {
            let (lines, blocks) = all_lines(&input, step);
            assert!(blocks > 1, "{} bytes make more than one block", input.len());
            assert_eq!(lines, expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn the_last_line_needs_no_newline_and_a_long_line_stays_whole() {
        let long = "y".repeat(3 * BLOCK + 17);
        let input = format!("first\n{long}\n\nlast");
        let (lines, _) = all_lines(input.as_bytes(), 65_536);
        assert_eq!(lines, vec![(1, "first".to_owned()), (2, long), (4, "last".to_owned())]);
        assert_eq!(all_lines(b"", 10), (vec![], 0));
        assert_eq!(all_lines(b"\n\n", 10).0, vec![]);
    }

    /// Fails once `bytes` are read.
    struct Failing<'a> {
        bytes: &'a [u8],
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.bytes.is_empty() {
                return Err(io::Error::other("the disk went away"));
            }
            let n = buf.len().min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_is_an_error_that_says_where_reading_stopped() {
        let line = format!("{{\"pad\": \"{}\"}}\n", "x".repeat(1000));
        let input = line.repeat(BLOCK / line.len() + 10);
        let mut blocks = Blocks::new(Failing { bytes: input.as_bytes() });
        let first = blocks.next_block().expect("a whole block").expect("lines");
        let whole = first.lines().count();
        assert_eq!(blocks.next_line(), whole + 1);
        let error = blocks.next_block().expect_err("the reader failed");
        assert_eq!(error.to_string(), "the disk went away");
        assert_eq!(blocks.next_line(), whole + 1, "no line after the error was handed out");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_of_its_own() {
        let (lines, _) = all_lines(b"{\"a\": 1}\n{\"b\": \"\xff\"}\n{\"c\": 3}\n", 3);
        assert_eq!(lines[0], (1, "{\"a\": 1}".to_owned()));
        assert_eq!(lines[1].0, 2);
        assert!(lines[1].1.starts_with("not UTF-8: invalid utf-8 sequence"), "{}", lines[1].1);
        assert_eq!(lines[2], (3, "{\"c\": 3}".to_owned()));
    }
}
