//! A protobuf reader over a byte slice, for the two message shapes of geosite.dat and
//! geoip.dat.
//!
//! prost would decode a 100k-entry file into as many owned `String`s before the tables
//! are built from them; walking the slice borrows every string in place, and knows the
//! byte offset of each field, which is what an operator needs to find a broken file's
//! fault.

use super::GeoError;

/// The wire types the two schemas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// 64- and 32-bit fixed fields: no field of the schemas has them, they are skipped.
    Fixed,
}

/// One field: its number, its value and the offset of its tag in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Where the field's tag starts.
    pub offset: usize,
    /// Where its value starts (after the length, for length-delimited fields).
    pub data: usize,
}

/// The fields of one message, in order. `base` is the message's offset in the file.
pub struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Fields<'a> {
    pub fn new(bytes: &'a [u8], base: usize) -> Self {
        Fields {
            bytes,
            pos: 0,
            base,
        }
    }

    fn varint(&mut self) -> Result<u64, GeoError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(GeoError::Truncated {
                    offset: self.base + self.pos,
                });
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("a varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], GeoError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(GeoError::Truncated {
                offset: self.base + self.bytes.len(),
            });
        };
        let bytes = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn malformed(&self, why: &'static str) -> GeoError {
        GeoError::Malformed {
            offset: self.base + self.pos,
            why,
        }
    }

    /// The offset in the file of the next byte to read.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, GeoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let offset = self.offset();
        Some(self.field(offset))
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self, offset: usize) -> Result<Field<'a>, GeoError> {
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| self.malformed("a field number"))?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| self.malformed("a length beyond the address space"))?;
                let data = self.offset();
                return Ok(Field {
                    number,
                    value: Value::Bytes(self.take(len)?),
                    offset,
                    data,
                });
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => {
                return Err(GeoError::Malformed {
                    offset,
                    why: "a wire type the schema does not use",
                });
            }
        };
        Ok(Field {
            number,
            value,
            offset,
            data: offset,
        })
    }
}

/// The text of a string field, or why not.
pub fn text<'a>(field: &Field<'a>) -> Result<&'a str, GeoError> {
    let Value::Bytes(bytes) = field.value else {
        return Err(GeoError::Malformed {
            offset: field.offset,
            why: "a string field that is not length-delimited",
        });
    };
    std::str::from_utf8(bytes).map_err(|_| GeoError::Malformed {
        offset: field.offset,
        why: "a string that is not UTF-8",
    })
}

/// The bytes of a message field and their offset in the file.
pub fn message<'a>(field: &Field<'a>) -> Result<Fields<'a>, GeoError> {
    let Value::Bytes(bytes) = field.value else {
        return Err(GeoError::Malformed {
            offset: field.offset,
            why: "a message field that is not length-delimited",
        });
    };
    Ok(Fields::new(bytes, field.data))
}

/// The value of a varint field, or why not.
pub fn varint(field: &Field<'_>) -> Result<u64, GeoError> {
    match field.value {
        Value::Varint(v) => Ok(v),
        _ => Err(GeoError::Malformed {
            offset: field.offset,
            why: "a number field that is not a varint",
        }),
    }
}

/// Writing, for the tests and the benchmark's generated files.
pub mod write {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    pub fn bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
        varint(out, u64::from(number) << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    pub fn number(out: &mut Vec<u8>, number: u32, v: u64) {
        varint(out, u64::from(number) << 3);
        varint(out, v);
    }
}
