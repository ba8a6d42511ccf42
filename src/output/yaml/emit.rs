//! libyaml's block emitter, reduced to what `serde_yaml` used: one implicit document, block
//! mappings and sequences (empty ones as `{}` and `[]`), scalars in the four styles, an indent
//! of 2 and no line width. Its state (indent stack, column, "whitespace" and "indention"
//! flags) and the order of its writes follow emitter.c so the bytes are the same.

use std::io::Write;

use super::error::YamlError;
use super::scalar::{self, Style};

/// One serializer event. A collection's start is held until the next event says whether it is
/// empty (libyaml looks ahead the same way).
pub enum Event<'a> {
    Scalar(&'a str, Style),
    SeqStart,
    SeqEnd,
    MapStart,
    MapEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Seq,
    Map,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    DocumentStart,
    DocumentEnd,
    SeqItem { first: bool },
    MapKey { first: bool },
    MapSimpleValue,
    MapValue,
}

/// Where a node sits, as libyaml's emit_node is told.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    mapping: bool,
    simple_key: bool,
}

const INDENT: i64 = 2;
/// Flush to the writer once this much is buffered.
const CHUNK: usize = 8 << 10;

pub struct Emitter<W: Write> {
    out: W,
    buf: Vec<u8>,
    state: State,
    states: Vec<State>,
    indent: i64,
    indents: Vec<i64>,
    column: usize,
    whitespace: bool,
    indention: bool,
    context: Context,
    pending: Option<Start>,
}

impl<W: Write> Emitter<W> {
    pub fn new(out: W) -> Self {
        Emitter {
            out,
            buf: Vec::with_capacity(CHUNK),
            state: State::DocumentStart,
            states: Vec::new(),
            indent: -1,
            indents: Vec::new(),
            column: 0,
            whitespace: true,
            indention: true,
            context: Context::default(),
            pending: None,
        }
    }

    pub fn emit(&mut self, event: Event<'_>) -> Result<(), YamlError> {
        if let Some(start) = self.pending.take() {
            let empty = matches!(
                (start, &event),
                (Start::Seq, Event::SeqEnd) | (Start::Map, Event::MapEnd)
            );
            self.node_event(NodeEvent::Start(start, empty))?;
            if empty {
                return self.maybe_flush();
            }
        }
        match event {
            Event::SeqStart => self.pending = Some(Start::Seq),
            Event::MapStart => self.pending = Some(Start::Map),
            Event::SeqEnd | Event::MapEnd => self.node_event(NodeEvent::End)?,
            Event::Scalar(text, style) => self.node_event(NodeEvent::Scalar(text, style))?,
        }
        self.maybe_flush()
    }

    /// End the document (libyaml's document end: a final line break) and flush.
    pub fn finish(mut self) -> Result<(), YamlError> {
        if self.state != State::DocumentEnd || self.pending.is_some() {
            return Err(YamlError::Unsupported("an unfinished YAML document".into()));
        }
        self.write_indent();
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(())
    }

    fn maybe_flush(&mut self) -> Result<(), YamlError> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn node_event(&mut self, ev: NodeEvent<'_>) -> Result<(), YamlError> {
        match self.state {
            State::DocumentStart => {
                self.states.push(State::DocumentEnd);
                self.node(ev, Context::default())
            }
            State::DocumentEnd => Err(YamlError::Unsupported("a second YAML document".into())),
            State::SeqItem { first } => self.seq_item(ev, first),
            State::MapKey { first } => self.map_key(ev, first),
            State::MapSimpleValue => {
                self.indicator(":", false, false, false);
                self.states.push(State::MapKey { first: false });
                self.node(ev, Context::mapping())
            }
            State::MapValue => {
                self.write_indent();
                self.indicator(":", true, false, true);
                self.states.push(State::MapKey { first: false });
                self.node(ev, Context::mapping())
            }
        }
    }

    fn seq_item(&mut self, ev: NodeEvent<'_>, first: bool) -> Result<(), YamlError> {
        if first {
            let indentless = self.context.mapping && !self.indention;
            self.increase_indent(false, indentless);
        }
        if let NodeEvent::End = ev {
            self.pop_indent_and_state();
            return Ok(());
        }
        self.write_indent();
        self.indicator("-", true, false, true);
        self.states.push(State::SeqItem { first: false });
        self.node(ev, Context::default())
    }

