//! `ecco batch`'s input, read as a stream: JSON Lines (one object per line) or Parquet (a
//! string column, read a page at a time). Each row becomes a [`Row`]: its `doc_id` and its text,
//! or why it has none.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ecco::batch::SkipReason;
use parquet::basic::Type as PhysicalType;
use parquet::column::reader::{ColumnReader, get_typed_column_reader};
use parquet::data_type::{ByteArrayType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

/// One input row.
pub struct Row {
    /// 0-based index among the input's rows (a JSONL file's non-blank lines).
    pub index: u64,
    /// The `--id-field` value (a number as written), or the row index.
    pub doc_id: String,
    /// The text, or why the row cannot be run.
    pub text: Result<String, SkipReason>,
}

/// An input file whose fields were checked.
pub struct Input {
    path: PathBuf,
    format: Format,
    text_field: String,
    id_field: Option<String>,
}

enum Format {
    Jsonl,
    /// The leaf columns of the text and the id fields.
    Parquet {
        text: usize,
        id: Option<usize>,
    },
}

/// Rows read from a Parquet column at a time.
const CHUNK: usize = 256;

impl Input {
    /// Opens `path` (Parquet when it starts with `PAR1`, else JSON Lines) and checks that the
    /// text field (and the id field) exist: in a Parquet schema, or in the first JSONL row.
    pub fn open(path: &Path, text_field: &str, id_field: Option<&str>) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("cannot read --input {}", path.display()))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).with_context(|| format!("cannot read --input {}", path.display()))?;
        let format = if n == 4 && &magic == b"PAR1" { parquet_columns(path, text_field, id_field)? } else { Format::Jsonl };
        let input = Self { path: path.to_path_buf(), format, text_field: text_field.to_owned(), id_field: id_field.map(str::to_owned) };
        if matches!(input.format, Format::Jsonl) {
            input.check_first_jsonl_row()?;
        }
        Ok(input)
    }

    /// The number of rows (for the progress bar's ETA): Parquet's metadata, or a pass counting
    /// a JSONL file's non-blank lines.
    pub fn count(&self) -> Result<u64> {
        match self.format {
            Format::Parquet { .. } => {
                let reader = self.parquet_reader()?;
                Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
            }
            Format::Jsonl => {
                let mut count = 0;
                self.for_each_line(|_, _| {
                    count += 1;
                    Ok(())
                })?;
                Ok(count)
            }
        }
    }

    /// Calls `f` on every row from index `skip` on, in order.
    pub fn for_each(&self, skip: u64, mut f: impl FnMut(Row) -> Result<()>) -> Result<()> {
        match self.format {
            Format::Jsonl => self.for_each_line(|index, line| if index < skip { Ok(()) } else { f(self.jsonl_row(index, line)) }),
            Format::Parquet { text, id } => self.for_each_parquet(skip, text, id, f),
        }
    }

    fn open_file(&self) -> Result<File> {
        File::open(&self.path).with_context(|| format!("cannot read --input {}", self.path.display()))
    }

    /// Every non-blank line with its row index; one line in memory at a time.
    fn for_each_line(&self, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let mut reader = BufReader::new(self.open_file()?);
        let mut line = Vec::new();
        let mut index = 0;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).with_context(|| format!("cannot read --input {}", self.path.display()))?;
            if n == 0 {
                return Ok(());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            f(index, &line)?;
            index += 1;
        }
    }

    /// Before any work: the first JSONL row must be an object with the text field.
    fn check_first_jsonl_row(&self) -> Result<()> {
        let mut first = None;
        let mut reader = BufReader::new(self.open_file()?);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).with_context(|| format!("cannot read --input {}", self.path.display()))? > 0 {
            if !line.iter().all(u8::is_ascii_whitespace) {
                first = Some(String::from_utf8_lossy(&line).into_owned());
                break;
            }
            line.clear();
        }
        let Some(first) = first else { bail!("--input {} holds no rows", self.path.display()) };
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&first) else {
            bail!("--input {}: the first row is not a JSON object (JSON Lines or Parquet expected)", self.path.display())
        };
        if !map.contains_key(&self.text_field) {
            let fields: Vec<&str> = map.keys().map(String::as_str).collect();
            bail!(
                "--input {}: the first row has no `{}` field (--text-field); its fields: {}",
                self.path.display(),
                self.text_field,
                fields.join(", ")
            );
        }
        Ok(())
    }

    /// A JSONL line as a row.
    fn jsonl_row(&self, index: u64, line: &[u8]) -> Row {
        let (text, utf8) = match std::str::from_utf8(line) {
            Ok(text) => (std::borrow::Cow::Borrowed(text), true),
            // The id may still be readable; the text is not trusted.
            Err(_) => (String::from_utf8_lossy(line), false),
        };
        let fallback = index.to_string();
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return row(index, fallback, Err(SkipReason::InvalidRow { detail: "the row is not a JSON object".to_owned() })),
            Err(_) if !utf8 => return row(index, fallback, Err(SkipReason::InvalidUtf8)),
            Err(e) => return row(index, fallback, Err(SkipReason::InvalidRow { detail: format!("invalid JSON: {e}") })),
        };
        let doc_id = match &self.id_field {
            None => fallback,
            Some(field) => match value.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Null) | None => return row(index, fallback, Err(SkipReason::MissingField { field: field.clone() })),
                Some(_) => {
                    let detail = format!("the `{field}` field is not a string or a number");
                    return row(index, fallback, Err(SkipReason::InvalidRow { detail }));
                }
            },
        };
        let text = match value.get(&self.text_field) {
            _ if !utf8 => Err(SkipReason::InvalidUtf8),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(SkipReason::MissingField { field: self.text_field.clone() }),
            Some(_) => Err(SkipReason::InvalidRow { detail: format!("the `{}` field is not a string", self.text_field) }),
        };
        row(index, doc_id, text)
    }

    fn parquet_reader(&self) -> Result<SerializedFileReader<File>> {
        SerializedFileReader::new(self.open_file()?).with_context(|| format!("cannot read --input {} as Parquet", self.path.display()))
    }

    /// Row groups before `skip` are passed over by their metadata; the rest are read a chunk of
    /// [`CHUNK`] rows at a time from the text (and id) columns only.
    fn for_each_parquet(&self, skip: u64, text: usize, id: Option<usize>, mut f: impl FnMut(Row) -> Result<()>) -> Result<()> {
        let reader = self.parquet_reader()?;
        let context = || format!("cannot read --input {} as Parquet", self.path.display());
        let mut first = 0u64;
        for g in 0..reader.num_row_groups() {
            let n = u64::try_from(reader.metadata().row_group(g).num_rows()).unwrap_or(0);
            if first + n <= skip {
                first += n;
                continue;
            }
            let group = reader.get_row_group(g).with_context(context)?;
            let mut texts = StringColumn::new(group.get_column_reader(text).with_context(context)?);
            let mut ids = match id {
                Some(i) => Some(IdColumn::new(group.get_column_reader(i).with_context(context)?)),
                None => None,
            };
            let mut done = 0;
            while done < n {
                let want = usize::try_from((n - done).min(CHUNK as u64)).unwrap_or(CHUNK);
                let chunk_texts = texts.read(want).with_context(context)?;
                let chunk_ids = match &mut ids {
                    Some(ids) => Some(ids.read(want).with_context(context)?),
                    None => None,
                };
                if chunk_texts.len() != want || chunk_ids.as_ref().is_some_and(|c| c.len() != want) {
                    bail!("--input {}: a row group holds fewer rows than its metadata says", self.path.display());
                }
                for (k, value) in chunk_texts.into_iter().enumerate() {
                    let index = first + done + k as u64;
                    if index < skip {
                        continue;
                    }
                    let fallback = index.to_string();
                    let (doc_id, id_missing) = match chunk_ids.as_ref().map(|c| c[k].clone()) {
                        None => (fallback, None),
                        Some(Some(id)) => (id, None),
                        Some(None) => (fallback, self.id_field.clone()),
                    };
                    let text = match (id_missing, value) {
                        (Some(field), _) => Err(SkipReason::MissingField { field }),
                        (None, None) => Err(SkipReason::MissingField { field: self.text_field.clone() }),
                        (None, Some(bytes)) => String::from_utf8(bytes).map_err(|_| SkipReason::InvalidUtf8),
                    };
                    f(row(index, doc_id, text))?;
                }
                done += want as u64;
            }
            first += n;
        }
        Ok(())
    }
}

