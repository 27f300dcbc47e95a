//! A function's code: the zip Extra Horizon functions are deployed as, unpacked in memory.

use std::collections::BTreeMap;
use std::io::Read;

use super::rhai::CodeError;

/// The most bytes a function's code may hold unpacked (AWS Lambda's 250 MB).
pub const UNPACKED_BYTES: u64 = 250 * 1024 * 1024;

/// The files of a function's code, by path.
#[derive(Debug, Default)]
pub struct Files(BTreeMap<String, Vec<u8>>);

impl Files {
    /// Unpacks a zip; refuses one that does not read, or unpacks to more than [`UNPACKED_BYTES`].
    pub fn unzip(bytes: &[u8]) -> Result<Self, CodeError> {
        let not_a_zip = |error: zip::result::ZipError| {
            CodeError(format!("the code is not a valid zip: {error}"))
        };
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(not_a_zip)?;
        let mut files = BTreeMap::new();
        let mut budget = UNPACKED_BYTES;
        for index in 0..archive.len() {
            let file = archive.by_index(index).map_err(not_a_zip)?;
            if file.is_dir() {
                continue;
            }
            let Some(path) = file.enclosed_name() else {
                return Err(CodeError(format!(
                    "the zip holds a path outside it: {}",
                    file.name()
                )));
            };
            let path = path.to_string_lossy().replace('\\', "/");
            let mut content = Vec::new();
            file.take(budget + 1)
                .read_to_end(&mut content)
                .map_err(|error| CodeError(format!("the zip does not unpack: {error}")))?;
            budget = budget.checked_sub(content.len() as u64).ok_or_else(|| {
                CodeError(format!(
                    "the code unpacks to more than {UNPACKED_BYTES} bytes"
                ))
            })?;
            files.insert(path, content);
        }
        Ok(Self(files))
    }

    /// One file, for tests.
    #[cfg(test)]
    pub fn single(path: &str, text: &str) -> Self {
        Self(BTreeMap::from([(
            path.to_owned(),
            text.as_bytes().to_vec(),
        )]))
    }

    /// Every file, with its path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0
            .iter()
            .map(|(path, content)| (path.as_str(), content.as_slice()))
    }

    /// The text of the file at `path`, if it is there and UTF-8.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.0
            .get(path)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, text) in files {
            writer
                .start_file(*path, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(text.as_bytes()).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_unpacks_to_its_files() {
        let files = Files::unzip(&zip_of(&[
            ("index.rhai", "fn handler(t) { 1 }"),
            ("lib/a.txt", "a"),
        ]))
        .unwrap();
        assert_eq!(files.text("index.rhai"), Some("fn handler(t) { 1 }"));
        assert_eq!(files.text("lib/a.txt"), Some("a"));
        assert_eq!(files.text("missing"), None);
    }

    #[test]
    fn what_is_not_a_zip_is_refused() {
        assert!(Files::unzip(b"not a zip").is_err());
        assert!(Files::unzip(b"").is_err());
    }
}
