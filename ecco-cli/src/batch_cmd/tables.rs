//! The Parquet part files of `ecco batch`'s tables (`docs/batch.md`): one file per shard and
//! table, one row group each, written with parquet's column writer (no arrow crates).

use std::sync::Arc;

use anyhow::{Context, Result};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// `documents`: one row per document that ran.
pub const DOCUMENTS_SCHEMA: &str = "message documents {
  required binary doc_id (STRING);
  required group token_ids (LIST) { repeated group list { required int32 element (INTEGER(32,false)); } }
  required group tokens (LIST) { repeated group list { required binary element (STRING); } }
  required int32 n_input_tokens;
  required binary output_text (STRING);
}";

/// `attributions`: one row per (document, method, generated token, source position).
pub const ATTRIBUTIONS_SCHEMA: &str = "message attributions {
  required binary doc_id (STRING);
  required int32 generated_index;
  required int32 source_index;
  required binary method (STRING);
  required float score;
}";

/// `skipped`: one row per document that did not run.
pub const SKIPPED_SCHEMA: &str = "message skipped {
  required binary doc_id (STRING);
  required binary reason (STRING);
  required binary detail (STRING);
}";

/// One column's values in schema order; lists carry their repetition and definition levels.
pub enum Column {
    /// A required string column.
    Str(Vec<ByteArray>),
    /// A required int32 column (uint32 values are stored by their bits, as Parquet does).
    I32(Vec<i32>),
    /// A required int64 column.
    I64(Vec<i64>),
    /// A required float column.
    F32(Vec<f32>),
    /// A required double column.
    F64(Vec<f64>),
    /// A required list of required int32.
    ListI32(ListLevels, Vec<i32>),
    /// A required list of required strings.
    ListStr(ListLevels, Vec<ByteArray>),
}

/// The levels of a required list of required elements: definition 0 marks an empty list,
/// repetition 0 the start of a row.
#[derive(Default)]
pub struct ListLevels {
    def: Vec<i16>,
    rep: Vec<i16>,
}

impl ListLevels {
    /// Records one row's list of `len` elements.
    pub fn push_row(&mut self, len: usize) {
        if len == 0 {
            self.def.push(0);
            self.rep.push(0);
            return;
        }
        for i in 0..len {
            self.def.push(1);
            self.rep.push(i16::from(i > 0));
        }
    }
}

/// A string value.
pub fn bytes(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// A uint32 value as Parquet stores it (the same 32 bits in an int32).
pub fn u32_bits(v: u32) -> i32 {
    i32::from_ne_bytes(v.to_ne_bytes())
}

/// The bytes of one Parquet file of `schema` holding `columns` (every column the schema's
/// leaves, in order) as one row group, Snappy-compressed.
pub fn write_table(schema: &str, columns: Vec<Column>) -> Result<Vec<u8>> {
    let schema = Arc::new(parse_message_type(schema).context("table schema")?);
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props)?;
    let mut group = writer.next_row_group()?;
    for column in columns {
        let mut col = group.next_column()?.context("more columns than the schema has")?;
        match column {
            Column::Str(v) => col.typed::<ByteArrayType>().write_batch(&v, None, None)?,
            Column::I32(v) => col.typed::<Int32Type>().write_batch(&v, None, None)?,
            Column::I64(v) => col.typed::<Int64Type>().write_batch(&v, None, None)?,
            Column::F32(v) => col.typed::<FloatType>().write_batch(&v, None, None)?,
            Column::F64(v) => col.typed::<DoubleType>().write_batch(&v, None, None)?,
            Column::ListI32(l, v) => col.typed::<Int32Type>().write_batch(&v, Some(&l.def), Some(&l.rep))?,
            Column::ListStr(l, v) => col.typed::<ByteArrayType>().write_batch(&v, Some(&l.def), Some(&l.rep))?,
        };
        col.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::{Field, RowAccessor};

    use super::*;

    #[test]
    fn lists_round_trip_with_empty_rows() -> Result<()> {
        let mut levels = ListLevels::default();
        let mut str_levels = ListLevels::default();
        for len in [2, 0, 1] {
            levels.push_row(len);
            str_levels.push_row(len);
        }
        let bytes = write_table(
            DOCUMENTS_SCHEMA,
            vec![
                Column::Str(vec![bytes("a"), bytes("b"), bytes("c")]),
                Column::ListI32(levels, vec![u32_bits(7), u32_bits(u32::MAX), u32_bits(9)]),
                Column::ListStr(str_levels, vec![bytes("x"), bytes("y"), bytes("z")]),
                Column::I32(vec![1, 0, 1]),
                Column::Str(vec![bytes("xy"), bytes(""), bytes("z")]),
            ],
        )?;
        let mut file = tempfile::tempfile()?;
        std::io::Write::write_all(&mut file, &bytes)?;
        let reader = SerializedFileReader::new(file)?;
        let rows = reader.get_row_iter(None)?.collect::<Result<Vec<_>, _>>()?;
        assert_eq!(rows.len(), 3);
        let ids: Vec<String> = rows.iter().map(|r| r.get_list(1).map(|l| format!("{:?}", l.elements())).unwrap_or_default()).collect();
        assert_eq!(ids, ["[UInt(7), UInt(4294967295)]", "[]", "[UInt(9)]"]);
        assert!(matches!(rows[2].get_column_iter().nth(4), Some((_, Field::Str(s))) if s == "z"));
        Ok(())
    }
}