fn row(index: u64, doc_id: String, text: Result<String, SkipReason>) -> Row {
    Row { index, doc_id, text }
}

/// The leaf columns holding `text_field` (a string) and `id_field` (a string or an integer),
/// checked before any work.
fn parquet_columns(path: &Path, text_field: &str, id_field: Option<&str>) -> Result<Format> {
    let file = File::open(path).with_context(|| format!("cannot read --input {}", path.display()))?;
    let reader = SerializedFileReader::new(file).with_context(|| format!("cannot read --input {} as Parquet", path.display()))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let find = |field: &str, flag: &str, allowed: &[PhysicalType]| -> Result<usize> {
        let found = schema.columns().iter().position(|c| c.path().parts() == [field.to_owned()]);
        let Some(i) = found else {
            let names: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
            bail!("--input {}: no `{field}` column ({flag}); its columns: {}", path.display(), names.join(", "));
        };
        let column = schema.column(i);
        if column.max_rep_level() > 0 || !allowed.contains(&column.physical_type()) {
            bail!(
                "--input {}: the `{field}` column ({flag}) is not a {}",
                path.display(),
                if allowed.len() == 1 { "string" } else { "string or an integer" }
            );
        }
        Ok(i)
    };
    let text = find(text_field, "--text-field", &[PhysicalType::BYTE_ARRAY])?;
    let id = match id_field {
        Some(field) => Some(find(field, "--id-field", &[PhysicalType::BYTE_ARRAY, PhysicalType::INT32, PhysicalType::INT64])?),
        None => None,
    };
    Ok(Format::Parquet { text, id })
}

