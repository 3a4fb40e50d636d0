//! The files of a backup, in `mongodump`'s directory layout so that `mongorestore`, `bsondump`
//! and the other standard tools read them:
//!
//! ```text
//! DIR/manifest.json                 ours: counts, sizes and SHA-256 of every file below
//! DIR/DB/COLL.bson                  the collection's documents, raw BSON one after another
//! DIR/DB/COLL.metadata.json         {"options":…,"indexes":[…],"uuid":…,"collectionName":…,"type":…}
//! ```
//!
//! With `--gzip` the two files are `COLL.bson.gz` and `COLL.metadata.json.gz`, as `mongodump
//! --gzip` names them (the manifest is never compressed). A view has a metadata file only.
//! Everything here streams: a file is hashed as it is written or read, one document at a time.

use super::BackupError;
use bson::{Bson, Document, RawDocumentBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
/// Present while a backup is being written; a directory holding it is refused by `restore`.
pub const INCOMPLETE: &str = ".autovolt-backup-incomplete";
pub const FORMAT: &str = "autovolt-backup";
pub const FORMAT_VERSION: u32 = 2;
pub const LAYOUT: &str = "mongodump";
/// The largest document a data file may hold: MongoDB's 16 MiB, and the 16 KiB more the server
/// allows itself. A larger length is damage, and is refused before anything is allocated.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024 + 16 * 1024;
/// The largest metadata file read (a collection's options and index list are a few kB).
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

const BSON: &str = ".bson";
const METADATA: &str = ".metadata.json";
const GZ: &str = ".gz";
/// `mongodump`'s top-level extras: its run's description and the oplog of `--oplog`.
const PRELUDE: &str = "prelude.json";
const OPLOG: &str = "oplog.bson";
/// Databases of the server itself: users and roles (`admin`), sharding (`config`), replication.
const SERVER_DATABASES: &[&str] = &["admin", "config", "local"];

/// One file of a backup: its path under the backup's directory ('/'-separated), size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    /// `collection` or `view`, as in the metadata file.
    #[serde(rename = "type")]
    pub kind: String,
    pub documents: u64,
    /// None for a view.
    pub data: Option<FileSum>,
    pub metadata: FileSum,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub layout: String,
    pub created_at: String,
    pub database: String,
    pub server: String,
    pub schema_version: i32,
    pub gzip: bool,
    pub collections: Vec<ManifestEntry>,
}

/// A collection's metadata file: its creation options, its indexes as `listIndexes` gives them,
/// its UUID (hex, for `mongorestore --preserveUUID`), its name and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub collection_name: String,
    pub kind: String,
    pub options: Document,
    pub indexes: Vec<Document>,
    pub uuid: Option<String>,
}

pub const COLLECTION: &str = "collection";
pub const VIEW: &str = "view";
pub const TIMESERIES: &str = "timeseries";

impl Metadata {
    /// Canonical Extended JSON v2, the fields in `mongodump`'s order.
    pub fn to_json(&self) -> String {
        let mut d = Document::new();
        d.insert("options", self.options.clone());
        d.insert(
            "indexes",
            self.indexes
                .iter()
                .cloned()
                .map(Bson::Document)
                .collect::<Vec<_>>(),
        );
        if let Some(u) = &self.uuid {
            d.insert("uuid", u.clone());
        }
        d.insert("collectionName", self.collection_name.clone());
        d.insert("type", self.kind.clone());
        canonical(Bson::Document(d)).to_string()
    }

