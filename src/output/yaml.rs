//! YAML output (`list -o yaml`, `fix -o yaml`): a serde serializer that writes block-style YAML
//! byte for byte as the deprecated `serde_yaml` 0.9 did (through libyaml's emitter), so the
//! YAML contract did not change when that crate was dropped. Reading YAML is `serde-saphyr`'s.
//!
//! The rules are libyaml's (emitter.c: `yaml_emitter_analyze_scalar`,
//! `yaml_emitter_select_scalar_style` and the `write_*` functions, with an unlimited line width
//! and an indent of 2) and `serde_yaml`'s (`ser.rs` `serialize_str`: strings that would read back
//! as null, a bool or a number are single-quoted; strings with a line break ask for the literal
//! block style). Output is written as it is produced, so a streamed report stays streamed.
//! Its tests check it against what `serde_yaml` 0.9.34 wrote for a corpus of strings and shapes
//! (`tests/fixtures/yaml`), and the report tests against the committed YAML fixtures.

use std::io::Write;

use serde::ser::{self, Serialize};

mod emit;
mod error;
mod scalar;

use emit::{Emitter, Event};
use scalar::Style;

pub use error::YamlError;

/// Write `value` as one YAML document to `out`.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(out: W, value: &T) -> Result<(), YamlError> {
    let mut ser = Serializer {
        emitter: Emitter::new(out),
    };
    value.serialize(&mut ser)?;
    ser.emitter.finish()
}

/// `value` as one YAML document.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> Result<String, YamlError> {
    let mut out = Vec::new();
    to_writer(&mut out, value)?;
    String::from_utf8(out).map_err(|e| YamlError::Unsupported(e.to_string()))
}

struct Serializer<W: Write> {
    emitter: Emitter<W>,
}

impl<W: Write> Serializer<W> {
    fn plain(&mut self, text: &str) -> Result<(), YamlError> {
        self.emitter.emit(Event::Scalar(text, Style::Plain))
    }

    fn string(&mut self, text: &str) -> Result<(), YamlError> {
        self.emitter
            .emit(Event::Scalar(text, scalar::requested_style(text)))
    }

    fn unsupported(what: &str) -> YamlError {
        YamlError::Unsupported(format!(
            "{what} has no YAML form in this tool's output (only unit enum variants)"
        ))
    }
}

macro_rules! integers {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(self, v: $t) -> Result<(), YamlError> {
            self.plain(&v.to_string())
        })*
    };
}

impl<W: Write> ser::Serializer for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = ser::Impossible<(), YamlError>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = ser::Impossible<(), YamlError>;

    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), YamlError> {
        self.plain(if v { "true" } else { "false" })
    }

    fn serialize_f32(self, v: f32) -> Result<(), YamlError> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), YamlError> {
        let mut buffer = ryu::Buffer::new();
        let text = if v.is_nan() {
            ".nan"
        } else if v == f64::INFINITY {
            ".inf"
        } else if v == f64::NEG_INFINITY {
            "-.inf"
        } else {
            buffer.format_finite(v)
        };
        self.plain(text)
    }

    fn serialize_char(self, v: char) -> Result<(), YamlError> {
        let text = v.to_string();
        self.emitter.emit(Event::Scalar(&text, Style::SingleQuoted))
    }

    fn serialize_str(self, v: &str) -> Result<(), YamlError> {
        self.string(v)
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), YamlError> {
        Err(YamlError::Unsupported("bytes".into()))
    }

    fn serialize_none(self) -> Result<(), YamlError> {
        self.plain("null")
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), YamlError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), YamlError> {
        self.plain("null")
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), YamlError> {
        self.plain("null")
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), YamlError> {
        self.string(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), YamlError> {
        Err(Serializer::<W>::unsupported(&format!("{name}::{variant}")))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, YamlError> {
        self.emitter.emit(Event::SeqStart)?;
        Ok(self)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self, YamlError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self, YamlError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, YamlError> {
        Err(Serializer::<W>::unsupported(&format!("{name}::{variant}")))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self, YamlError> {
        self.emitter.emit(Event::MapStart)?;
        Ok(self)
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, YamlError> {
        self.serialize_map(None)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, YamlError> {
        Err(Serializer::<W>::unsupported(&format!("{name}::{variant}")))
    }
}

impl<W: Write> ser::SerializeSeq for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), YamlError> {
        self.emitter.emit(Event::SeqEnd)
    }
}

impl<W: Write> ser::SerializeTuple for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), YamlError> {
        self.emitter.emit(Event::SeqEnd)
    }
}

impl<W: Write> ser::SerializeTupleStruct for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), YamlError> {
        self.emitter.emit(Event::SeqEnd)
    }
}

impl<W: Write> ser::SerializeMap for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), YamlError> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), YamlError> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), YamlError> {
        self.emitter.emit(Event::MapEnd)
    }
}

impl<W: Write> ser::SerializeStruct for &mut Serializer<W> {
    type Ok = ();
    type Error = YamlError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        self.string(key)?;
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), YamlError> {
        self.emitter.emit(Event::MapEnd)
    }
}

#[cfg(test)]
mod tests;
