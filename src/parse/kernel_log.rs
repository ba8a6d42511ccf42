//! Kernel log lines with their prefixes taken off, whatever wrote them.
//!
//! Understood: raw `dmesg` (`[ 8758.722811] msg`), `dmesg -T` (`[Thu May  9 14:52:38 2024] msg`),
//! `dmesg -r` (`<4>[ 1.2] msg`), `dmesg --time-format iso`, `/dev/kmsg` records
//! (`4,1234,458325923,-;msg`, with `\x0a` escapes), `journalctl -k` and syslog files
//! (`Feb 03 19:57:08 host kernel: msg`, ISO or RFC 3164 times, optionally a kernel timestamp after
//! the ident), Harvester support-bundle `kernel.log` (journal format), and continuation lines (an
//! indented line without a prefix continues the previous message, as multi-line printk output
//! does). Lines another program wrote into a syslog file are dropped.

use std::borrow::Cow;
use std::collections::VecDeque;

/// One kernel message line, borrowed from the input where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLine<'a> {
    /// 1-based line number in the input.
    pub number: usize,
    /// The timestamp as printed, without brackets.
    pub time: Option<Cow<'a, str>>,
    /// Host from a syslog/journal prefix (`None` when redacted as `**`).
    pub host: Option<Cow<'a, str>>,
    /// The message, surrounding blanks removed.
    pub msg: Cow<'a, str>,
}

/// The kernel message lines of a whole log, produced as they are read (a large kernel.log is
/// never held twice).
pub fn kernel_lines(text: &str) -> KernelLines<'_> {
    KernelLines {
        lines: text.lines().enumerate(),
        pending: VecDeque::new(),
        reader: KernelLineReader::default(),
    }
}

/// Iterator returned by [`kernel_lines`].
pub struct KernelLines<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    /// Lines of one input line still to hand out (a kmsg record may hold several).
    pending: VecDeque<KernelLine<'a>>,
    reader: KernelLineReader,
}

impl<'a> Iterator for KernelLines<'a> {
    type Item = KernelLine<'a>;

    fn next(&mut self) -> Option<KernelLine<'a>> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            let (i, raw) = self.lines.next()?;
            let pending = &mut self.pending;
            self.reader.read(i + 1, raw, &mut |l| pending.push_back(l));
        }
    }
}

/// Takes the prefixes off one input line at a time, remembering only what a continuation line
/// needs from the line before it (its time and host): a log read as a stream keeps no input.
#[derive(Debug, Default)]
pub struct KernelLineReader {
    last_time: Option<String>,
    last_host: Option<String>,
    /// The previous line was written by another program (its continuations are dropped too).
    last_foreign: bool,
    last_kmsg: bool,
}

impl KernelLineReader {
    /// The kernel message lines of input line `number` (1-based), handed to `out` in order.
    pub fn read<'a>(&mut self, number: usize, raw: &'a str, out: &mut dyn FnMut(KernelLine<'a>)) {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented && self.last_kmsg {
            // `/dev/kmsg` dictionary lines (` SUBSYSTEM=…`).
            return;
        }
        if let Some((time, msg)) = strip_kmsg(line) {
            self.read_kmsg(number, time, msg, out);
            return;
        }
        self.last_kmsg = false;
        let (prio_stripped, _) = strip_priority(line);
        if let Some(sys) = strip_syslog(prio_stripped) {
            self.read_syslog(number, sys, out);
            return;
        }
        let stamped = strip_bracket_time(prio_stripped).or_else(|| strip_iso_time(prio_stripped));
        if let Some((time, msg)) = stamped {
            self.last_foreign = false;
            self.remember_time(Some(time));
            self.last_host = None;
            emit(
                out,
                number,
                Some(Cow::Borrowed(time)),
                None,
                Cow::Borrowed(msg),
            );
            return;
        }
        if indented {
            // A continuation of the line before, with its time and host.
            if !self.last_foreign {
                let time = self.last_time.clone().map(Cow::Owned);
                let host = self.last_host.clone().map(Cow::Owned);
                emit(out, number, time, host, Cow::Borrowed(line));
            }
            return;
        }
        self.last_foreign = false;
        self.last_time = None;
        self.last_host = None;
        emit(out, number, None, None, Cow::Borrowed(prio_stripped));
    }

    /// A `/dev/kmsg` record: its message, or each line of a message with escaped newlines.
    fn read_kmsg<'a>(
        &mut self,
        number: usize,
        time: String,
        msg: &'a str,
        out: &mut dyn FnMut(KernelLine<'a>),
    ) {
        self.last_kmsg = true;
        self.last_foreign = false;
        self.last_host = None;
        self.remember_time(Some(&time));
        if msg.contains("\\x") {
            for part in unescape_kmsg(msg).split('\n') {
                let part = part.trim();
                if !part.is_empty() {
                    let time = Some(Cow::Owned(time.clone()));
                    emit(out, number, time, None, Cow::Owned(part.to_string()));
                }
            }
        } else {
            emit(
                out,
                number,
                Some(Cow::Owned(time)),
                None,
                Cow::Borrowed(msg),
            );
        }
    }

    /// A syslog line: the kernel's message (without its own priority and time), or nothing for
    /// another program's (whose continuation lines are dropped too).
    fn read_syslog<'a>(
        &mut self,
        number: usize,
        sys: Syslog<'a>,
        out: &mut dyn FnMut(KernelLine<'a>),
    ) {
        if !sys.kernel {
            self.last_foreign = true;
            return;
        }
        self.last_foreign = false;
        let (msg, _) = strip_priority(sys.msg);
        let msg = strip_bracket_time(msg).map_or(msg, |(_, rest)| rest);
        self.remember_time(Some(sys.time));
        self.remember_host(sys.host);
        let host = sys.host.map(Cow::Borrowed);
        emit(
            out,
            number,
            Some(Cow::Borrowed(sys.time)),
            host,
            Cow::Borrowed(msg),
        );
    }

    /// Keep `time` for continuation lines, reusing the buffer.
    fn remember_time(&mut self, time: Option<&str>) {
        remember(&mut self.last_time, time);
    }

    fn remember_host(&mut self, host: Option<&str>) {
        remember(&mut self.last_host, host);
    }
}