    /// Reads a metadata file's text, canonical or relaxed Extended JSON (older tools wrote the
    /// relaxed form). `name` is the collection the file name says, for files without
    /// `collectionName`.
    pub fn from_json(text: &str, name: &str) -> Result<Metadata, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let d = match Bson::try_from(value).map_err(|e| e.to_string())? {
            Bson::Document(d) => d,
            other => {
                return Err(format!(
                    "expected an object, found {:?}",
                    other.element_type()
                ))
            }
        };
        let options = match d.get("options") {
            None | Some(Bson::Null) => Document::new(),
            Some(Bson::Document(o)) => o.clone(),
            Some(_) => return Err("\"options\" is not an object".into()),
        };
        let indexes = match d.get("indexes") {
            None | Some(Bson::Null) => Vec::new(),
            Some(Bson::Array(a)) => a
                .iter()
                .map(|i| match i {
                    Bson::Document(i)
                        if i.get_document("key").is_ok() && i.get_str("name").is_ok() =>
                    {
                        Ok(i.clone())
                    }
                    _ => Err("an index without \"key\" and \"name\"".to_string()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("\"indexes\" is not an array".into()),
        };
        let text_field = |k: &str| match d.get(k) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k:?} is not a string")),
        };
        Ok(Metadata {
            collection_name: text_field("collectionName")?.unwrap_or_else(|| name.to_string()),
            kind: text_field("type")?.unwrap_or_else(|| COLLECTION.to_string()),
            options,
            indexes,
            uuid: text_field("uuid")?,
        })
    }
}

/// Canonical Extended JSON, except that subnormal doubles are written as `$numberDouble` text
/// too: the bson crate writes them as plain JSON numbers, which do not read back exactly.
fn canonical(value: Bson) -> serde_json::Value {
    match value {
        Bson::Double(f) if f.is_subnormal() => {
            serde_json::json!({ "$numberDouble": format!("{f:e}") })
        }
        Bson::Array(items) => serde_json::Value::Array(items.into_iter().map(canonical).collect()),
        Bson::Document(d) => {
            serde_json::Value::Object(d.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other.into_canonical_extjson(),
    }
}

/// A collection's name as a file name: `%`, `/`, `\` and control characters percent-encoded,
/// as `mongodump` escapes names that a file system cannot hold.
pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '%' || c == '/' || c == '\\' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The collection name a file name stands for (`None` if its escapes are broken).
pub fn unescape(file_stem: &str) -> Option<String> {
    let bytes = file_stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file_stem.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn data_file(name: &str, gzip: bool) -> String {
    format!("{}{BSON}{}", escape(name), if gzip { GZ } else { "" })
}

pub fn metadata_file(name: &str, gzip: bool) -> String {
    format!("{}{METADATA}{}", escape(name), if gzip { GZ } else { "" })
}

/// What a file of a database directory holds, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DumpFile {
    Data { name: String, gzip: bool },
    Metadata { name: String, gzip: bool },
}

fn classify(file_name: &str) -> Option<DumpFile> {
    let (rest, gzip) = match file_name.strip_suffix(GZ) {
        Some(r) => (r, true),
        None => (file_name, false),
    };
    if let Some(stem) = rest.strip_suffix(METADATA) {
        return Some(DumpFile::Metadata {
            name: unescape(stem)?,
            gzip,
        });
    }
    let stem = rest.strip_suffix(BSON)?;
    Some(DumpFile::Data {
        name: unescape(stem)?,
        gzip,
    })
}

/// SHA-256 and size of what passes through.
#[derive(Default)]
struct Tally {
    hash: Sha256,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, b: &[u8]) {
        self.hash.update(b);
        self.bytes += b.len() as u64;
    }

    fn sum(self, path: String) -> FileSum {
        FileSum {
            path,
            bytes: self.bytes,
            sha256: hex::encode(self.hash.finalize()),
        }
    }
}

/// A file writer that hashes exactly the bytes that reach the file.
struct Hashing<W> {
    inner: W,
    tally: Tally,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tally.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tally.add(&buf[..n]);
        Ok(n)
    }
}

enum SinkInner {
    Plain(BufWriter<Hashing<std::fs::File>>),
    Gzip(BufWriter<flate2::write::GzEncoder<Hashing<std::fs::File>>>),
}

/// A new file of a backup (readable by its owner only: a backup holds device secrets and
/// password hashes), compressed or not, hashed as it is written.
pub struct FileSink {
    inner: SinkInner,
    path: PathBuf,
    relative: String,
}