/// Reads a flat (optional or required) byte-array column a chunk at a time.
struct StringColumn {
    reader: parquet::column::reader::ColumnReaderImpl<ByteArrayType>,
}

impl StringColumn {
    fn new(reader: ColumnReader) -> Self {
        Self { reader: get_typed_column_reader(reader) }
    }

    /// Up to `n` rows: `None` for a null.
    fn read(&mut self, n: usize) -> parquet::errors::Result<Vec<Option<Vec<u8>>>> {
        let (defs, values) = read_records(n, |n, defs, values| self.reader.read_records(n, Some(defs), None, values))?;
        Ok(spread(defs, values.into_iter().map(|v| v.data().to_vec()).collect(), n))
    }
}

/// Reads a flat id column (string or integer) as text.
enum IdColumn {
    Str(StringColumn),
    I32(parquet::column::reader::ColumnReaderImpl<Int32Type>),
    I64(parquet::column::reader::ColumnReaderImpl<Int64Type>),
}

impl IdColumn {
    fn new(reader: ColumnReader) -> Self {
        match reader {
            ColumnReader::Int32ColumnReader(r) => Self::I32(r),
            ColumnReader::Int64ColumnReader(r) => Self::I64(r),
            other => Self::Str(StringColumn::new(other)),
        }
    }

    /// Up to `n` ids: `None` for a null (or a string id that is not UTF-8).
    fn read(&mut self, n: usize) -> parquet::errors::Result<Vec<Option<String>>> {
        Ok(match self {
            Self::Str(c) => c.read(n)?.into_iter().map(|v| v.and_then(|b| String::from_utf8(b).ok())).collect(),
            Self::I32(r) => {
                let (defs, values) = read_records(n, |n, defs, values| r.read_records(n, Some(defs), None, values))?;
                spread(defs, values.iter().map(i32::to_string).collect(), n)
            }
            Self::I64(r) => {
                let (defs, values) = read_records(n, |n, defs, values| r.read_records(n, Some(defs), None, values))?;
                spread(defs, values.iter().map(i64::to_string).collect(), n)
            }
        })
    }
}

/// Calls `read` until `n` records are read or the column chunk ends; the definition levels
/// (empty for a required column) and the non-null values.
fn read_records<T>(
    n: usize,
    mut read: impl FnMut(usize, &mut Vec<i16>, &mut Vec<T>) -> parquet::errors::Result<(usize, usize, usize)>,
) -> parquet::errors::Result<(Vec<i16>, Vec<T>)> {
    let (mut defs, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut got = 0;
    while got < n {
        let (records, _, _) = read(n - got, &mut defs, &mut values)?;
        if records == 0 {
            break;
        }
        got += records;
    }
    Ok((defs, values))
}

/// Non-null `values` spread over `n` rows by their definition levels (none: all present).
fn spread<T>(defs: Vec<i16>, values: Vec<T>, n: usize) -> Vec<Option<T>> {
    let mut values = values.into_iter();
    if defs.is_empty() {
        return values.take(n).map(Some).collect();
    }
    defs.into_iter().map(|d| if d > 0 { values.next() } else { None }).collect()
}
