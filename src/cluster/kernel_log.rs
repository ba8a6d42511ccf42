//! A kernel log file or standard input read as a stream: one line at a time into the OOM
//! parser, so memory follows the reports kept, not the size of the input (a 2 GB dmesg, a
//! sparse file of zeros, a pipe that never ends a line).

use std::io::{self, BufRead, Read};

use crate::parse::oom::{KernelLogOoms, OomLogParser};

/// Longest line kept, in bytes: the kernel's own records are at most 1 KiB (`/dev/kmsg` escapes
/// make them up to four times that); the rest of a longer line is skipped.
pub const MAX_LINE_BYTES: usize = 16 << 10;

/// The OOM reports of a kernel log, with how many lines were too long and cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamedOoms {
    pub ooms: KernelLogOoms,
    pub lines_cut: u64,
}

/// Read a kernel log to its end, line by line (invalid UTF-8, which kernel logs carry, replaced).
pub fn read_ooms(mut input: impl BufRead) -> io::Result<StreamedOoms> {
    let mut parser = OomLogParser::default();
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut lines_cut = 0;
    loop {
        let (more, cut) = next_line(&mut input, &mut line)?;
        if cut {
            lines_cut += 1;
        }
        if !line.is_empty() || more {
            parser.push_line(&String::from_utf8_lossy(&line));
        }
        if !more {
            break;
        }
    }
    Ok(StreamedOoms {
        ooms: parser.finish(),
        lines_cut,
    })
}

/// The next line into `line` (without its break, at most [`MAX_LINE_BYTES`]): (whether a line
/// break ended it, whether bytes were skipped). The searching is std's `read_until` (its memchr).
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<(bool, bool)> {
    line.clear();
    Read::take(&mut *input, MAX_LINE_BYTES as u64).read_until(b'\n', line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok((true, false));
    }
    if line.len() < MAX_LINE_BYTES {
        return Ok((false, false));
    }
    // Too long: skip to the end of the line.
    let mut skipped = Vec::with_capacity(64 << 10);
    loop {
        skipped.clear();
        let n = Read::take(&mut *input, 64 << 10).read_until(b'\n', &mut skipped)?;
        if n == 0 {
            return Ok((false, true));
        }
        if skipped.last() == Some(&b'\n') {
            return Ok((true, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_the_next_line_survives() {
        let mut text = vec![0u8; MAX_LINE_BYTES * 3];
        text.extend_from_slice(b"\n[ 1.0] CPU 0/KVM invoked oom-killer: gfp_mask=0xcc0\n");
        text.extend_from_slice(b"[ 1.1] Memory cgroup out of memory: Killed process 9 (qemu-kvm) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB");
        let got = read_ooms(io::Cursor::new(text)).unwrap();
        assert_eq!(got.lines_cut, 1);
        assert_eq!(got.ooms.events.len(), 1);
        let ev = &got.ooms.events[0];
        assert_eq!(ev.trigger.as_deref(), Some("CPU 0/KVM"));
        assert_eq!(ev.victim.as_ref().map(|v| v.pid), Some(9));
        assert_eq!(ev.line, 2);
    }

    #[test]
    fn crlf_and_invalid_utf8() {
        let text = b"[ 1.0] x invoked oom-killer: y\r\n[ 1.1] Killed process 7 (\xff\xfe) total-vm:4kB\r\n";
        let got = read_ooms(&text[..]).unwrap();
        assert_eq!(got.ooms.events.len(), 1);
        assert_eq!(
            got.ooms.events[0].victim.as_ref().unwrap().comm,
            "\u{fffd}\u{fffd}"
        );
    }
}