impl FileSink {
    /// Creates `root/relative`; it must not exist.
    pub fn create(root: &Path, relative: String, gzip: bool) -> Result<FileSink, BackupError> {
        let path = root.join(&relative);
        let file = create_private(&path).map_err(super::io(&path))?;
        let hashing = Hashing {
            inner: file,
            tally: Tally::default(),
        };
        let inner = if gzip {
            SinkInner::Gzip(BufWriter::new(flate2::write::GzEncoder::new(
                hashing,
                flate2::Compression::default(),
            )))
        } else {
            SinkInner::Plain(BufWriter::new(hashing))
        };
        Ok(FileSink {
            inner,
            path,
            relative,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        match &mut self.inner {
            SinkInner::Plain(w) => w.write_all(bytes),
            SinkInner::Gzip(w) => w.write_all(bytes),
        }
        .map_err(super::io(&self.path))
    }

    /// Flushes, ends the compressed stream, syncs the file to disk, and says what was written.
    pub fn finish(self) -> Result<FileSum, BackupError> {
        let io = super::io(&self.path);
        let hashing = match self.inner {
            SinkInner::Plain(w) => w.into_inner().map_err(|e| e.into_error()),
            SinkInner::Gzip(w) => w
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|gz| gz.finish()),
        }
        .map_err(io)?;
        hashing.inner.sync_all().map_err(super::io(&self.path))?;
        Ok(hashing.tally.sum(self.relative))
    }
}

enum SourceInner {
    Plain(Hashing<BufReader<std::fs::File>>),
    Gzip(flate2::read::MultiGzDecoder<Hashing<BufReader<std::fs::File>>>),
}

impl Read for SourceInner {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceInner::Plain(r) => r.read(buf),
            SourceInner::Gzip(r) => r.read(buf),
        }
    }
}

impl SourceInner {
    fn open(path: &Path, gzip: bool) -> std::io::Result<SourceInner> {
        let hashing = Hashing {
            inner: BufReader::new(std::fs::File::open(path)?),
            tally: Tally::default(),
        };
        Ok(if gzip {
            SourceInner::Gzip(flate2::read::MultiGzDecoder::new(hashing))
        } else {
            SourceInner::Plain(hashing)
        })
    }

    /// The hash of the whole file, past whatever the decoder did not need.
    fn finish(self, relative: String) -> std::io::Result<FileSum> {
        let mut hashing = match self {
            SourceInner::Plain(h) => h,
            SourceInner::Gzip(d) => d.into_inner(),
        };
        std::io::copy(&mut hashing, &mut std::io::sink())?;
        Ok(hashing.tally.sum(relative))
    }
}

/// Reads a data file one document at a time, checking each completely, and hashes the file.
pub struct DataReader {
    inner: SourceInner,
    relative: String,
    documents: u64,
}

impl DataReader {
    /// Opens `root/relative` (a `.gz` name is decompressed).
    pub fn open(root: &Path, relative: &str) -> Result<DataReader, String> {
        let gzip = relative.ends_with(GZ);
        let inner = SourceInner::open(&root.join(relative), gzip)
            .map_err(|e| format!("{relative}: {e}"))?;
        Ok(DataReader {
            inner,
            relative: relative.to_string(),
            documents: 0,
        })
    }

    /// The next document, or `None` at the end of the file.
    pub fn next_document(&mut self) -> Result<Option<RawDocumentBuf>, String> {
        let at = self.documents + 1;
        let fail = |what: String| format!("{}, document {at}: {what}", self.relative);
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(fail("the file ends inside a document".into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        let size = i32::from_le_bytes(len);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (5..=MAX_DOCUMENT_BYTES).contains(s))
            .ok_or_else(|| fail(format!("a document cannot be {size} bytes long")))?;
        let mut bytes = vec![0u8; size];
        bytes[..4].copy_from_slice(&len);
        self.inner.read_exact(&mut bytes[4..]).map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "the file ends inside a document".into()
            } else {
                e.to_string()
            })
        })?;
        let doc = RawDocumentBuf::from_bytes(bytes).map_err(|e| fail(e.to_string()))?;
        // Every element, nested ones included, must read: a damaged byte is found here, not by
        // the server halfway through a restore.
        doc.to_document().map_err(|e| fail(e.to_string()))?;
        self.documents += 1;
        Ok(Some(doc))
    }

    /// Reads to the end (the caller has read every document) and sums the file.
    pub fn finish(self) -> Result<(u64, FileSum), String> {
        let relative = self.relative.clone();
        let documents = self.documents;
        let sum = self
            .inner
            .finish(relative.clone())
            .map_err(|e| format!("{relative}: {e}"))?;
        Ok((documents, sum))
    }

    /// Reads the whole file: how many documents, and its sum.
    pub fn read_through(root: &Path, relative: &str) -> Result<(u64, FileSum), String> {
        let mut r = DataReader::open(root, relative)?;
        while r.next_document()?.is_some() {}
        r.finish()
    }
}