fn remember(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(s), Some(v)) => {
            s.clear();
            s.push_str(v);
        }
        (None, Some(v)) => *slot = Some(v.to_string()),
        (_, None) => *slot = None,
    }
}

fn emit<'a>(
    out: &mut dyn FnMut(KernelLine<'a>),
    number: usize,
    time: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    msg: Cow<'a, str>,
) {
    let msg = match msg {
        Cow::Borrowed(m) => Cow::Borrowed(m.trim()),
        Cow::Owned(m) => Cow::Owned(m.trim().to_string()),
    };
    if msg.is_empty() {
        return;
    }
    out(KernelLine {
        number,
        time,
        host,
        msg,
    });
}

/// `/dev/kmsg`: `PRI,SEQ,USEC,FLAGS[,…];message` → (`seconds.micros`, message).
fn strip_kmsg(line: &str) -> Option<(String, &str)> {
    let (head, msg) = line.split_once(';')?;
    let mut fields = head.split(',');
    let prio = fields.next()?;
    let seq = fields.next()?;
    let usec = fields.next()?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(prio) && digits(seq) && digits(usec)) || prio.len() > 4 {
        return None;
    }
    let usec: u64 = usec.parse().ok()?;
    Some((format!("{}.{:06}", usec / 1_000_000, usec % 1_000_000), msg))
}

/// kmsg escapes non-printable bytes as `\xNN`; a multi-line printk arrives as `\x0a`.
fn unescape_kmsg(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(pos) = rest.find("\\x") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let hex = after.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) if b.is_ascii() => {
                out.push(char::from(b));
                rest = &after[2..];
            }
            _ => {
                out.push_str("\\x");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `<4>` syslog priority in front of a message (`dmesg -r`).
fn strip_priority(line: &str) -> (&str, Option<u8>) {
    if let Some(rest) = line.strip_prefix('<') {
        if let Some((num, after)) = rest.split_once('>') {
            if !num.is_empty() && num.len() <= 3 && num.bytes().all(|b| b.is_ascii_digit()) {
                return (after, num.parse().ok());
            }
        }
    }
    (line, None)
}

/// `[ 8758.722811] msg` or `[Thu May  9 14:52:38 2024] msg`. A bracket holding only a number
/// (task table rows such as `[  38886]`) or `pid` is part of the message, not a time.
fn strip_bracket_time(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('[')?;
    let end = rest.find(']')?;
    let inside = rest[..end].trim();
    let after = &rest[end + 1..];
    let seconds = inside.contains('.')
        && inside.bytes().any(|b| b.is_ascii_digit())
        && inside.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let clock = inside.contains(':')
        && inside.len() >= 8
        && inside.bytes().any(|b| b.is_ascii_digit())
        && inside
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" :.,+-".contains(&b));
    if seconds || clock {
        Some((inside, after))
    } else {
        None
    }
}