    fn map_key(&mut self, ev: NodeEvent<'_>, first: bool) -> Result<(), YamlError> {
        if first {
            self.increase_indent(false, false);
        }
        let NodeEvent::Scalar(key, _) = ev else {
            if let NodeEvent::End = ev {
                self.pop_indent_and_state();
                return Ok(());
            }
            return Err(YamlError::Unsupported(
                "a map key that is not a string or number".into(),
            ));
        };
        self.write_indent();
        // libyaml's simple key: one line, at most 128 bytes.
        if !scalar::analyze(key).multiline && key.len() <= 128 {
            self.states.push(State::MapSimpleValue);
            self.node(
                ev,
                Context {
                    mapping: true,
                    simple_key: true,
                },
            )
        } else {
            self.indicator("?", true, false, true);
            self.states.push(State::MapValue);
            self.node(ev, Context::mapping())
        }
    }

    fn node(&mut self, ev: NodeEvent<'_>, context: Context) -> Result<(), YamlError> {
        self.context = context;
        match ev {
            NodeEvent::Scalar(text, style) => {
                self.scalar(text, style);
                Ok(())
            }
            NodeEvent::Start(kind, true) => {
                // An empty collection in flow style: libyaml's flow start and end at once.
                let (open, close) = match kind {
                    Start::Seq => ("[", "]"),
                    Start::Map => ("{", "}"),
                };
                self.indicator(open, true, true, false);
                self.indicator(close, false, false, false);
                self.state = self.states.pop().unwrap_or(State::DocumentEnd);
                Ok(())
            }
            NodeEvent::Start(Start::Seq, false) => {
                self.state = State::SeqItem { first: true };
                Ok(())
            }
            NodeEvent::Start(Start::Map, false) => {
                self.state = State::MapKey { first: true };
                Ok(())
            }
            NodeEvent::End => Err(YamlError::Unsupported("an unbalanced end".into())),
        }
    }

    fn scalar(&mut self, text: &str, requested: Style) {
        let allowed = scalar::analyze(text);
        let style = scalar::select(requested, text, &allowed, self.context.simple_key);
        self.increase_indent(true, false);
        match style {
            Style::Plain | Style::Any => self.write_plain(text),
            Style::SingleQuoted => self.write_single_quoted(text),
            Style::DoubleQuoted => self.write_double_quoted(text),
            Style::Literal => self.write_literal(text),
        }
        self.pop_indent_and_state();
    }

    fn pop_indent_and_state(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
        self.state = self.states.pop().unwrap_or(State::DocumentEnd);
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { INDENT } else { 0 };
        } else if !indentless {
            self.indent += INDENT;
        }
    }

    fn put(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.buf.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        self.column += 1;
    }

    fn put_str(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
        self.column += s.chars().count();
    }

    fn put_break(&mut self) {
        self.buf.push(b'\n');
        self.column = 0;
    }

    /// A line break of the scalar itself: a line feed as the emitter's break, any other break
    /// character as it is.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.put(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, s: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        self.put_str(s);
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, text: &str) {
        if !self.whitespace && !text.is_empty() {
            self.put(' ');
        }
        // Plain scalars never hold breaks here (a break rules plain out).
        self.put_str(text);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str) {
        self.indicator("'", true, false, false);
        let mut breaks = false;
        for c in text.chars() {
            if c == ' ' {
                self.put(' ');
            } else if scalar::is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        if breaks {
            self.write_indent();
        }
        self.indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, text: &str) {
        self.indicator("\"", true, false, false);
        for c in text.chars() {
            match scalar::double_quoted_escape(c) {
                Some(escape) => self.put_str(&escape),
                None => self.put(c),
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, text: &str) {
        self.indicator("|", true, false, false);
        self.block_scalar_hints(text);
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in text.chars() {
            if scalar::is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    /// The indentation indicator (when the text starts with a space or break) and the chomping
    /// indicator: `-` without a final break, `+` with more than one, none with exactly one.
    fn block_scalar_hints(&mut self, text: &str) {
        let mut rev = text.chars().rev();
        if text.starts_with(' ') || text.chars().next().is_some_and(scalar::is_break) {
            self.indicator(&INDENT.to_string(), false, false, false);
        }
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !scalar::is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(before)) if scalar::is_break(before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.indicator(chomp, false, false, false);
        }
    }
}

enum NodeEvent<'a> {
    Scalar(&'a str, Style),
    /// A collection's start, and whether it is empty (its end came next).
    Start(Start, bool),
    End,
}

impl Context {
    fn mapping() -> Context {
        Context {
            mapping: true,
            simple_key: false,
        }
    }
}