/// Reads and sums a metadata file. `name` is the collection its file name stands for.
pub fn read_metadata(
    root: &Path,
    relative: &str,
    name: &str,
) -> Result<(Metadata, FileSum), String> {
    let gzip = relative.ends_with(GZ);
    let mut inner =
        SourceInner::open(&root.join(relative), gzip).map_err(|e| format!("{relative}: {e}"))?;
    let mut text = String::new();
    (&mut inner)
        .take(MAX_METADATA_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{relative}: {e}"))?;
    if text.len() as u64 > MAX_METADATA_BYTES {
        return Err(format!(
            "{relative}: larger than {MAX_METADATA_BYTES} bytes, which no metadata file is"
        ));
    }
    let metadata = Metadata::from_json(&text, name).map_err(|e| format!("{relative}: {e}"))?;
    let sum = inner
        .finish(relative.to_string())
        .map_err(|e| format!("{relative}: {e}"))?;
    Ok((metadata, sum))
}

/// One collection or view to restore, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: String,
    pub metadata: Metadata,
    /// The data file ('/'-separated, under [`Plan::root`]) and what it held when checked.
    pub data: Option<FileSum>,
    pub documents: u64,
}

impl Planned {
    pub fn is_view(&self) -> bool {
        self.metadata.kind == VIEW
    }
}

/// A backup, read through and found sound: what to restore, and what was seen on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The directory that file paths are relative to.
    pub root: PathBuf,
    /// The database the backup was made of.
    pub source_database: String,
    /// Ours, or `None` for a plain `mongodump` directory.
    pub manifest: Option<Manifest>,
    pub collections: Vec<Planned>,
    /// What was skipped or could not be checked, one sentence each.
    pub notes: Vec<String>,
}

impl Plan {
    pub fn documents(&self) -> u64 {
        self.collections.iter().map(|c| c.documents).sum()
    }
}