/// `2024-05-09T14:52:38,123456+00:00 msg` (`dmesg --time-format iso`).
fn strip_iso_time(line: &str) -> Option<(&str, &str)> {
    let (token, rest) = line.split_once(' ')?;
    is_iso_time(token).then_some((token, rest))
}

fn is_iso_time(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
}

struct Syslog<'a> {
    time: &'a str,
    host: Option<&'a str>,
    kernel: bool,
    msg: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Feb 03 19:57:08 host kernel: msg`, `May  9 14:52:38.123456 host kernel: msg`,
/// `2024-05-09T14:52:38+0000 host kernel: msg`; the ident may carry `[pid]`. Also the other
/// journalctl forms, accepted only with the `kernel` ident (their time alone is too plain to
/// tell a prefix from a message): `-o short-monotonic` (`[ 8758.722811] host kernel: msg`),
/// `-o short-unix` (`1715266358.123456 host kernel: msg`) and `-o short-full`
/// (`Thu 2024-05-09 14:52:38 UTC host kernel: msg`).
fn strip_syslog(line: &str) -> Option<Syslog<'_>> {
    let (time, rest, strict) = if let Some((time, rest)) = rfc3164_time(line) {
        (time, rest, false)
    } else if let Some((token, rest)) = line.split_once(' ').filter(|(t, _)| is_iso_time(t)) {
        (token, rest, false)
    } else if let Some((time, rest)) = strip_bracket_time(line) {
        (time, rest.trim_start(), true)
    } else if let Some((time, rest)) = unix_time(line).or_else(|| full_time(line)) {
        (time, rest, true)
    } else {
        return None;
    };
    let (host, rest) = rest.split_once(' ')?;
    let (ident, msg) = rest.split_once(": ").or_else(|| {
        let ident = rest.strip_suffix(':')?;
        Some((ident, ""))
    })?;
    if ident.is_empty() || ident.contains(' ') || host.is_empty() {
        return None;
    }
    let name = ident.split('[').next().unwrap_or(ident);
    let kernel = name == "kernel";
    if strict && !kernel {
        return None;
    }
    let host = (!host.bytes().all(|b| b == b'*')).then_some(host);
    Some(Syslog {
        time,
        host,
        kernel,
        msg,
    })
}

/// "Mon dd HH:MM:SS[.frac]" with a space-padded day.
fn rfc3164_time(line: &str) -> Option<(&str, &str)> {
    if !MONTHS.iter().any(|m| line.starts_with(m)) {
        return None;
    }
    let after_month = line.get(3..)?;
    let trimmed = after_month.trim_start_matches(' ');
    if trimmed.len() == after_month.len() {
        return None;
    }
    let (day, after_day) = trimmed.split_once(' ')?;
    if day.is_empty() || day.len() > 2 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (clock, rest) = after_day.split_once(' ')?;
    is_clock(clock).then(|| (&line[..line.len() - rest.len() - 1], rest))
}

fn is_clock(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8 && b[2] == b':' && b[5] == b':' && b[..2].iter().all(u8::is_ascii_digit)
}

/// `1715266358.123456 rest`
fn unix_time(line: &str) -> Option<(&str, &str)> {
    let (token, rest) = line.split_once(' ')?;
    let (secs, frac) = token.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(secs) && digits(frac)).then_some((token, rest))
}

/// `Thu 2024-05-09 14:52:38 UTC rest`
fn full_time(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.splitn(5, ' ');
    let (day, date, clock, zone, rest) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let date_ok = date.len() == 10
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && date.bytes().filter(u8::is_ascii_digit).count() == 8;
    let ok = day.len() == 3
        && day.bytes().all(|b| b.is_ascii_alphabetic())
        && date_ok
        && is_clock(clock)
        && !zone.is_empty();
    ok.then(|| (&line[..line.len() - rest.len() - 1], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> KernelLine<'_> {
        let mut v: Vec<_> = kernel_lines(line).collect();
        assert_eq!(v.len(), 1, "{line:?} gave {v:?}");
        v.remove(0)
    }

    #[test]
    fn prefixes() {
        let l = one("[ 8758.722811] CPU 1/KVM invoked oom-killer: x");
        assert_eq!(l.time.as_deref(), Some("8758.722811"));
        assert_eq!(l.msg, "CPU 1/KVM invoked oom-killer: x");
        let l = one("[Thu May  9 14:52:38 2024] memory: usage 1kB");
        assert_eq!(l.time.as_deref(), Some("Thu May  9 14:52:38 2024"));
        let l = one("Feb 03 19:57:08 ** kernel: virt-launcher invoked oom-killer: y");
        assert_eq!(l.time.as_deref(), Some("Feb 03 19:57:08"));
        assert_eq!(l.host.as_deref(), None);
        assert_eq!(l.msg, "virt-launcher invoked oom-killer: y");
        let l = one("May  9 14:52:38 node-1 kernel: [ 12.5] Tasks state (memory values in pages):");
        assert_eq!(l.host.as_deref(), Some("node-1"));
        assert_eq!(l.time.as_deref(), Some("May  9 14:52:38"));
        assert_eq!(l.msg, "Tasks state (memory values in pages):");
        let l = one("2024-05-09T14:52:38.123+00:00 n2 kernel: oom-kill:constraint=X");
        assert_eq!(l.host.as_deref(), Some("n2"));
        assert_eq!(l.msg, "oom-kill:constraint=X");
        let l = one("<4>[  458.325923] CPU 0/KVM invoked oom-killer: z");
        assert_eq!(l.time.as_deref(), Some("458.325923"));
        let l = one("2024-05-09T14:52:38,123456+00:00 memory: usage 1kB");
        assert_eq!(l.msg, "memory: usage 1kB");
        let l = one("4,1234,458325923,-;CPU 0/KVM invoked oom-killer: q");
        assert_eq!(l.time.as_deref(), Some("458.325923"));
        assert_eq!(l.msg, "CPU 0/KVM invoked oom-killer: q");
    }

    #[test]
    fn other_journal_forms() {
        let l = one("[ 8758.722811] node-3 kernel: CPU 1/KVM invoked oom-killer: x");
        assert_eq!(l.time.as_deref(), Some("8758.722811"));
        assert_eq!(l.host.as_deref(), Some("node-3"));
        assert_eq!(l.msg, "CPU 1/KVM invoked oom-killer: x");
        let l = one("1715266358.123456 node-3 kernel: memory: usage 1kB");
        assert_eq!(l.time.as_deref(), Some("1715266358.123456"));
        assert_eq!(l.msg, "memory: usage 1kB");
        let l = one("Thu 2024-05-09 14:52:38 UTC node-3 kernel: oom-kill:constraint=X");
        assert_eq!(l.time.as_deref(), Some("Thu 2024-05-09 14:52:38 UTC"));
        assert_eq!(l.host.as_deref(), Some("node-3"));
        assert_eq!(l.msg, "oom-kill:constraint=X");
        // A kernel message that merely looks like "host ident:" stays whole.
        let l = one("[    5.100000] usb 1-1: new high-speed USB device");
        assert_eq!(l.msg, "usb 1-1: new high-speed USB device");
        let l = one("Thu 2024-05-09 14:52:38 UTC node-3 kubelet[1]: x");
        assert_eq!(l.msg, "Thu 2024-05-09 14:52:38 UTC node-3 kubelet[1]: x");
    }

    #[test]
    fn task_rows_keep_their_brackets() {
        let l =
            one("[  38886]     0 38886      243        1    28672        0          -998 pause");
        assert_eq!(l.time, None);
        assert!(l.msg.starts_with("[  38886]"));
        let l = one("[ 1.000000] [  pid  ]   uid  tgid total_vm      rss name");
        assert!(l.msg.starts_with("[  pid  ]"));
    }

    #[test]
    fn continuations_and_foreign_lines() {
        let text = "[ 8758.723254] anon 2390548480\n               file 69632\n\
Feb 03 19:57:08 h1 kubelet[99]: E0203 something\n     continued kubelet text\n\
Feb 03 19:57:09 h1 kernel: next\n";
        let v: Vec<_> = kernel_lines(text).collect();
        let msgs: Vec<_> = v.iter().map(|l| l.msg.as_ref()).collect();
        assert_eq!(msgs, ["anon 2390548480", "file 69632", "next"]);
        assert_eq!(v[1].time.as_deref(), Some("8758.723254"));
    }

    #[test]
    fn kmsg_multiline_and_dictionary() {
        let text = "6,10,5000000,-;Memory cgroup stats for /a:\\x0aanon 4096\\x0afile 0\n SUBSYSTEM=memory\n";
        let msgs: Vec<_> = kernel_lines(text).map(|l| l.msg).collect();
        assert_eq!(msgs, ["Memory cgroup stats for /a:", "anon 4096", "file 0"]);
    }
}
