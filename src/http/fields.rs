//! The property names a request body type reads, taken from its own `Deserialize` impl,
//! so the case-insensitive matching of `AppJson` (spec §1) never relies on a hand-kept
//! list that could drift from the struct.
//!
//! How: the type is deserialized once from `Recorder`, a deserializer that answers
//! every request with an empty value and writes down the field names serde's derive
//! hands to `deserialize_struct` (after `rename`/`rename_all`), descending into nested
//! structs. The answer is computed once per type and kept.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// A property of a request body, with the properties of a nested object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The canonical name, as serde reads it.
    pub name: &'static str,
    /// The properties of a nested object whose names are also matched loosely.
    pub nested: Vec<Field>,
}

/// The properties `T` reads (empty for a type that is not a struct, e.g. an array).
pub fn of<T: DeserializeOwned + 'static>() -> Arc<Vec<Field>> {
    static KNOWN: OnceLock<Mutex<HashMap<TypeId, Arc<Vec<Field>>>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(fields) = known
        .lock()
        .expect("the field cache is never poisoned")
        .get(&TypeId::of::<T>())
    {
        return Arc::clone(fields);
    }
    let mut fields = Vec::new();
    // The value read is thrown away; a type that refuses the empty values partway (an
    // enum) still had its names written down by then.
    let _ = T::deserialize(Recorder { out: &mut fields });
    let fields = Arc::new(fields);
    known
        .lock()
        .expect("the field cache is never poisoned")
        .insert(TypeId::of::<T>(), Arc::clone(&fields));
    fields
}

/// See the module documentation.
struct Recorder<'a> {
    out: &'a mut Vec<Field>,
}

type Error = de::value::Error;

macro_rules! answer {
    ($($method:ident => $visit:ident($value:expr)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit($value)
        })*
    };
}

impl<'de> Deserializer<'de> for Recorder<'_> {
    type Error = Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        *self.out = fields
            .iter()
            .map(|name| Field {
                name,
                nested: Vec::new(),
            })
            .collect();
        visitor.visit_map(Properties {
            fields: self.out,
            next: 0,
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(de::value::SeqDeserializer::<_, Error>::new(
            std::iter::empty::<()>(),
        ))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(de::value::MapDeserializer::<_, Error>::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom("an enum has no empty value"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    answer! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char(' '),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_identifier => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
    }
}

/// Hands a struct's visitor each of its own property names, with a recorder for the
/// value that writes nested names into that property.
struct Properties<'a> {
    fields: &'a mut [Field],
    next: usize,
}

impl<'de> MapAccess<'de> for Properties<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.fields.get(self.next) {
            Some(field) => seed
                .deserialize(de::value::StrDeserializer::<Error>::new(field.name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = &mut self.fields[self.next];
        self.next += 1;
        seed.deserialize(Recorder {
            out: &mut field.nested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[expect(dead_code, reason = "only its shape is read")]
    struct Outer {
        first_name: Option<String>,
        #[serde(rename = "type")]
        kind: String,
        credentials: Option<Inner>,
        custom: serde_json::Map<String, serde_json::Value>,
        count: u32,
        tags: Vec<String>,
    }

    #[derive(Default, serde::Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Inner {
        password_change_frequency: Option<i64>,
    }

    fn leaf(name: &'static str) -> Field {
        Field {
            name,
            nested: Vec::new(),
        }
    }

    #[test]
    fn the_names_are_serdes_own_with_nested_structs() {
        let credentials = Field {
            name: "credentials",
            nested: vec![leaf("passwordChangeFrequency")],
        };
        assert_eq!(
            *of::<Outer>(),
            vec![
                leaf("firstName"),
                leaf("type"),
                credentials,
                leaf("custom"),
                leaf("count"),
                leaf("tags"),
            ]
        );
        assert!(of::<Vec<String>>().is_empty());
    }
}