fn corrupt(dir: &Path, reason: impl Into<String>) -> BackupError {
    BackupError::Corrupt {
        dir: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a backup directory through and checks it: ours against its manifest (every file's
/// size and SHA-256, every count, every document), a plain `mongodump` directory as far as it
/// can be (every document and metadata file reads; gzip's own CRCs). Writes nothing.
pub fn verify(dir: &Path) -> Result<Plan, BackupError> {
    if dir.join(INCOMPLETE).exists() {
        return Err(corrupt(
            dir,
            format!("it holds {INCOMPLETE}: the backup was interrupted before it was complete"),
        ));
    }
    verify_written(dir)
}

/// [`verify`] without the interrupted-backup check: for a backup that is still being finished.
pub(super) fn verify_written(dir: &Path) -> Result<Plan, BackupError> {
    let manifest_path = dir.join(MANIFEST);
    if manifest_path.exists() {
        return verify_manifest(dir, &manifest_path);
    }
    let (db_dir, notes) = locate(dir)?;
    verify_plain(&db_dir, notes)
}

fn verify_manifest(dir: &Path, path: &Path) -> Result<Plan, BackupError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| corrupt(dir, format!("{MANIFEST}: {e}")))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| corrupt(dir, format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(corrupt(
            dir,
            format!(
                "{MANIFEST}: format {:?} version {} is not {FORMAT:?} version {FORMAT_VERSION}",
                manifest.format, manifest.format_version
            ),
        ));
    }
    let mut listed = std::collections::BTreeSet::new();
    let mut collections = Vec::new();
    for e in &manifest.collections {
        let mut files = vec![&e.metadata];
        files.extend(e.data.as_ref());
        for f in &files {
            plain_path(&f.path, &manifest.database)
                .map_err(|why| corrupt(dir, format!("{MANIFEST}: {:?} {why}", f.path)))?;
            listed.insert(f.path.clone());
        }
        let (metadata, sum) =
            read_metadata(dir, &e.metadata.path, &e.name).map_err(|why| corrupt(dir, why))?;
        same_file(dir, &sum, &e.metadata)?;
        if metadata.collection_name != e.name || metadata.kind != e.kind {
            return Err(corrupt(
                dir,
                format!(
                    "{} describes {} {:?}, the manifest says {} {:?}",
                    e.metadata.path, metadata.kind, metadata.collection_name, e.kind, e.name
                ),
            ));
        }
        if let Some(data) = &e.data {
            let (documents, sum) =
                DataReader::read_through(dir, &data.path).map_err(|why| corrupt(dir, why))?;
            same_file(dir, &sum, data)?;
            if documents != e.documents {
                return Err(corrupt(
                    dir,
                    format!(
                        "{} holds {documents} documents, the manifest says {}",
                        data.path, e.documents
                    ),
                ));
            }
        }
        collections.push(Planned {
            name: e.name.clone(),
            metadata,
            data: e.data.clone(),
            documents: e.documents,
        });
    }
    // A collection's file that the manifest does not list would be left out without a word.
    let db_dir = dir.join(&manifest.database);
    if let Ok(entries) = std::fs::read_dir(&db_dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().to_string();
            let relative = format!("{}/{file}", manifest.database);
            if classify(&file).is_some() && !listed.contains(&relative) {
                return Err(corrupt(
                    dir,
                    format!("{relative} is not in {MANIFEST}, so it cannot be checked"),
                ));
            }
        }
    }
    Ok(Plan {
        root: dir.to_path_buf(),
        source_database: manifest.database.clone(),
        collections,
        manifest: Some(manifest),
        notes: Vec::new(),
    })
}

fn same_file(dir: &Path, found: &FileSum, expected: &FileSum) -> Result<(), BackupError> {
    if found.sha256 != expected.sha256 {
        return Err(corrupt(
            dir,
            format!(
                "{} has SHA-256 {}, the manifest says {} (the file was changed or damaged)",
                expected.path, found.sha256, expected.sha256
            ),
        ));
    }
    if found.bytes != expected.bytes {
        return Err(corrupt(
            dir,
            format!(
                "{} is {} bytes, the manifest says {}",
                expected.path, found.bytes, expected.bytes
            ),
        ));
    }
    Ok(())
}

/// A manifest's file path must be `DB/FILE`, nothing that climbs out of the backup.
fn plain_path(path: &str, database: &str) -> Result<(), &'static str> {
    let p = Path::new(path);
    let parts: Vec<_> = p.components().collect();
    let plain = parts.len() == 2
        && parts.iter().all(|c| matches!(c, Component::Normal(_)))
        && !path.contains('\\')
        && parts[0].as_os_str() == database;
    if plain {
        Ok(())
    } else {
        Err("is not a file of the backup's database directory")
    }
}

/// Whether `dir` holds a collection's files; at mongodump's top level `oplog.bson` is not one.
fn has_dump_files(dir: &Path, top_level: bool) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                e.path().is_file() && classify(&name).is_some() && !(top_level && name == OPLOG)
            })
        })
        .unwrap_or(false)
}

/// Which directory of a plain `mongodump` output holds the database to restore: `dir` itself
/// if it holds collection files, else its one database directory.
fn locate(dir: &Path) -> Result<(PathBuf, Vec<String>), BackupError> {
    let mut notes = vec![
        "no manifest: a plain mongodump directory, so there are no checksums or counts to \
              check; every file was read through and every document checked"
            .to_string(),
    ];
    if has_dump_files(dir, true) {
        return Ok((dir.to_path_buf(), notes));
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| corrupt(dir, format!("it cannot be read ({e})")))?;
    let mut databases = Vec::new();
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if path.is_dir() {
            if super::rotation::parse_name(&name).is_some() && path.join(MANIFEST).exists() {
                ours.push(name);
            } else if SERVER_DATABASES.contains(&name.as_str()) {
                notes.push(format!(
                    "{name}/ skipped: it is the server's own database (users, roles, settings), not the campus's"
                ));
            } else if has_dump_files(&path, false) {
                databases.push(name);
            }
        } else if name == OPLOG {
            notes.push(format!(
                "{OPLOG} not applied: the restore holds the data as the dump read it, without the writes made during the dump"
            ));
        } else if name == PRELUDE {
            notes.push(format!(
                "{PRELUDE} (mongodump's description of its run) read past"
            ));
        }
    }
    ours.sort();
    databases.sort();
    if let Some(newest) = ours.last() {
        return Err(BackupError::Unusable(format!(
            "{} holds {} backups made with --keep; name the one to restore, e.g. the newest: \
             --from {}; nothing was written",
            dir.display(),
            ours.len(),
            dir.join(newest).display()
        )));
    }
    match databases.as_slice() {
        [one] => Ok((dir.join(one), notes)),
        [] => Err(corrupt(
            dir,
            format!("it holds neither {MANIFEST} nor a mongodump database directory (DB/COLL.bson)"),
        )),
        several => Err(BackupError::Unusable(format!(
            "{} holds the dumps of {} databases ({}); restore one at a time: --from {}; nothing was written",
            dir.display(),
            several.len(),
            several.join(", "),
            dir.join(&several[0]).display()
        ))),
    }
}

fn verify_plain(db_dir: &Path, mut notes: Vec<String>) -> Result<Plan, BackupError> {
    // `--from .` inside a database directory still has a name and a parent.
    let db_dir = &db_dir
        .canonicalize()
        .map_err(|e| corrupt(db_dir, format!("it cannot be read ({e})")))?;
    let database = db_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let root = db_dir.parent().unwrap_or(db_dir).to_path_buf();
    let mut files: Vec<String> = std::fs::read_dir(db_dir)
        .map_err(|e| corrupt(db_dir, format!("it cannot be read ({e})")))?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    // name → (data file, metadata file)
    let mut found: std::collections::BTreeMap<String, (Option<String>, Option<String>)> =
        Default::default();
    for file in files {
        let Some(kind) = classify(&file) else {
            if !file.starts_with('.') {
                notes.push(format!(
                    "{database}/{file} skipped: not a collection's file"
                ));
            }
            continue;
        };
        let (name, slot_is_data) = match &kind {
            DumpFile::Data { name, .. } => (name.clone(), true),
            DumpFile::Metadata { name, .. } => (name.clone(), false),
        };
        if name.starts_with("system.") {
            notes.push(format!(
                "{database}/{file} skipped: the server keeps system collections itself"
            ));
            continue;
        }
        let slot = found.entry(name.clone()).or_default();
        let target = if slot_is_data {
            &mut slot.0
        } else {
            &mut slot.1
        };
        if let Some(other) = target {
            return Err(corrupt(
                &root,
                format!("{database}/{other} and {database}/{file} both hold {name:?}"),
            ));
        }
        *target = Some(format!("{database}/{file}"));
    }
    let mut collections = Vec::new();
    for (name, (data, metadata_file)) in found {
        let metadata = match &metadata_file {
            Some(m) => {
                read_metadata(&root, m, &name)
                    .map_err(|why| corrupt(&root, why))?
                    .0
            }
            None => {
                notes.push(format!(
                    "{name}: no metadata file, so it is restored with default options and only its _id index"
                ));
                Metadata {
                    collection_name: name.clone(),
                    kind: COLLECTION.into(),
                    options: Document::new(),
                    indexes: Vec::new(),
                    uuid: None,
                }
            }
        };
        match metadata.kind.as_str() {
            COLLECTION | VIEW => {}
            TIMESERIES => {
                return Err(BackupError::Unusable(format!(
                    "{name} is a time-series collection, which autovolt restore does not handle; \
                     use mongorestore for this dump; nothing was written"
                )))
            }
            other => {
                return Err(corrupt(
                    &root,
                    format!(
                        "{}: unknown type {other:?}",
                        metadata_file.unwrap_or_default()
                    ),
                ))
            }
        }
        let (documents, data) = match data {
            Some(path) if metadata.kind != VIEW => {
                let (n, sum) =
                    DataReader::read_through(&root, &path).map_err(|why| corrupt(&root, why))?;
                (n, Some(sum))
            }
            Some(path) => {
                notes.push(format!(
                    "{path} skipped: {name} is a view, which holds no documents of its own"
                ));
                (0, None)
            }
            None => (0, None),
        };
        collections.push(Planned {
            name,
            metadata,
            data,
            documents,
        });
    }
    Ok(Plan {
        root,
        source_database: database,
        manifest: None,
        collections,
        notes,
    })
}

#[cfg(unix)]
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub(super) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use proptest::prelude::*;

    fn write_docs(dir: &Path, relative: &str, docs: &[Document]) -> FileSum {
        let mut sink = FileSink::create(dir, relative.into(), relative.ends_with(GZ)).unwrap();
        for d in docs {
            sink.write(RawDocumentBuf::from_document(d).unwrap().as_bytes())
                .unwrap();
        }
        sink.finish().unwrap()
    }

    fn read_docs(dir: &Path, relative: &str) -> (Vec<Vec<u8>>, FileSum) {
        let mut r = DataReader::open(dir, relative).unwrap();
        let mut out = Vec::new();
        while let Some(d) = r.next_document().unwrap() {
            out.push(d.as_bytes().to_vec());
        }
        let (n, sum) = r.finish().unwrap();
        assert_eq!(n as usize, out.len());
        (out, sum)
    }

    #[test]
    fn metadata_is_canonical_extended_json_in_mongodumps_order() {
        let m = Metadata {
            collection_name: "changejournal".into(),
            kind: COLLECTION.into(),
            options: doc! {"capped": true, "size": 4_194_304i64, "max": 2000i32},
            indexes: vec![doc! {"v": 2i32, "key": {"_id": 1i32}, "name": "_id_"}],
            uuid: Some("0123456789abcdef0123456789abcdef".into()),
        };
        let text = m.to_json();
        assert_eq!(
            text,
            r#"{"options":{"capped":true,"size":{"$numberLong":"4194304"},"max":{"$numberInt":"2000"}},"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"0123456789abcdef0123456789abcdef","collectionName":"changejournal","type":"collection"}"#
        );
        assert_eq!(Metadata::from_json(&text, "x").unwrap(), m);
    }

    #[test]
    fn relaxed_and_older_metadata_reads() {
        let m = Metadata::from_json(
            r#"{"options":{},"indexes":[{"v":2,"key":{"a":1},"name":"a_1","ns":"campus.devices"}]}"#,
            "devices",
        )
        .unwrap();
        assert_eq!(m.collection_name, "devices");
        assert_eq!(m.kind, COLLECTION);
        assert_eq!(m.indexes[0].get_str("name"), Ok("a_1"));
        for bad in [
            "[]",
            r#"{"indexes":{}}"#,
            r#"{"indexes":[{"name":"x"}]}"#,
            "{",
        ] {
            assert!(Metadata::from_json(bad, "c").is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_follow_mongodump() {
        assert_eq!(data_file("devices", false), "devices.bson");
        assert_eq!(data_file("devices", true), "devices.bson.gz");
        assert_eq!(metadata_file("devices", true), "devices.metadata.json.gz");
        assert_eq!(escape("a/b%c"), "a%2Fb%25c");
        assert_eq!(
            classify("a%2Fb.metadata.json.gz"),
            Some(DumpFile::Metadata {
                name: "a/b".into(),
                gzip: true
            })
        );
        assert_eq!(classify("x.json"), None);
        assert_eq!(classify("bad%2.bson"), None);
    }

    #[test]
    fn a_damaged_data_file_is_named_with_the_document() {
        let dir = tempfile::tempdir().unwrap();
        let docs = [doc! {"a": 1}, doc! {"b": "two"}];
        write_docs(dir.path(), "d.bson", &docs);
        let path = dir.path().join("d.bson");
        let good = std::fs::read(&path).unwrap();

        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        let e = DataReader::read_through(dir.path(), "d.bson").unwrap_err();
        assert!(
            e.contains("d.bson, document 2: the file ends inside"),
            "{e}"
        );

        let mut huge = good.clone();
        huge[..4].copy_from_slice(&i32::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        let e = DataReader::read_through(dir.path(), "d.bson").unwrap_err();
        assert!(e.contains("document 1: a document cannot be"), "{e}");

        // The string's length prefix no longer matches: a nested element that does not read.
        let mut inner = good.clone();
        let at = good.len() - 8;
        inner[at] = 0x7f;
        std::fs::write(&path, &inner).unwrap();
        assert!(DataReader::read_through(dir.path(), "d.bson").is_err());
    }

    #[test]
    fn a_damaged_gzip_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_docs(dir.path(), "d.bson.gz", &vec![doc! {"a": 1}; 50]);
        let path = dir.path().join("d.bson.gz");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        // The CRC-32 of the trailer.
        bytes[n - 6] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(DataReader::read_through(dir.path(), "d.bson.gz").is_err());
    }

    fn value() -> impl Strategy<Value = Bson> {
        use proptest::collection::vec;
        let leaf = prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            any::<f64>().prop_map(Bson::Double),
            ".{0,12}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
            vec(any::<u8>(), 0..16).prop_map(|bytes| Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes
            })),
        ];
        leaf.prop_recursive(3, 48, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Bson::Array),
                vec(("[a-z_][a-z0-9_]{0,7}", inner), 0..5)
                    .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn documents_come_back_byte_for_byte_and_the_sums_agree(
            docs in proptest::collection::vec(
                proptest::collection::vec(("[a-z_][a-z0-9_]{0,7}", value()), 0..6)
                    .prop_map(|f| f.into_iter().collect::<Document>()),
                0..8,
            ),
            gzip in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let file = data_file("c", gzip);
            let written = write_docs(dir.path(), &file, &docs);
            let (back, read) = read_docs(dir.path(), &file);
            let expected: Vec<Vec<u8>> =
                docs.iter().map(|d| bson::to_vec(d).unwrap()).collect();
            prop_assert_eq!(back, expected);
            prop_assert_eq!(&read, &written);
            let on_disk = std::fs::read(dir.path().join(&file)).unwrap();
            prop_assert_eq!(read.sha256, hex::encode(Sha256::digest(&on_disk)));
            prop_assert_eq!(read.bytes, on_disk.len() as u64);
        }

        #[test]
        fn any_cut_of_a_data_file_is_found(
            docs in proptest::collection::vec(
                proptest::collection::vec(("[a-z]{1,4}", value()), 1..4)
                    .prop_map(|f| f.into_iter().collect::<Document>()),
                1..5,
            ),
            cut in any::<proptest::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            write_docs(dir.path(), "c.bson", &docs);
            let path = dir.path().join("c.bson");
            let bytes = std::fs::read(&path).unwrap();
            let at = cut.index(bytes.len());
            prop_assume!(at > 0);
            let ends: Vec<usize> = docs
                .iter()
                .scan(0, |n, d| { *n += bson::to_vec(d).unwrap().len(); Some(*n) })
                .collect();
            prop_assume!(!ends.contains(&at));
            std::fs::write(&path, &bytes[..at]).unwrap();
            prop_assert!(DataReader::read_through(dir.path(), "c.bson").is_err());
        }

        #[test]
        fn escaped_names_read_back(name in "\\PC{1,20}") {
            prop_assert_eq!(unescape(&escape(&name)), Some(name.clone()));
            prop_assert!(!escape(&name).contains('/'));
        }
    }
}
